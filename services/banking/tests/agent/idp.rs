//! The real identity provider (`services/idp`) on a port-0 listener, on the test's database
//! (schema `idp`), with the demo agents' keys generated into a temp dir (the banking agent
//! loads its own key from there) and a private copy of the policies. Users sign in through the
//! real login form (code + PKCE); T1 comes from the real hop 1 with the concierge's key; push
//! approvals are decided through the approvals API with the user's own device token.

use std::path::PathBuf;

use base64::Engine as _;
use kit::{
    claims::AccessClaims,
    exchange::{AgentIdentity, ExchangeClient},
    rar::AuthorizationDetail,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::harness::workspace_root;

const WEB: &str = "web";
const WEB_SECRET: &str = "web-dev-secret-change-me";
const REDIRECT: &str = "http://127.0.0.1:8080/auth/callback";
pub const BANKING: &str = "spiffe://demo.local/agent/banking";
pub const IAM: &str = "spiffe://demo.local/agent/iam";

/// A running idp.
#[derive(Clone)]
pub struct Idp {
    pub url: String,
    pub keys_dir: PathBuf,
    http: reqwest::Client,
    concierge: ExchangeClient,
}

/// A signed-in user: the web app's token (which names the concierge in `may_act`) and the
/// phone's token (the user's own token for the idp's APIs).
#[derive(Debug, Clone)]
pub struct Session {
    pub access_token: String,
    device_token: String,
}

impl Idp {
    /// Starts the idp on `db_url` (its schema is `idp`).
    pub async fn start(db_url: &str) -> Self {
        let root = workspace_root();
        let dir = std::env::temp_dir().join(format!("banking-idp-{}", kit::random_id(8)));
        let keys_dir = dir.join("keys");
        let policy_dir = dir.join("policy");
        std::fs::create_dir_all(&policy_dir).unwrap();
        for entry in std::fs::read_dir(root.join("infra/policy")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), policy_dir.join(entry.file_name())).unwrap();
        }
        // The registry seeds every agent of agents.toml from its public key.
        for name in stack::launch::AGENTS {
            stack::keys::ensure(&keys_dir, name).unwrap();
        }
        let concierge = AgentIdentity {
            spiffe_id: kit::agent::spiffe_id("concierge"),
            key: stack::keys::ensure(&keys_dir, "concierge").unwrap(),
        };

        let mut config = ::idp::Config::new(db_url);
        config.bind = "127.0.0.1:0".parse().unwrap();
        config.keys_dir = keys_dir.clone();
        config.agents_file = root.join("infra/agents.toml");
        config.clients_file = root.join("infra/clients.toml");
        config.policy_dir = policy_dir;
        let app = ::idp::Application::build(config).await.unwrap();
        let url = app.issuer().to_owned();
        tokio::spawn(app.run_until(std::future::pending()));

        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            concierge: ExchangeClient::new(http.clone(), &url, concierge),
            url,
            keys_dir,
            http,
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
        let device = self
            .token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
                ("resource", &self.url),
            ])
            .await;
        Session {
            access_token: tokens["access_token"].as_str().unwrap().to_owned(),
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

    /// Hop 1, as the concierge: the user's token for T1 addressed to `audience`, carrying
    /// `business` (one entry per operation the specialist may then perform).
    pub async fn t1_for(&self, session: &Session, audience: &str, business: &[Value]) -> String {
        let details: Vec<AuthorizationDetail> = business.iter().map(detail).collect();
        self.concierge
            .exchange(&session.access_token, audience, &details)
            .await
            .unwrap()
            .access_token
    }

    /// T1 for the banking agent with one operation.
    pub async fn t1(&self, session: &Session, business: &Value) -> String {
        self.t1_for(session, BANKING, std::slice::from_ref(business))
            .await
    }

    /// The user decides a push approval on their phone.
    pub async fn decide(&self, session: &Session, approval_id: &str, approve: bool) {
        let verb = if approve { "approve" } else { "deny" };
        let resp = self
            .http
            .post(format!("{}/api/approvals/{approval_id}/{verb}", self.url))
            .bearer_auth(&session.device_token)
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
}

pub fn claims_of(token: &str) -> AccessClaims {
    let (_, claims) = kit::jwt::decode_unverified(token).unwrap();
    serde_json::from_value(claims).unwrap()
}

/// A business RAR entry, validated (normalized) as the idp would carry it.
pub fn detail(v: &Value) -> AuthorizationDetail {
    serde_json::from_value::<AuthorizationDetail>(v.clone())
        .unwrap()
        .validated()
        .unwrap()
}

/// The RAR of `action` on the banking type with `fields` (the tool call's arguments).
pub fn banking_rar(action: &str, fields: Value) -> Value {
    let mut od = fields.as_object().cloned().unwrap_or_default();
    od.insert("action".into(), json!(action));
    json!({"type": kit::rar::BANKING, "operationDetails": od})
}
