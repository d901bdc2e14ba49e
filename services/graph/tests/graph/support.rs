//! Test support: the real idp and graph on port-0 listeners over one fresh database; users
//! signed in through the real login form (code + PKCE); delegated tokens from the real two hops
//! (the concierge for the user, then the entra agent for graph), with the user's push approval
//! given on the "phone" (the approvals API) when the policy asks. Only tokens the idp would never
//! mint (no `act`, expired) are forged, with the idp's own key.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use kit::{
    claims::{AccessClaims, Audience},
    exchange::{AgentIdentity, ExchangeClient, ExchangeError},
    jwt::SigningKey,
    rar::AuthorizationDetail,
};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sha2::Digest as _;

const ADMIN: &str = "idp-admin-token-for-graph-tests-0123";
const WEB_SECRET: &str = "web-dev-secret-change-me";
const REDIRECT: &str = "http://127.0.0.1:8080/auth/callback";
pub const ENTRA_AGENT: &str = "spiffe://demo.local/agent/entra";

pub struct App {
    /// graph's base URL.
    pub url: String,
    pub idp: Idp,
    pub http: reqwest::Client,
    db: tokio_postgres::Client,
    /// Ids of the events already looked at (see [`App::next_event`]).
    seen: Vec<String>,
}

pub struct Idp {
    pub url: String,
    http: reqwest::Client,
    keys_dir: PathBuf,
    concierge: ExchangeClient,
    entra: ExchangeClient,
}

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct Session {
    pub sid: String,
    /// The web app's token: for the concierge, naming it in `may_act`.
    pub access_token: String,
    /// The user's own token for the idp's APIs (what the phone holds).
    pub device_token: String,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub async fn spawn_app() -> App {
    let db_url = stack::testing::fresh_database().await.expect("database");
    let idp = Idp::start(&db_url).await;
    let mut config = graph::Config::new(&db_url);
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.idp_issuer = idp.url.clone();
    let app = graph::Application::build(config)
        .await
        .expect("graph builds");
    let url = app.url().to_owned();
    tokio::spawn(app.run_until(std::future::pending()));
    let (db, conn) = tokio_postgres::connect(&db_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    App {
        url,
        http: idp.http.clone(),
        idp,
        db,
        seen: Vec::new(),
    }
}

impl Idp {
    async fn start(db_url: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("graph-test-idp-{}", kit::random_id(8)));
        let keys_dir = dir.join("keys");
        let policy_dir = dir.join("policy");
        std::fs::create_dir_all(&policy_dir).unwrap();
        for entry in std::fs::read_dir(repo().join("infra/policy")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), policy_dir.join(entry.file_name())).unwrap();
        }
        let agent = |name: &str| AgentIdentity {
            spiffe_id: format!("spiffe://demo.local/agent/{name}"),
            key: stack::keys::ensure(&keys_dir, name).unwrap(),
        };
        let (concierge, entra) = (agent("concierge"), agent("entra"));
        // The registry seeds every agent of agents.toml from its public key.
        for name in ["banking", "iam"] {
            stack::keys::ensure(&keys_dir, name).unwrap();
        }
        let mut config = idp::Config::new(db_url);
        config.bind = "127.0.0.1:0".parse().unwrap();
        config.keys_dir = keys_dir.clone();
        config.agents_file = repo().join("infra/agents.toml");
        config.clients_file = repo().join("infra/clients.toml");
        config.policy_dir = policy_dir;
        config.admin_token = Some(ADMIN.into());
        let app = idp::Application::build(config).await.expect("idp builds");
        let url = app.issuer().to_owned();
        tokio::spawn(app.run_until(std::future::pending()));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            concierge: ExchangeClient::new(http.clone(), &url, concierge),
            entra: ExchangeClient::new(http.clone(), &url, entra),
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
            ("client_id", "web"),
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
        let start = html.find(marker).expect("csrf field") + marker.len();
        let csrf = &html[start..start + html[start..].find('"').unwrap()];
        let mut form = query.to_vec();
        form.extend([
            ("email", email),
            ("password", idp::DEMO_PASSWORD),
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
            .expect("code in redirect")
            .1
            .into_owned();
        let tokens = self
            .web_token(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ])
            .await;
        let access_token = tokens["access_token"].as_str().unwrap().to_owned();
        let device = self
            .web_token(&[
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
    async fn web_token(&self, form: &[(&str, &str)]) -> Value {
        let resp = self
            .http
            .post(format!("{}/token", self.url))
            .basic_auth("web", Some(WEB_SECRET))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Hop 1: the concierge trades the user's token for T1, addressed to the entra agent.
    pub async fn t1(&self, session: &Session, detail: &AuthorizationDetail) -> String {
        self.concierge
            .exchange(
                &session.access_token,
                ENTRA_AGENT,
                std::slice::from_ref(detail),
            )
            .await
            .expect("hop 1")
            .access_token
    }

    /// Both hops: T1, then the entra agent trades it for a token to graph carrying `detail`.
    /// When the policy asks (a create is tier 2), the user approves on the phone and the agent
    /// collects the token by polling.
    pub async fn graph_token(&self, session: &Session, detail: &AuthorizationDetail) -> String {
        let t1 = self.t1(session, detail).await;
        let t2 = match self
            .entra
            .exchange(&t1, "graph", std::slice::from_ref(detail))
            .await
        {
            Err(ExchangeError::Pending(pending)) => {
                let id = pending.approval_id.clone().expect("approval id");
                let resp = self
                    .http
                    .post(format!("{}/api/approvals/{id}/approve", self.url))
                    .bearer_auth(&session.device_token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), StatusCode::OK);
                self.entra.wait(pending).await
            }
            other => other,
        };
        t2.expect("hop 2").access_token
    }

    /// Ends a session through the sessions API, as the administrator.
    pub async fn revoke_session(&self, sid: &str) {
        let resp = self
            .http
            .post(format!("{}/api/sessions/{sid}/revoke", self.url))
            .bearer_auth(ADMIN)
            .json(&json!({"reason": "graph test"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }

    /// Signs `claims` with the idp's own key, for tokens the idp would never mint as they are.
    pub fn forge(&self, claims: &AccessClaims) -> String {
        SigningKey::load_or_generate(&self.keys_dir, "idp")
            .unwrap()
            .sign(kit::claims::TYP_ACCESS, claims)
            .unwrap()
    }
}

impl App {
    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut req = self.http.get(format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    pub async fn create(&self, token: &str, body: &Value) -> Response {
        self.http
            .post(format!("{}/v1.0/users", self.url))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// The one event written since the last call: each request writes exactly one.
    pub async fn next_event(&mut self) -> Value {
        let rows = self
            .db
            .query("SELECT id::text, body FROM graph.events", &[])
            .await
            .unwrap();
        let fresh: Vec<(String, Value)> = rows
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, Value>(1)))
            .filter(|(id, _)| !self.seen.contains(id))
            .collect();
        assert_eq!(fresh.len(), 1, "expected exactly one new event: {fresh:?}");
        let (id, body) = fresh.into_iter().next().unwrap();
        self.seen.push(id);
        body
    }

    /// Asserts the next event is a refusal of `kind` under `rule`, and returns it.
    pub async fn expect_refusal(&mut self, kind: &str, rule: &str) -> Value {
        let e = self.next_event().await;
        assert_eq!(e["service"], "graph", "{e}");
        assert_eq!(e["type"], kind, "{e}");
        assert_eq!(e["outcome"], "denied", "{e}");
        let reason = e["reason"].as_str().unwrap_or_default();
        assert!(
            reason.starts_with(&format!("{rule}:")),
            "reason {reason:?} should name {rule}"
        );
        e
    }

    /// The column that ties a user row to the token that created it.
    pub async fn created_by_jti(&self, upn: &str) -> Option<String> {
        self.db
            .query_opt(
                "SELECT created_by_jti FROM graph.users WHERE upn_key = lower($1)",
                &[&upn],
            )
            .await
            .unwrap()
            .map(|r| r.get(0))
    }
}

pub fn claims_of(token: &str) -> AccessClaims {
    let (_, c) = kit::jwt::decode_unverified(token).unwrap();
    serde_json::from_value(c).unwrap()
}

/// An `urn:smt:agent:entra` entry, normalized as the idp carries it.
pub fn entra(action: &str, email: Option<&str>) -> AuthorizationDetail {
    let fields: Vec<(&'static str, Value)> =
        email.map(|e| ("email", json!(e))).into_iter().collect();
    AuthorizationDetail::operation(kit::rar::ENTRA, action, fields)
        .validated()
        .unwrap()
}

/// Graph's body for creating `upn`.
pub fn new_user(upn: &str, display_name: &str) -> Value {
    json!({
        "accountEnabled": true,
        "displayName": display_name,
        "mailNickname": upn.split('@').next().unwrap(),
        "userPrincipalName": upn,
        "passwordProfile": {"forceChangePasswordNextSignIn": true, "password": "xWwvJ]6NMw+bWH-d"}
    })
}

/// Asserts a Graph-shaped error with `status` and `code`, whose `innerError.request-id` is the
/// response's `request-id` header; returns the body.
pub async fn graph_error(resp: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(resp.status(), status);
    let request_id = resp.headers()["request-id"].to_str().unwrap().to_owned();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    let inner = &body["error"]["innerError"];
    assert_eq!(inner["request-id"], request_id.as_str(), "{body}");
    assert_eq!(inner["date"].as_str().map(str::len), Some(19), "{body}");
    body
}

/// A user's claims turned into a token the idp would never mint: addressed to graph, but with
/// no `act` (the user's own token), or expired.
pub fn reshaped(from: &AccessClaims, change: impl FnOnce(&mut AccessClaims)) -> AccessClaims {
    let mut c = from.clone();
    c.aud = Audience::one("graph");
    c.jti = kit::random_id(16);
    change(&mut c);
    c
}
