//! Test support: the real transmitter on a port-0 listener over a fresh embedded Postgres
//! database (stoppable and restartable on the same port, database and key), and receivers built
//! from `kit::ssf::Receiver`, each serving its push route on its own port-0 listener (which can
//! go down and come back on the same port).

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use kit::ssf::{Delivery, EventType, Receiver, ReceiverConfig, SetEvent};
use reqwest::{Response, StatusCode};
use serde_json::Value;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

pub const SOURCE_TOKEN: &str = "source-token-for-ssf-tests-0123";
/// (name, token): the receivers the transmitter knows.
pub const RECEIVERS: [(&str, &str); 3] = [
    ("idp", "idp-receiver-token-0123456789"),
    ("verify-rar", "verify-rar-receiver-token-0123"),
    ("banking", "banking-receiver-token-012345"),
];

pub fn token(name: &str) -> &'static str {
    RECEIVERS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .expect("a configured receiver")
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The transmitter under test.
pub struct Transmitter {
    pub url: String,
    pub db_url: String,
    pub keys_dir: PathBuf,
    pub http: reqwest::Client,
    port: u16,
    running: Option<(oneshot::Sender<()>, JoinHandle<anyhow::Result<()>>)>,
}

impl Transmitter {
    /// A transmitter on a fresh database and a fresh key directory.
    pub async fn spawn() -> Self {
        let db_url = stack::testing::fresh_database().await.expect("database");
        let keys_dir = std::env::temp_dir().join(format!("ssf-test-keys-{}", kit::random_id(8)));
        let mut t = Self {
            url: String::new(),
            db_url,
            keys_dir,
            http: http(),
            port: 0,
            running: None,
        };
        t.start().await;
        t
    }

    fn config(&self) -> ssf::Config {
        let mut c = ssf::Config::new(&self.db_url);
        c.bind = format!("127.0.0.1:{}", self.port).parse().unwrap();
        c.keys_dir = self.keys_dir.clone();
        c.receivers = RECEIVERS
            .iter()
            .map(|(n, t)| ssf::config::ReceiverCredential {
                name: (*n).into(),
                token: (*t).into(),
            })
            .collect();
        c.source_token = Some(SOURCE_TOKEN.into());
        c.retry_base = Duration::from_millis(50);
        c.retry_max = Duration::from_millis(400);
        c.push_timeout = Duration::from_secs(2);
        c.poll_max_wait = Duration::from_secs(2);
        c.min_verification_interval = 5;
        c
    }

    /// Starts (again) on the port of the first start, so the issuer stays the same.
    pub async fn start(&mut self) {
        assert!(self.running.is_none(), "already running");
        let app = ssf::Application::build(self.config())
            .await
            .expect("ssf builds");
        self.port = app.port();
        self.url = app.url().to_owned();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        self.running = Some((tx, handle));
    }

    /// Stops it the way Ctrl-C does: in-flight work finishes, queued SETs stay queued.
    pub async fn stop(&mut self) {
        let (tx, handle) = self.running.take().expect("running");
        let _ = tx.send(());
        handle.await.unwrap().unwrap();
    }

    pub async fn db(&self) -> tokio_postgres::Client {
        let (db, conn) = tokio_postgres::connect(&self.db_url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        db
    }

    /// `POST /events` as the source (the idp).
    pub async fn send_event(&self, body: &Value) -> Response {
        self.http
            .post(format!("{}/events", self.url))
            .bearer_auth(SOURCE_TOKEN)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// A management call as receiver `name` (`None`: no token).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        name: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(n) = name {
            req = req.bearer_auth(token(n));
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        req.send().await.unwrap()
    }

    /// The transmitter's signing key, read from its key directory (to sign SETs the
    /// transmitter itself would never send).
    pub fn key(&self) -> kit::ssf::RsaSigningKey {
        kit::ssf::RsaSigningKey::load_or_generate(&self.keys_dir, ssf::KEY_NAME).unwrap()
    }

    /// The `state` of each of a stream's SETs of `event_type`, oldest first.
    pub async fn set_states(&self, stream_id: &str, event_type: EventType) -> Vec<String> {
        self.db()
            .await
            .query(
                "SELECT state FROM ssf.sets WHERE stream_id = $1 AND event_type = $2 ORDER BY seq",
                &[&stream_id, &event_type.uri()],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }
}

/// A receiver as a service embeds it, recording every event its callback gets.
pub struct TestReceiver {
    pub receiver: Receiver,
    pub events: Arc<Mutex<Vec<SetEvent>>>,
    pub push_url: String,
    port: u16,
    server: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

pub const PUSH_PATH: &str = "/ssf/events";

impl TestReceiver {
    /// Receiver `name` with push delivery to its own port-0 listener, started.
    pub async fn push(
        t: &Transmitter,
        name: &str,
        description: &str,
        events: &[EventType],
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let push_url = format!("http://127.0.0.1:{port}{PUSH_PATH}");
        let mut r = Self::new(
            t,
            name,
            description,
            events,
            Delivery::Push {
                endpoint_url: push_url.clone(),
            },
        );
        r.push_url = push_url;
        r.port = port;
        r.serve(listener);
        r.receiver.start().await.expect("receiver starts");
        r
    }

    /// Receiver `name` with poll delivery, started (it polls when the test says so).
    pub async fn poll(
        t: &Transmitter,
        name: &str,
        description: &str,
        events: &[EventType],
    ) -> Self {
        let r = Self::new(t, name, description, events, Delivery::Poll);
        r.receiver.start().await.expect("receiver starts");
        r
    }

    fn new(
        t: &Transmitter,
        name: &str,
        description: &str,
        events: &[EventType],
        delivery: Delivery,
    ) -> Self {
        let log: Arc<Mutex<Vec<SetEvent>>> = Arc::default();
        let sink = log.clone();
        let receiver = Receiver::new(
            http(),
            ReceiverConfig {
                transmitter: t.url.clone(),
                token: token(name).into(),
                description: description.into(),
                delivery,
                events: events.to_vec(),
            },
            move |e| {
                let sink = sink.clone();
                async move {
                    sink.lock().unwrap().push(e);
                    Ok(())
                }
            },
        );
        Self {
            receiver,
            events: log,
            push_url: String::new(),
            port: 0,
            server: None,
        }
    }

    fn serve(&mut self, listener: TcpListener) {
        let app = self.receiver.router(PUSH_PATH);
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        self.server = Some((tx, handle));
    }

    /// The push endpoint goes away (the service is down).
    pub async fn down(&mut self) {
        let (tx, handle) = self.server.take().expect("serving");
        let _ = tx.send(());
        handle.await.unwrap();
    }

    /// The push endpoint comes back on the same port.
    pub async fn up(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.serve(listener);
    }

    pub fn stream_id(&self) -> String {
        self.receiver.stream_id().expect("started")
    }

    /// Events of `kind` received so far.
    pub fn received(&self, kind: EventType) -> Vec<SetEvent> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.kind == kind)
            .cloned()
            .collect()
    }

    /// Waits (up to 10 s) until `n` events of `kind` have arrived; returns them.
    pub async fn wait_for(&self, kind: EventType, n: usize) -> Vec<SetEvent> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.received(kind);
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {n} {kind:?} event(s), got {}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The push `Authorization` value this receiver gave the transmitter (read where the
    /// transmitter keeps it), so a test can push as the transmitter would.
    pub async fn push_authorization(&self, t: &Transmitter) -> String {
        t.db()
            .await
            .query_one(
                "SELECT authorization_header FROM ssf.streams WHERE stream_id = $1",
                &[&self.stream_id()],
            )
            .await
            .unwrap()
            .get(0)
    }

    /// POSTs `body` to the push endpoint as the transmitter would (or with `authorization`).
    pub async fn push_raw(
        &self,
        authorization: &str,
        content_type: &str,
        body: String,
    ) -> Response {
        http()
            .post(&self.push_url)
            .header("authorization", authorization)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }
}

/// Asserts an RFC 8935 error answer: 400, JSON `{"err": code, "description"}`.
pub async fn expect_set_error(resp: Response, code: &str) -> Value {
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert!(resp.headers().contains_key("content-language"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["err"], code, "{body}");
    assert!(
        body["description"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    body
}

/// The usual session-revoked source event for `email`'s session `sid`.
pub fn session_revoked(email: &str, sid: &str) -> Value {
    serde_json::json!({
        "type": "session-revoked",
        "subject": {
            "format": "complex",
            "user": {"format": "email", "email": email},
            "session": {"format": "opaque", "id": sid}
        },
        "reason_admin": {"en": "revoked from the admin console"},
        "initiating_entity": "admin",
        "event_timestamp": 1_767_225_600
    })
}

/// Decodes a compact JWT's header and claims without verifying (for format assertions).
pub fn decode(token: &str) -> (Value, Value) {
    kit::jwt::decode_unverified(token).unwrap()
}
