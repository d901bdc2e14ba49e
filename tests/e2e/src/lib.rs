//! Support for driving the whole platform like a user: start it with the same launcher as
//! `just up` (every service its own process, on free ports, against a fresh database), sign in
//! through the real login form, talk to the concierge over A2A, approve on the "phone" through
//! the approvals API, and read the three stores the audit join spans.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support fails loudly where it stands"
)]

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
    time::Duration,
};

use base64::Engine as _;
use futures::StreamExt as _;
use kit::a2a::{Message, StreamResponse, Task, TaskState, client::Client};
use serde_json::Value;
use sha2::Digest as _;
use stack::launch::{LlmEndpoint, Options, Ports, Stack};
use tokio::sync::mpsc;

pub const REDIRECT: &str = "http://127.0.0.1:8080/auth/callback";
pub const WEB_SECRET: &str = "web-dev-secret-change-me";
pub const DEMO_PASSWORD: &str = "demo-password";

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

fn bin_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
        .join("debug")
}

/// Builds the service binaries once per test process, so the suite never runs stale ones.
fn build_binaries() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let r = BUILT.get_or_init(|| {
        let out =
            std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["build", "--workspace", "--bins"])
                .current_dir(workspace_root())
                .output()
                .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    });
    if let Err(e) = r {
        panic!("building the service binaries failed:\n{e}");
    }
}

/// A running platform for one test.
pub struct Platform {
    pub stack: Stack,
    pub http: reqwest::Client,
    pub a2a: Client,
    pub data_dir: PathBuf,
    db: tokio_postgres::Client,
}

/// A signed-in user, as the web app holds them.
#[derive(Debug, Clone)]
pub struct User {
    pub email: String,
    /// For the concierge (names it in `may_act`).
    pub access_token: String,
    /// The user's own token for the idp's APIs: what the phone holds.
    pub device_token: String,
    pub sub: String,
    pub sid: String,
}

impl Platform {
    pub async fn start() -> Self {
        Self::launch(true, None).await
    }

    /// Starts the stack as `just up` does: on a fresh database of the test binary's shared
    /// server (`shared_db`), or on the stack's own embedded Postgres; with the concierge
    /// planning by rules, or through `llm`.
    async fn launch(shared_db: bool, llm: Option<LlmEndpoint>) -> Self {
        build_binaries();
        let database_url = if shared_db {
            Some(
                stack::testing::fresh_database()
                    .await
                    .expect("test database"),
            )
        } else {
            None
        };
        let data_dir = std::env::temp_dir().join(format!("platform-e2e-{}", kit::random_id(6)));
        println!("platform data and service logs: {}", data_dir.display());
        let stack = Stack::start(Options {
            root: workspace_root(),
            data_dir: data_dir.clone(),
            database_url,
            ports: Ports::ANY,
            bin_dir: bin_dir(),
            host: "127.0.0.1".into(),
            log_dir: Some(data_dir.join("logs")),
            concierge_llm: llm,
            idp_bench_auto_approve: false,
        })
        .await
        .unwrap_or_else(|e| {
            panic!(
                "the platform did not start: {e:#} (logs in {})",
                data_dir.display()
            )
        });
        let (db, conn) = tokio_postgres::connect(&stack.urls.database, tokio_postgres::NoTls)
            .await
            .expect("db");
        tokio::spawn(conn);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http");
        Self {
            a2a: Client::new(http.clone()),
            stack,
            http,
            data_dir,
            db,
        }
    }

    /// Like [`Platform::start`], with the concierge planning through the OpenAI-compatible
    /// endpoint `llm` (in tests: a local fake standing for a model outside the platform).
    pub async fn start_with_llm(llm: LlmEndpoint) -> Self {
        Self::launch(true, Some(llm)).await
    }

    pub fn idp(&self) -> &str {
        &self.stack.urls.idp
    }

    /// Signs in through the idp's real login form (code + PKCE), as the web app does, and gets
    /// the phone's token by refresh with `resource=<issuer>`.
    pub async fn sign_in(&self, email: &str) -> User {
        let verifier = format!("{}{}", kit::random_id(24), kit::random_id(24));
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()));
        let q = [
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid email offline_access"),
            ("state", "s"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        let page = self
            .http
            .get(format!("{}/authorize", self.idp()))
            .query(&q)
            .send()
            .await
            .unwrap();
        let cookie = page.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let html = page.text().await.unwrap();
        let csrf = html
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("csrf")
            .to_owned();
        let mut form = q.to_vec();
        form.extend([
            ("email", email),
            ("password", DEMO_PASSWORD),
            ("csrf", csrf.as_str()),
        ]);
        let resp = self
            .http
            .post(format!("{}/authorize", self.idp()))
            .header("cookie", cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303, "sign-in of {email} should redirect");
        let location = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
        let code = location
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .expect("code");
        let tokens: Value = self
            .http
            .post(format!("{}/token", self.idp()))
            .basic_auth("web", Some(WEB_SECRET))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier.as_str()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let device: Value = self
            .http
            .post(format!("{}/token", self.idp()))
            .basic_auth("web", Some(WEB_SECRET))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
                ("resource", self.idp()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let access_token = tokens["access_token"]
            .as_str()
            .expect("access token")
            .to_owned();
        let claims = claims(&access_token);
        User {
            email: email.into(),
            device_token: device["access_token"]
                .as_str()
                .expect("device token")
                .to_owned(),
            sub: claims["sub"].as_str().unwrap().into(),
            sid: claims["sid"].as_str().unwrap().into(),
            access_token,
        }
    }

    /// Sends one sentence to the concierge and returns the conversation, streaming.
    pub async fn ask(&self, user: &User, sentence: &str) -> Conversation {
        self.ask_with(
            user,
            Message::new(kit::a2a::Role::User, vec![kit::a2a::Part::text(sentence)]),
        )
        .await
    }

    pub async fn ask_with(&self, user: &User, message: Message) -> Conversation {
        let endpoint = format!("{}/a2a", self.stack.urls.concierge);
        let mut stream = self
            .a2a
            .stream(&endpoint, &user.access_token, &message)
            .await
            .expect("the concierge accepts the message");
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(ev) = stream.next().await {
                if tx.send(ev.expect("a well-formed stream event")).is_err() {
                    break;
                }
            }
        });
        Conversation {
            rx,
            events: vec![],
            task: None,
        }
    }

    /// Waits for the next pending approval of `user`, as the phone shows it, and approves it.
    pub async fn approve_next(&self, user: &User) -> Value {
        let a = self.next_approval(user).await;
        let r = self
            .http
            .post(format!(
                "{}/api/approvals/{}/approve",
                self.idp(),
                a["id"].as_str().unwrap()
            ))
            .bearer_auth(&user.device_token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "approving {a}");
        a
    }

    pub async fn deny_next(&self, user: &User) -> Value {
        let a = self.next_approval(user).await;
        let r = self
            .http
            .post(format!(
                "{}/api/approvals/{}/deny",
                self.idp(),
                a["id"].as_str().unwrap()
            ))
            .bearer_auth(&user.device_token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        a
    }

    async fn next_approval(&self, user: &User) -> Value {
        for _ in 0..300 {
            let list: Vec<Value> = self
                .http
                .get(format!("{}/api/approvals", self.idp()))
                .bearer_auth(&user.device_token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if let Some(a) = list.into_iter().next() {
                return a;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no approval arrived on {}'s phone", user.email)
    }

    pub async fn pending_approvals(&self, user: &User) -> Vec<Value> {
        self.http
            .get(format!("{}/api/approvals", self.idp()))
            .bearer_auth(&user.device_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// One query as the superuser against the platform's database.
    pub async fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Vec<tokio_postgres::Row> {
        self.db
            .query(sql, params)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// `owner`'s balances in cents, by account name.
    pub async fn balances(&self, owner: &str) -> std::collections::BTreeMap<String, i64> {
        self.query(
            "SELECT name, balance_cents FROM banking.accounts WHERE owner = $1",
            &[&owner],
        )
        .await
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
    }

    /// The idp's security events, newest first (`jti` narrows them).
    pub async fn idp_events(&self, jti: Option<&str>) -> Vec<Value> {
        let mut req = self
            .http
            .get(format!("{}/api/events", self.idp()))
            .bearer_auth(&self.stack.admin_token);
        if let Some(j) = jti {
            req = req.query(&[("jti", j)]);
        }
        req.send().await.unwrap().json().await.unwrap()
    }

    /// Events a service stored in its own schema, oldest first.
    pub async fn service_events(&self, schema: &str) -> Vec<Value> {
        self.query(
            &format!("SELECT body FROM {schema}.events ORDER BY at"),
            &[],
        )
        .await
        .iter()
        .map(|r| r.get(0))
        .collect()
    }

    /// The issuer's audit log, one JSON value a line.
    pub fn issuer_audit(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.data_dir.join("verify-rar/audit.jsonl"))
            .unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
            .collect()
    }

    /// Ephemeral roles this platform's issuer created that still exist.
    pub async fn leftover_roles(&self) -> Vec<String> {
        self.query(
            "SELECT l.pg_user FROM verify_rar.leases l JOIN pg_roles r ON r.rolname = l.pg_user",
            &[],
        )
        .await
        .iter()
        .map(|r| r.get(0))
        .collect()
    }

    /// Revokes session `sid` as the console's "Kill session" does (the admin API), with `reason`.
    pub async fn revoke_session(&self, sid: &str, reason: &str) {
        let resp = self
            .http
            .post(format!("{}/api/sessions/{sid}/revoke", self.idp()))
            .bearer_auth(&self.stack.admin_token)
            .json(&serde_json::json!({ "reason": reason }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "revoking session {sid}");
    }

    pub async fn introspect_active(&self, token: &str) -> bool {
        let v: Value = self
            .http
            .post(format!("{}/introspect", self.idp()))
            .basic_auth("verify-rar", Some("verify-rar-dev-secret"))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["active"] == true
    }
}

/// Polls `check` every 50 ms for up to 60 s; panics with `what` if it never holds.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..1200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen within 60 s");
}

/// The claims of a JWT, unverified (for reading what a test was handed).
pub fn claims(token: &str) -> Value {
    kit::jwt::decode_unverified(token).expect("a JWT").1
}

/// A conversation with the concierge: its stream's events as they arrive.
pub struct Conversation {
    rx: mpsc::UnboundedReceiver<StreamResponse>,
    pub events: Vec<StreamResponse>,
    task: Option<Task>,
}

impl Conversation {
    /// Waits (up to a minute) for the task to reach `state`; returns that status message's text.
    pub async fn wait_for(&mut self, state: TaskState) -> String {
        loop {
            let ev = tokio::time::timeout(Duration::from_secs(60), self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("no {state:?} within a minute; saw {:#?}", self.events))
                .unwrap_or_else(|| {
                    panic!("the stream ended before {state:?}; saw {:#?}", self.events)
                });
            self.events.push(ev.clone());
            match ev {
                StreamResponse::Task(t) => self.task = Some(t),
                StreamResponse::StatusUpdate(u) if u.status.state == state => {
                    return u
                        .status
                        .message
                        .as_ref()
                        .map(Message::text)
                        .unwrap_or_default();
                }
                StreamResponse::StatusUpdate(u) if u.status.state.is_terminal() => {
                    panic!(
                        "the task ended {:?} before {state:?}: {:?}",
                        u.status.state,
                        u.status.message.as_ref().map(Message::text)
                    );
                }
                _ => {}
            }
        }
    }

    /// Waits for the end; returns the terminal state, its message text and the result data.
    pub async fn finish(&mut self) -> (TaskState, String, Option<Value>) {
        let mut data = None;
        loop {
            let ev = tokio::time::timeout(Duration::from_secs(90), self.rx.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "the task did not finish within 90 s; saw {:#?}",
                        self.events
                    )
                })
                .unwrap_or_else(|| {
                    panic!(
                        "the stream ended without a terminal state; saw {:#?}",
                        self.events
                    )
                });
            self.events.push(ev.clone());
            match ev {
                StreamResponse::ArtifactUpdate(a) => {
                    data = a.artifact.parts.iter().find_map(|p| p.data.clone())
                }
                StreamResponse::StatusUpdate(u) if u.status.state.is_terminal() => {
                    return (
                        u.status.state,
                        u.status
                            .message
                            .as_ref()
                            .map(Message::text)
                            .unwrap_or_default(),
                        data,
                    );
                }
                _ => {}
            }
        }
    }

    /// The concierge's task id (from the stream's first event).
    pub async fn task_id(&mut self) -> String {
        while self.task.is_none() {
            let ev = self.rx.recv().await.expect("a first event");
            self.events.push(ev.clone());
            if let StreamResponse::Task(t) = ev {
                self.task = Some(t);
            }
        }
        self.task.as_ref().map(|t| t.id.clone()).unwrap_or_default()
    }
}

/// The web UI as a browser-less client: its session cookie and the page's CSRF token, got by
/// signing in through the UI's own redirect to the idp's form (as a browser would).
pub struct WebSession {
    pub base: String,
    pub cookie: String,
    pub csrf: String,
    http: reqwest::Client,
}

impl Platform {
    /// Signs in to the web UI at `base` (the stack's, or a replica's) as `email`.
    pub async fn web_sign_in(&self, base: &str, email: &str) -> WebSession {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let cookie_of = |r: &reqwest::Response, name: &str| {
            r.headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .filter_map(|v| v.split(';').next())
                .find(|c| c.starts_with(&format!("{name}=")))
                .map(str::to_owned)
        };
        // The UI sends us to its login, which sends us to the idp with PKCE and a state.
        let r = http.get(format!("{base}/auth/login")).send().await.unwrap();
        assert_eq!(r.status(), 303, "the UI redirects to the idp");
        let web_cookie = cookie_of(&r, "web_session").expect("the UI's session cookie");
        let authorize = r.headers()["location"].to_str().unwrap().to_owned();
        let page = http.get(&authorize).send().await.unwrap();
        let idp_cookie = page.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let html = page.text().await.unwrap();
        let mut form: Vec<(String, String)> = html
            .split("<input type=\"hidden\" name=\"")
            .skip(1)
            .filter_map(|rest| {
                let (name, rest) = rest.split_once("\" value=\"")?;
                let value = rest.split('"').next()?;
                Some((
                    name.to_owned(),
                    value.replace("&amp;", "&").replace("&#x2F;", "/"),
                ))
            })
            .collect();
        form.push(("email".into(), email.into()));
        form.push(("password".into(), DEMO_PASSWORD.into()));
        let r = http
            .post(format!("{}/authorize", self.idp()))
            .header("cookie", idp_cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "the idp accepts the sign-in");
        let callback = r.headers()["location"].to_str().unwrap().to_owned();
        let r = http
            .get(&callback)
            .header("cookie", &web_cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "the UI accepts the callback");
        let cookie = cookie_of(&r, "web_session").unwrap_or(web_cookie);
        let console = http
            .get(format!("{base}/"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = console
            .split("\"x-csrf-token\": \"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("the console carries its CSRF token")
            .to_owned();
        WebSession {
            base: base.to_owned(),
            cookie,
            csrf,
            http,
        }
    }
}

impl WebSession {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap()
    }

    /// A form post with the page's CSRF token, as htmx sends it.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf)
            .header("hx-request", "true")
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// The UI's live stream, as a page holds it open.
    pub async fn live(&self) -> Live {
        let resp = self
            .http
            .get(format!("{}/live", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "the live stream opens");
        let (tx, rx) = mpsc::unbounded_channel();
        let mut bytes = resp.bytes_stream();
        tokio::spawn(async move {
            let mut buf: Vec<u8> = vec![];
            while let Some(Ok(chunk)) = bytes.next().await {
                buf.extend_from_slice(&chunk);
                for ev in kit::sse::take_events(&mut buf) {
                    if tx.send((ev.event.unwrap_or_default(), ev.data)).is_err() {
                        return;
                    }
                }
            }
        });
        Live { rx, seen: vec![] }
    }
}

/// The web UI's live stream: every `(event, data)` it has sent so far, and more as they come.
pub struct Live {
    rx: mpsc::UnboundedReceiver<(String, String)>,
    pub seen: Vec<(String, String)>,
}

impl Live {
    /// Waits (up to 30 s) for an event named `event` whose data contains `text`, looking at
    /// what already arrived first. Returns its data.
    pub async fn wait(&mut self, event: &str, text: &str) -> String {
        let found = |(e, data): &(String, String)| e == event && data.contains(text);
        if let Some((_, data)) = self.seen.iter().find(|x| found(x)) {
            return data.clone();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.rx.recv()).await {
                Ok(Some(x)) => {
                    self.seen.push(x.clone());
                    if found(&x) {
                        return x.1;
                    }
                }
                Ok(None) => panic!("the live stream ended before a {event} with {text:?}"),
                Err(_) => panic!("no {event} event containing {text:?} within 30 s"),
            }
        }
    }
}

/// For the fault tests (`tests/faults`): a platform on its own Postgres (which a test may crash),
/// the superuser connection re-opened after that, and the issuer's audit chains checked.
impl Platform {
    /// Like [`Platform::start`], but the stack runs its own embedded Postgres (durable, in the
    /// data directory) instead of a database on the test binary's shared server, so
    /// [`Stack::restart_postgres`] can crash and restart it under the running services.
    pub async fn start_with_own_postgres() -> Self {
        Self::launch(false, None).await
    }

    /// Opens the superuser connection [`Platform::query`] uses again (after Postgres restarted).
    pub async fn reconnect_db(&mut self) {
        let (db, conn) = tokio_postgres::connect(&self.stack.urls.database, tokio_postgres::NoTls)
            .await
            .expect("db");
        tokio::spawn(conn);
        self.db = db;
    }

    /// Checks every audit log of this platform's issuers (`verify-rar/*.jsonl`) with the
    /// issuer's own `verify-rar audit-verify`; returns each file's name and what the tool said.
    /// Panics naming the file and the first broken line if any chain does not verify.
    pub fn verify_issuer_audit_chains(&self) -> Vec<(String, String)> {
        let dir = self.data_dir.join("verify-rar");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        files.sort();
        assert!(
            !files.is_empty(),
            "no issuer audit log in {}",
            dir.display()
        );
        files
            .into_iter()
            .map(|f| {
                let out = std::process::Command::new(bin_dir().join("verify-rar"))
                    .arg("audit-verify")
                    .arg(&f)
                    .output()
                    .expect("running verify-rar audit-verify");
                let said = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                assert!(
                    out.status.success(),
                    "the audit chain of {} does not verify: {said}",
                    f.display()
                );
                (f.display().to_string(), said)
            })
            .collect()
    }
}
