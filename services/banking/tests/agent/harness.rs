//! `spawn_app()`: a fresh database with the ledger migrated, the real idp, the real issuer and
//! the banking agent, each on a port-0 listener; plus the helpers the tests share.

use std::{path::PathBuf, str::FromStr as _, time::Duration};

use futures::{StreamExt as _, stream::BoxStream};
use kit::a2a::{Message, StreamResponse, ToolCall, client::ClientError};
use reqwest::StatusCode;
use serde_json::Value;
use tokio_postgres::{Client, NoTls};

use crate::idp::Idp;

pub const ALICE: &str = "alice@example.com";

pub struct App {
    /// The agent's base URL (its card is at `/.well-known/agent-card.json`).
    pub url: String,
    /// The JSON-RPC endpoint.
    pub endpoint: String,
    pub idp: Idp,
    pub a2a: kit::a2a::client::Client,
    pub http: reqwest::Client,
    /// A superuser connection to the test database, to look at what the services wrote.
    pub admin: Client,
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub async fn spawn_app() -> App {
    let db_url = stack::testing::fresh_database().await.unwrap();
    // The issuer writes grant rows into the ledger: its schema comes first.
    let ledger = kit::pg::pool(&db_url, banking::SCHEMA, 2).unwrap();
    banking::migrate(&ledger).await.unwrap();
    let idp = Idp::start(&db_url).await;

    let mut vr = verify_rar::Config::new(&db_url);
    vr.bind = "127.0.0.1:0".parse().unwrap();
    vr.idp_issuer = idp.url.clone();
    vr.roles_dir = workspace_root().join("infra/verify-rar");
    vr.audit_log =
        std::env::temp_dir().join(format!("banking-test-vr-{}.jsonl", kit::random_id(8)));
    vr.instance_id = format!("banking-test-{}", kit::random_id(6));
    let state = verify_rar::AppState::build(vr).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let vault_addr = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(verify_rar::serve(listener, state, std::future::pending()));

    let mut config = banking::Config::new(&db_url);
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.idp_issuer = idp.url.clone();
    config.vault_addr = vault_addr;
    config.keys_dir = idp.keys_dir.clone();
    let app = banking::Application::build(config).await.unwrap();
    let url = app.base_url().to_owned();
    tokio::spawn(app.run_until(std::future::pending()));

    let (admin, conn) = tokio_postgres::Config::from_str(&db_url)
        .unwrap()
        .connect(NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let http = reqwest::Client::new();
    App {
        endpoint: format!("{url}{}", kit::a2a::RPC_PATH),
        url,
        idp,
        a2a: kit::a2a::client::Client::new(http.clone()),
        http,
        admin,
    }
}

/// A tool call as the concierge sends it: words for people, the call as a data part.
pub fn tool_call(text: &str, skill: &str, arguments: Value) -> Message {
    Message::tool_call(
        text,
        &ToolCall {
            skill: skill.into(),
            arguments,
        },
    )
}

impl App {
    /// Every balance of the ledger, to show that nothing else changed.
    pub async fn all_balances(&self) -> Vec<(String, String, i64)> {
        self.admin
            .query(
                "SELECT owner, name, balance_cents FROM banking.accounts ORDER BY owner, name",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    }

    /// The banking agent's own security events of `kind`, oldest first.
    pub async fn events(&self, kind: &str) -> Vec<Value> {
        self.admin
            .query(
                "SELECT body FROM banking.events WHERE kind = $1 ORDER BY at, id",
                &[&kind],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// Does `role` exist in the cluster? (Roles are cluster-wide: only ask about our own.)
    pub async fn role_exists(&self, role: &str) -> bool {
        self.admin
            .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
            .await
            .unwrap()
            .is_some()
    }

    /// `SendStreamingMessage`, collected until the stream closes. The user answers any push
    /// approval with `decide` (called with the approval id from the `AUTH_REQUIRED` status).
    pub async fn stream_until_done(
        &self,
        token: &str,
        message: &Message,
        mut decide: impl AsyncFnMut(&str),
    ) -> Vec<StreamResponse> {
        let mut stream: BoxStream<'static, Result<StreamResponse, ClientError>> = self
            .a2a
            .stream(&self.endpoint, token, message)
            .await
            .unwrap();
        let mut events = vec![];
        while let Some(ev) = tokio::time::timeout(Duration::from_secs(60), stream.next())
            .await
            .unwrap_or_else(|_| panic!("the stream stalled"))
        {
            let ev = ev.unwrap();
            if let StreamResponse::StatusUpdate(u) = &ev
                && u.status.state == kit::a2a::TaskState::AuthRequired
            {
                let data = u
                    .status
                    .message
                    .as_ref()
                    .and_then(Message::data)
                    .cloned()
                    .unwrap();
                decide(data["approval_id"].as_str().unwrap()).await;
            }
            events.push(ev);
        }
        events
    }

    /// A raw JSON-RPC POST: `(HTTP status, WWW-Authenticate, body)`.
    pub async fn raw_rpc(
        &self,
        token: Option<&str>,
        body: Value,
    ) -> (StatusCode, Option<String>, Value) {
        let mut req = self
            .http
            .post(&self.endpoint)
            .header("A2A-Version", "1.0")
            .json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, challenge, resp.json().await.unwrap())
    }
}
