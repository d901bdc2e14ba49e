//! Test support: an idp on port 0 with its own database, its own keys and a private copy of the
//! policies; the demo agents' identities; and a browser-like sign-in through the real form.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::Duration,
};

use base64::Engine as _;
use kit::{
    claims::AccessClaims,
    exchange::{AgentIdentity, ExchangeClient, ExchangeError, Exchanged, Pending},
    jwt::SigningKey,
    rar::AuthorizationDetail,
};
use serde_json::{Value, json};
use sha2::Digest as _;

pub const ADMIN: &str = "test-admin-token-0123456789";
pub const WEB_SECRET: &str = "web-dev-secret-change-me";
pub const REDIRECT: &str = "http://127.0.0.1:8080/auth/callback";
pub const CONCIERGE: &str = "spiffe://demo.local/agent/concierge";
pub const BANKING: &str = "spiffe://demo.local/agent/banking";
pub const IAM: &str = "spiffe://demo.local/agent/iam";

pub struct TestApp {
    pub url: String,
    pub http: reqwest::Client,
    pub keys_dir: PathBuf,
    pub policy_dir: PathBuf,
    pub db_url: String,
    agents: HashMap<String, AgentIdentity>,
}

/// The tokens the web app holds after sign-in.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub id_token: String,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// [`spawn_app`] for a test that makes one session collect many refusals on purpose: the
/// anomaly rule (which would end that session after three) is off.
pub async fn spawn_app_tolerating_refusals() -> TestApp {
    spawn_app_with(|c| c.signals.anomaly_denials = 0).await
}

/// [`spawn_app`] with the configuration adjusted by `tweak` before the idp is built.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut idp::Config)) -> TestApp {
    let db_url = stack::testing::fresh_database().await.expect("database");
    let dir = std::env::temp_dir().join(format!("idp-test-{}", kit::random_id(8)));
    let keys_dir = dir.join("keys");
    let policy_dir = dir.join("policy");
    std::fs::create_dir_all(&policy_dir).unwrap();
    for f in ["schema.cedarschema", "tiers.cedar"] {
        std::fs::copy(repo().join("infra/policy").join(f), policy_dir.join(f)).unwrap();
    }
    let mut agents = HashMap::new();
    for name in ["concierge", "banking", "iam", "entra"] {
        let key = stack::keys::ensure(&keys_dir, name).unwrap();
        agents.insert(
            name.to_owned(),
            AgentIdentity {
                spiffe_id: format!("spiffe://demo.local/agent/{name}"),
                key,
            },
        );
    }
    let mut config = idp::Config::new(&db_url);
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.keys_dir = keys_dir.clone();
    config.agents_file = repo().join("infra/agents.toml");
    config.clients_file = repo().join("infra/clients.toml");
    config.policy_dir = policy_dir.clone();
    config.admin_token = Some(ADMIN.into());
    config.policy_poll = Duration::from_millis(100);
    tweak(&mut config);
    let app = idp::Application::build(config).await.expect("idp builds");
    let url = app.issuer().to_owned();
    tokio::spawn(app.run_until(std::future::pending()));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        url,
        http,
        keys_dir,
        policy_dir,
        db_url,
        agents,
    }
}

pub fn pkce() -> (String, String) {
    let verifier = format!("{}{}", kit::random_id(24), kit::random_id(24));
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

pub fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = text.find(start)? + start.len();
    let j = text[i..].find(end)? + i;
    Some(&text[i..j])
}

pub fn query_param(url: &str, key: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

impl TestApp {
    pub fn agent(&self, name: &str) -> ExchangeClient {
        ExchangeClient::new(self.http.clone(), &self.url, self.agents[name].clone())
    }

    pub fn identity(&self, name: &str) -> AgentIdentity {
        self.agents[name].clone()
    }

    /// The idp's own key, to forge tokens the idp would have signed (expired, wrong audience).
    pub fn idp_key(&self) -> SigningKey {
        SigningKey::load_or_generate(&self.keys_dir, "idp").unwrap()
    }

    /// GET /authorize, then POST the form like a browser. Returns the redirect Location.
    pub async fn submit_login(
        &self,
        email: &str,
        password: &str,
        challenge: &str,
    ) -> reqwest::Response {
        let q = [
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid email offline_access"),
            ("state", "st-123"),
            ("nonce", "n-456"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ];
        let page = self
            .http
            .get(format!("{}/authorize", self.url))
            .query(&q)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        let cookie = page.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let html = page.text().await.unwrap();
        let csrf = between(&html, "name=\"csrf\" value=\"", "\"")
            .expect("csrf field")
            .to_owned();
        let mut form: Vec<(&str, &str)> = q.to_vec();
        form.extend([
            ("email", email),
            ("password", password),
            ("csrf", csrf.as_str()),
        ]);
        self.http
            .post(format!("{}/authorize", self.url))
            .header("cookie", cookie)
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    pub async fn redeem(&self, code: &str, verifier: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/token", self.url))
            .basic_auth("web", Some(WEB_SECRET))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier),
            ])
            .send()
            .await
            .unwrap()
    }

    /// Signs in through the form with the demo password.
    pub async fn sign_in(&self, email: &str) -> Tokens {
        let (verifier, challenge) = pkce();
        let resp = self
            .submit_login(email, idp::DEMO_PASSWORD, &challenge)
            .await;
        assert_eq!(resp.status(), 303, "login should redirect");
        let location = resp.headers()["location"].to_str().unwrap().to_owned();
        let code = query_param(&location, "code").expect("code in redirect");
        let body: Value = self.redeem(&code, &verifier).await.json().await.unwrap();
        Tokens {
            access_token: body["access_token"].as_str().expect("access_token").into(),
            refresh_token: body["refresh_token"].as_str().unwrap().into(),
            id_token: body["id_token"].as_str().unwrap().into(),
        }
    }

    pub async fn refresh(&self, refresh_token: &str, resource: Option<&str>) -> reqwest::Response {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        if let Some(r) = resource {
            form.push(("resource", r));
        }
        self.http
            .post(format!("{}/token", self.url))
            .basic_auth("web", Some(WEB_SECRET))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// The user's own token for the idp's APIs (what the phone holds).
    pub async fn device_token(&self, tokens: &Tokens) -> String {
        let body: Value = self
            .refresh(&tokens.refresh_token, Some(&self.url))
            .await
            .json()
            .await
            .unwrap();
        body["access_token"].as_str().expect("device token").into()
    }

    pub async fn approve(&self, device_token: &str, approval_id: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/api/approvals/{approval_id}/approve", self.url))
            .bearer_auth(device_token)
            .send()
            .await
            .unwrap()
    }

    pub async fn deny(&self, device_token: &str, approval_id: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/api/approvals/{approval_id}/deny", self.url))
            .bearer_auth(device_token)
            .send()
            .await
            .unwrap()
    }

    pub async fn introspect(&self, token: &str) -> Value {
        self.http
            .post(format!("{}/introspect", self.url))
            .basic_auth("verify-rar", Some("verify-rar-dev-secret"))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The idp's events, newest first, optionally for one jti.
    pub async fn events(&self, jti: Option<&str>) -> Vec<Value> {
        let mut req = self
            .http
            .get(format!("{}/api/events", self.url))
            .bearer_auth(ADMIN);
        if let Some(j) = jti {
            req = req.query(&[("jti", j)]);
        }
        req.send().await.unwrap().json().await.unwrap()
    }

    /// The newest event of `kind`.
    pub async fn last_event(&self, kind: &str) -> Value {
        self.events(None)
            .await
            .into_iter()
            .find(|e| e["type"] == kind)
            .unwrap_or_else(|| panic!("no {kind} event"))
    }

    /// Hop 1: the concierge exchanges the user's token for one to `audience`.
    pub async fn hop1(
        &self,
        user_token: &str,
        audience: &str,
        details: &[AuthorizationDetail],
    ) -> Result<Exchanged, ExchangeError> {
        self.agent("concierge")
            .exchange(user_token, audience, details)
            .await
    }

    /// Registers (or replaces) an agent over the admin API and returns its identity.
    pub async fn register_agent(
        &self,
        name: &str,
        acts_for: &[&str],
        audiences: &[&str],
        ceiling: Value,
    ) -> AgentIdentity {
        let key = SigningKey::generate(format!("{name}-key")).unwrap();
        let spiffe_id = format!("spiffe://demo.local/agent/{name}");
        let body = json!({
            "name": name, "spiffe_id": spiffe_id, "public_jwk": key.public_jwk(),
            "audiences": audiences, "ceiling": ceiling, "acts_for": acts_for, "status": "active"
        });
        let resp = self
            .http
            .put(format!("{}/admin/agents/{name}", self.url))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
        AgentIdentity { spiffe_id, key }
    }

    pub async fn set_agent_status(&self, name: &str, status: &str) {
        let resp = self
            .http
            .post(format!("{}/admin/agents/{name}/status", self.url))
            .bearer_auth(ADMIN)
            .json(&json!({"status": status}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }

    /// Signs `claims` with the idp's own key, as the idp would.
    pub fn forge(&self, claims: &AccessClaims) -> String {
        self.idp_key()
            .sign(kit::claims::TYP_ACCESS, claims)
            .unwrap()
    }
}

pub fn claims_of(token: &str) -> AccessClaims {
    let (_, c) = kit::jwt::decode_unverified(token).unwrap();
    serde_json::from_value(c).unwrap()
}

pub fn transfer(value: &str, source: &str, destination: &str) -> AuthorizationDetail {
    AuthorizationDetail::operation(
        kit::rar::BANKING,
        "transfer_funds",
        [
            ("amount", json!({"value": value, "currency": "USD"})),
            ("source", json!(source)),
            ("destination", json!(destination)),
        ],
    )
    .validated()
    .unwrap()
}

pub fn balance(account: &str) -> AuthorizationDetail {
    AuthorizationDetail::operation(
        kit::rar::BANKING,
        "get_balance",
        [("account", json!(account))],
    )
}

pub fn iam(action: &str, email: &str) -> AuthorizationDetail {
    AuthorizationDetail::operation(kit::rar::IAM, action, [("email", json!(email))])
}

pub fn vault(role: &str) -> AuthorizationDetail {
    AuthorizationDetail::vault_read(&format!("verify-rar/creds/{role}"))
}

pub fn refused(r: Result<Exchanged, ExchangeError>) -> (String, String) {
    match r {
        Err(ExchangeError::Refused { error, description }) => (error, description),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

pub fn pending(r: Result<Exchanged, ExchangeError>) -> Pending {
    match r {
        Err(ExchangeError::Pending(p)) => p,
        other => panic!("expected authorization_pending, got {other:?}"),
    }
}
