//! The real identity provider (`services/idp`) on a port-0 listener, on the test's database
//! (schema `idp`), with the demo agents' keys generated into a temp dir and a private copy of
//! the policies. Users sign in through the real login form (code + PKCE); delegated tokens come
//! from the real two hops (concierge, then banking), with the user's push approval given through
//! the approvals API when the policy asks; sessions end through the real sessions API. Only a
//! token that must be invalid (expired, say) is forged, with the idp's own signing key.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use kit::{
    claims::AccessClaims,
    exchange::{AgentIdentity, ExchangeClient, ExchangeError},
    jwt::SigningKey,
    rar::AuthorizationDetail,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::harness::workspace_root;

const ADMIN: &str = "idp-admin-token-for-tests-0123456789";
const WEB: &str = "web";
const WEB_SECRET: &str = "web-dev-secret-change-me";
const REDIRECT: &str = "http://127.0.0.1:8080/auth/callback";
const BANKING: &str = "spiffe://demo.local/agent/banking";
/// The audience of the issuer's tokens (`VR_AUDIENCE`).
const AUDIENCE: &str = "verify-rar";

/// A running idp. Clones share it (a restarted issuer keeps its idp).
#[derive(Clone)]
pub struct Idp {
    pub url: String,
    http: reqwest::Client,
    keys_dir: PathBuf,
    concierge: ExchangeClient,
    banking: ExchangeClient,
}

/// A signed-in user: the web app's token, the phone's token, and the real session id.
#[derive(Debug, Clone)]
pub struct Session {
    pub sid: String,
    pub access_token: String,
    /// The user's own token for the idp's APIs (`refresh` with `resource=<issuer>`), which is
    /// what approves a push request.
    device_token: String,
}

impl Idp {
    /// Starts the idp on `db_url` (its schema is `idp`; the issuer and the ledger share the database).
    pub async fn start(db_url: &str) -> Self {
        let root = workspace_root();
        let dir = std::env::temp_dir().join(format!("verify-rar-idp-{}", kit::random_id(8)));
        let keys_dir = dir.join("keys");
        let policy_dir = dir.join("policy");
        std::fs::create_dir_all(&policy_dir).unwrap();
        for entry in std::fs::read_dir(root.join("infra/policy")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), policy_dir.join(entry.file_name())).unwrap();
        }
        let agent = |name: &str| AgentIdentity {
            spiffe_id: format!("spiffe://demo.local/agent/{name}"),
            key: stack::keys::ensure(&keys_dir, name).unwrap(),
        };
        let (concierge, banking) = (agent("concierge"), agent("banking"));
        // The registry seeds every agent of agents.toml from its public key.
        for name in ["iam", "entra"] {
            stack::keys::ensure(&keys_dir, name).unwrap();
        }

        let mut config = ::idp::Config::new(db_url);
        config.bind = "127.0.0.1:0".parse().unwrap();
        config.keys_dir = keys_dir.clone();
        config.agents_file = root.join("infra/agents.toml");
        config.clients_file = root.join("infra/clients.toml");
        config.policy_dir = policy_dir;
        config.admin_token = Some(ADMIN.into());
        let app = ::idp::Application::build(config).await.unwrap();
        let url = app.issuer().to_owned();
        tokio::spawn(app.run_until(std::future::pending()));

        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            concierge: ExchangeClient::new(http.clone(), &url, concierge),
            banking: ExchangeClient::new(http.clone(), &url, banking),
            url,
            http,
            keys_dir,
        }
    }

    /// Signs `email` in like a browser: `/authorize`, the login form with the demo password,
    /// the code redeemed with its PKCE verifier; then the phone's token by refresh.
    pub async fn sign_in(&self, email: &str) -> Session {
        let verifier = format!("{}{}", kit::random_id(24), kit::random_id(24));
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()));
        let query = [
            ("response_type", "code"),
            ("client_id", WEB),
            ("redirect_uri", REDIRECT),
            ("scope", "openid email offline_access"),
            ("state", "st"),
            ("nonce", "n"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        let page = self
            .http
            .get(format!("{}/authorize", self.url))
            .query(&query)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let cookie = page.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let html = page.text().await.unwrap();
        let marker = "name=\"csrf\" value=\"";
        let start = html.find(marker).unwrap() + marker.len();
        let csrf = &html[start..start + html[start..].find('"').unwrap()];
        let mut form = query.to_vec();
        form.extend([
            ("email", email),
            ("password", ::idp::DEMO_PASSWORD),
            ("csrf", csrf),
        ]);
        let resp = self
            .http
            .post(format!("{}/authorize", self.url))
            .header("cookie", cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::SEE_OTHER,
            "login should redirect"
        );
        let location = reqwest::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
        let code = location
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned();
        let tokens = self
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ])
            .await;
        let access_token = tokens["access_token"].as_str().unwrap().to_owned();
        let device = self
            .token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
                ("resource", &self.url),
            ])
            .await;
        Session {
            sid: claims_of(&access_token).sid.unwrap(),
            access_token,
            device_token: device["access_token"].as_str().unwrap().to_owned(),
        }
    }

    /// The web app at the token endpoint.
    async fn token(&self, form: &[(&str, &str)]) -> Value {
        let resp = self
            .http
            .post(format!("{}/token", self.url))
            .basic_auth(WEB, Some(WEB_SECRET))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Hop 1: the concierge trades the user's token for T1, addressed to the banking agent.
    pub async fn t1(&self, session: &Session, business: &AuthorizationDetail) -> String {
        self.concierge
            .exchange(
                &session.access_token,
                BANKING,
                std::slice::from_ref(business),
            )
            .await
            .unwrap()
            .access_token
    }

    /// Both hops: T1, then banking trades it for a token to the issuer carrying `details`. When
    /// the policy asks for the user's approval, the user approves it on the phone (the approvals
    /// API) and banking collects the token by polling.
    pub async fn delegate(
        &self,
        session: &Session,
        business: &AuthorizationDetail,
        details: &[AuthorizationDetail],
    ) -> (String, AccessClaims) {
        let t1 = self.t1(session, business).await;
        let t2 = match self.banking.exchange(&t1, AUDIENCE, details).await {
            Err(ExchangeError::Pending(pending)) => {
                let id = pending.approval_id.clone().unwrap();
                let resp = self
                    .http
                    .post(format!("{}/api/approvals/{id}/approve", self.url))
                    .bearer_auth(&session.device_token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), StatusCode::OK);
                self.banking.wait(pending).await
            }
            other => other,
        };
        let access_token = t2.unwrap().access_token;
        let claims = claims_of(&access_token);
        (access_token, claims)
    }

    /// A real T2 for `session`: the business RAR plus read access to `verify-rar/creds/<role>`.
    pub async fn t2(
        &self,
        session: &Session,
        business: Value,
        role: &str,
    ) -> (String, AccessClaims) {
        let business = detail(business);
        let path = AuthorizationDetail::vault_read(&format!("verify-rar/creds/{role}"));
        self.delegate(session, &business, &[business.clone(), path])
            .await
    }

    /// Ends a session through the sessions API, as the administrator.
    pub async fn revoke_session(&self, sid: &str) {
        let resp = self
            .http
            .post(format!("{}/api/sessions/{sid}/revoke", self.url))
            .bearer_auth(ADMIN)
            .json(&json!({"reason": "verify-rar test"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }

    /// Lets the banking agent ask for `verify-rar/creds/<role>` too: the registry's admin API,
    /// as an operator adding a role to the issuer would.
    pub async fn allow_banking_path(&self, role: &str) {
        let url = format!("{}/admin/agents/banking", self.url);
        let mut agent: Value = self
            .http
            .get(&url)
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ceiling = agent["ceiling"].as_array_mut().unwrap();
        let paths = ceiling
            .iter_mut()
            .find(|c| c["type"] == kit::rar::VAULT_PATH_ACCESS)
            .unwrap();
        paths["locations"]
            .as_array_mut()
            .unwrap()
            .push(json!(format!("verify-rar/creds/{role}")));
        let resp = self
            .http
            .put(&url)
            .bearer_auth(ADMIN)
            .json(&agent)
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::OK,
            "{}",
            resp.text().await.unwrap()
        );
    }

    /// Signs `claims` with the idp's own key, for the tokens the idp would never mint as they
    /// are (expired, for another audience). Nothing valid is forged.
    pub fn forge(&self, claims: &AccessClaims) -> String {
        idp_key(&self.keys_dir)
            .sign(kit::claims::TYP_ACCESS, claims)
            .unwrap()
    }
}

fn idp_key(keys_dir: &Path) -> SigningKey {
    SigningKey::load_or_generate(keys_dir, "idp").unwrap()
}

pub fn claims_of(token: &str) -> AccessClaims {
    let (_, claims) = kit::jwt::decode_unverified(token).unwrap();
    serde_json::from_value(claims).unwrap()
}

/// A business RAR entry, validated (normalized) as the idp would carry it.
pub fn detail(v: Value) -> AuthorizationDetail {
    serde_json::from_value::<AuthorizationDetail>(v)
        .unwrap()
        .validated()
        .unwrap()
}

pub fn transfer_rar(value: &str, source: &str, destination: &str) -> Value {
    json!({"type": "urn:smt:agent:banking", "operationDetails": {
        "action": "transfer_funds", "amount": {"value": value, "currency": "USD"},
        "source": source, "destination": destination}})
}
