//! `spawn_app()`: a fresh database with the ledger migrated, the real idp, and the issuer on a
//! port-0 listener; plus small helpers the tests share.

use std::{path::PathBuf, str::FromStr as _, time::Duration};

use reqwest::StatusCode;
use serde_json::Value;
use tokio_postgres::{Client, NoTls};
use verify_rar::{AppState, Config};

use crate::idp::Idp;

pub const ADMIN_TOKEN: &str = "admin-token-for-tests-0123456789";

pub struct App {
    pub addr: String,
    pub db_url: String,
    pub idp: Idp,
    pub state: AppState,
    pub config: Config,
    pub http: reqwest::Client,
    pub admin: Client,
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub async fn connect(cfg: &tokio_postgres::Config) -> Result<Client, tokio_postgres::Error> {
    let (client, conn) = cfg.connect(NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

/// The issuer's configuration for a test database and idp.
pub fn test_config(db_url: &str, idp: &Idp) -> Config {
    let mut c = Config::new(db_url);
    c.idp_issuer = idp.url.clone();
    c.admin_token = Some(ADMIN_TOKEN.into());
    c.roles_dir = workspace_root().join("infra/verify-rar");
    c.audit_log = std::env::temp_dir().join(format!("verify-rar-test-{}.jsonl", kit::random_id(8)));
    c.instance_id = format!("test-{}", kit::random_id(6));
    // Tests call the reaper themselves; the background one must not race them.
    c.reap_interval = Duration::from_secs(3600);
    c
}

pub async fn spawn_app() -> App {
    let db_url = stack::testing::fresh_database().await.unwrap();
    let ledger = kit::pg::pool(&db_url, banking::SCHEMA, 2).unwrap();
    banking::migrate(&ledger).await.unwrap();
    let idp = Idp::start(&db_url).await;
    spawn_with(db_url, idp, |_| {}).await
}

/// Starts an issuer (a new instance, or a restart when given the same config) on a database.
pub async fn spawn_with(db_url: String, idp: Idp, tweak: impl FnOnce(&mut Config)) -> App {
    let mut config = test_config(&db_url, &idp);
    tweak(&mut config);
    start(db_url, idp, config).await
}

pub async fn start(db_url: String, idp: Idp, config: Config) -> App {
    let state = AppState::build(config.clone()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(verify_rar::serve(
        listener,
        state.clone(),
        std::future::pending(),
    ));
    let admin = connect(&tokio_postgres::Config::from_str(&db_url).unwrap())
        .await
        .unwrap();
    App {
        addr,
        db_url,
        idp,
        state,
        config,
        http: reqwest::Client::new(),
        admin,
    }
}

impl App {
    /// `(status, content-type, JSON body)` of a Vault API call.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, String, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.addr))
            .header("X-Vault-Request", "true");
        if let Some(t) = token {
            req = req.header("X-Vault-Token", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, ct, body)
    }

    /// Logs in with `jwt`; returns the Vault token.
    pub async fn login(&self, jwt: &str) -> String {
        let (status, _, body) = self
            .call(
                "POST",
                "/v1/auth/jwt/login",
                None,
                Some(serde_json::json!({"jwt": jwt})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["auth"]["client_token"].as_str().unwrap().to_owned()
    }

    /// Reads creds; returns `(lease_id, username, password)`.
    pub async fn creds(&self, token: &str, role: &str) -> (String, String, String) {
        let (status, _, body) = self
            .call(
                "GET",
                &format!("/v1/verify-rar/creds/{role}"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let s = |v: &Value| v.as_str().unwrap().to_owned();
        (
            s(&body["lease_id"]),
            s(&body["data"]["username"]),
            s(&body["data"]["password"]),
        )
    }

    /// Connects to the test database as `user` with real password authentication.
    pub async fn connect_as(
        &self,
        user: &str,
        password: &str,
    ) -> Result<Client, tokio_postgres::Error> {
        let mut cfg = tokio_postgres::Config::from_str(&self.db_url).unwrap();
        cfg.user(user).password(password);
        connect(&cfg).await
    }

    /// Does `role` exist in the cluster? (Roles are cluster-wide: only ask about our own.)
    pub async fn role_exists(&self, role: &str) -> bool {
        self.admin
            .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
            .await
            .unwrap()
            .is_some()
    }

    pub async fn balance(&self, owner: &str, name: &str) -> i64 {
        self.admin
            .query_one(
                "SELECT balance_cents FROM banking.accounts WHERE owner = $1 AND name = $2",
                &[&owner, &name],
            )
            .await
            .unwrap()
            .get(0)
    }
}

/// Asserts the Vault error shape: the status, `Content-Type: application/json` exactly, and an
/// `errors` array whose text contains `needle`.
pub fn assert_vault_error(got: &(StatusCode, String, Value), status: StatusCode, needle: &str) {
    let (s, ct, body) = got;
    assert_eq!(*s, status, "{body}");
    assert_eq!(ct, "application/json");
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors array in {body}"));
    assert!(
        errors.iter().any(|e| e.as_str().unwrap().contains(needle)),
        "{needle:?} not in {body}"
    );
}
