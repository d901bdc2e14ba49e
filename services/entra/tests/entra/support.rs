//! `spawn_app()`: a fresh database, the real idp, the real Graph stand-in and the entra agent,
//! each on a port-0 listener; and the concierge's side of the conversation: sign-in through the
//! real login form, hop 1 with the concierge's own key, A2A calls, approvals on alice's "phone".

use std::{
    path::{Path, PathBuf},
    str::FromStr as _,
    time::Duration,
};

use base64::Engine as _;
use kit::{
    a2a::{Message, SendMessageResponse, Task, TaskState, ToolCall, client::Client},
    claims::AccessClaims,
    exchange::{AgentIdentity, ExchangeClient, ExchangeError},
    rar::AuthorizationDetail,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Digest as _;

pub const ALICE: &str = "alice@example.com";
pub const SARAH: &str = "sarah.smith@example.com";
pub const ENTRA_AGENT: &str = "spiffe://demo.local/agent/entra";
const ADMIN: &str = "idp-admin-token-for-entra-tests-01";
const WEB_SECRET: &str = "web-dev-secret-change-me";
const REDIRECT: &str = "http://127.0.0.1:8080/auth/callback";

pub struct App {
    /// The agent's JSON-RPC endpoint.
    pub endpoint: String,
    /// The agent's base URL.
    pub url: String,
    /// The idp's issuer URL.
    pub idp: String,
    /// The Graph stand-in's base URL.
    pub graph: String,
    pub http: reqwest::Client,
    pub a2a: Client,
    concierge: ExchangeClient,
    /// A superuser connection to the test database, to look at what the services wrote.
    db: tokio_postgres::Client,
}

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct Session {
    /// The web app's token: for the concierge, naming it in `may_act`.
    pub access_token: String,
    /// The user's own token for the idp's APIs (what the phone holds).
    pub device_token: String,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub async fn spawn_app() -> App {
    let db_url = stack::testing::fresh_database().await.unwrap();
    let dir = std::env::temp_dir().join(format!("entra-test-{}", kit::random_id(8)));
    let keys_dir = dir.join("keys");
    let policy_dir = dir.join("policy");
    std::fs::create_dir_all(&policy_dir).unwrap();
    for f in ["schema.cedarschema", "tiers.cedar"] {
        std::fs::copy(repo().join("infra/policy").join(f), policy_dir.join(f)).unwrap();
    }
    // Every agent of agents.toml needs its key before the registry is seeded from them.
    for name in ["concierge", "banking", "iam", "entra"] {
        stack::keys::ensure(&keys_dir, name).unwrap();
    }
    let concierge = AgentIdentity {
        spiffe_id: "spiffe://demo.local/agent/concierge".into(),
        key: stack::keys::ensure(&keys_dir, "concierge").unwrap(),
    };

    let mut config = idp::Config::new(&db_url);
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.keys_dir = keys_dir.clone();
    config.agents_file = repo().join("infra/agents.toml");
    config.clients_file = repo().join("infra/clients.toml");
    config.policy_dir = policy_dir;
    config.admin_token = Some(ADMIN.into());
    let idp = idp::Application::build(config).await.unwrap();
    let idp_url = idp.issuer().to_owned();
    tokio::spawn(idp.run_until(std::future::pending()));

    let mut config = graph::Config::new(&db_url);
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.idp_issuer = idp_url.clone();
    let graph = graph::Application::build(config).await.unwrap();
    let graph_url = graph.url().to_owned();
    tokio::spawn(graph.run_until(std::future::pending()));

    let mut config = entra::Config::new(&db_url);
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.idp_issuer = idp_url.clone();
    config.graph_url = graph_url.clone();
    config.keys_dir = keys_dir;
    let app = entra::Application::build(config).await.unwrap();
    let url = app.url.clone();
    tokio::spawn(app.run_until(std::future::pending()));

    let (db, conn) = tokio_postgres::Config::from_str(&db_url)
        .unwrap()
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    App {
        endpoint: format!("{url}{}", kit::a2a::RPC_PATH),
        url,
        concierge: ExchangeClient::new(http.clone(), &idp_url, concierge),
        idp: idp_url,
        graph: graph_url,
        a2a: Client::new(http.clone()),
        http,
        db,
    }
}

/// An `urn:smt:agent:entra` entry for `action` with `fields`, as the concierge asks for it.
pub fn entra(action: &str, fields: Value) -> AuthorizationDetail {
    let mut d = AuthorizationDetail::operation(kit::rar::ENTRA, action, []);
    if let (Some(od), Value::Object(f)) = (d.operation_details.as_mut(), fields) {
        od.extend(f);
    }
    d.validated().unwrap()
}

pub fn claims_of(token: &str) -> AccessClaims {
    let (_, c) = kit::jwt::decode_unverified(token).unwrap();
    serde_json::from_value(c).unwrap()
}

impl App {
    /// Signs `email` in like a browser: `/authorize`, the login form with the demo password, the
    /// code redeemed with its PKCE verifier; then the phone's token by refresh.
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
            .get(format!("{}/authorize", self.idp))
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
            .post(format!("{}/authorize", self.idp))
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
        let device = self
            .web_token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
                ("resource", &self.idp),
            ])
            .await;
        Session {
            access_token: tokens["access_token"].as_str().unwrap().to_owned(),
            device_token: device["access_token"].as_str().unwrap().to_owned(),
        }
    }

    async fn web_token(&self, form: &[(&str, &str)]) -> Value {
        let resp = self
            .http
            .post(format!("{}/token", self.idp))
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

    /// Hop 1, as the concierge: the user's token for one addressed to the entra agent.
    pub async fn hop1(
        &self,
        session: &Session,
        detail: &AuthorizationDetail,
    ) -> Result<String, ExchangeError> {
        self.concierge
            .exchange(
                &session.access_token,
                ENTRA_AGENT,
                std::slice::from_ref(detail),
            )
            .await
            .map(|t| t.access_token)
    }

    /// Hop 1 for `skill` with `arguments` (which are the entry's fields), then the A2A call
    /// with that T1, blocking until the task ends or waits on the user. Returns T1 and the task.
    pub async fn call(&self, session: &Session, skill: &str, arguments: Value) -> (String, Task) {
        let t1 = self
            .hop1(session, &entra(skill, arguments.clone()))
            .await
            .expect("hop 1 is delegation, tier 1");
        let task = self.send(&t1, skill, arguments).await;
        (t1, task)
    }

    /// `SendMessage` (blocking) with a tool call.
    pub async fn send(&self, t1: &str, skill: &str, arguments: Value) -> Task {
        let message = Message::tool_call(
            format!("please {skill}"),
            &ToolCall {
                skill: skill.into(),
                arguments,
            },
        );
        match self
            .a2a
            .send(&self.endpoint, t1, &message, false)
            .await
            .unwrap()
        {
            SendMessageResponse::Task(t) => t,
            other => panic!("expected a task, got {other:?}"),
        }
    }

    /// `GetTask` until the task reaches a terminal state.
    pub async fn finish(&self, t1: &str, task: &Task) -> Task {
        for _ in 0..300 {
            let t = self
                .a2a
                .get_task(&self.endpoint, t1, &task.id)
                .await
                .unwrap();
            if t.status.state.is_terminal() {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("task {} did not finish", task.id)
    }

    /// The user's answer on the phone to the approval a task waits for.
    pub async fn decide(&self, session: &Session, task: &Task, approve: bool) {
        assert_eq!(task.status.state, TaskState::AuthRequired, "{task:?}");
        let data = task
            .status
            .message
            .as_ref()
            .and_then(Message::data)
            .expect("the approval's details");
        let id = data["approval_id"].as_str().expect("approval id");
        let verb = if approve { "approve" } else { "deny" };
        let resp = self
            .http
            .post(format!("{}/api/approvals/{id}/{verb}", self.idp))
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

    /// The entra agent's own security events of `kind`, oldest first.
    pub async fn events(&self, kind: &str) -> Vec<Value> {
        let rows = self
            .db
            .query(
                "SELECT body FROM entra.events WHERE kind = $1 ORDER BY at, id",
                &[&kind],
            )
            .await
            .unwrap();
        rows.iter().map(|r| r.get(0)).collect()
    }

    /// Graph's own events for one `jti` (its record of the same request).
    pub async fn graph_events(&self, jti: &str) -> Vec<Value> {
        let rows = self
            .db
            .query(
                "SELECT body FROM graph.events WHERE jti = $1 ORDER BY at, id",
                &[&jti],
            )
            .await
            .unwrap();
        rows.iter().map(|r| r.get(0)).collect()
    }

    /// Graph's store, straight from it: `(userPrincipalName, displayName, created_by_jti)`.
    pub async fn stored_users(&self) -> Vec<(String, String, String)> {
        let rows = self.db.query("SELECT user_principal_name, display_name, created_by_jti FROM graph.users ORDER BY 1", &[]).await.unwrap();
        rows.iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    }
}

/// The task's final words.
pub fn said(task: &Task) -> String {
    task.status
        .message
        .as_ref()
        .map(Message::text)
        .unwrap_or_default()
}

/// The data part of the task's result artifact.
pub fn result_data(task: &Task) -> Value {
    task.artifacts
        .iter()
        .flat_map(|a| &a.parts)
        .find_map(|p| p.data.clone())
        .unwrap_or_else(|| json!(null))
}
