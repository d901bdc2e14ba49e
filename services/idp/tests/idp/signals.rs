//! Shared signals: every revocation reaches the real transmitter (`services/ssf`) through the
//! outbox, even one made while the transmitter was down; the anomaly rule revokes a session
//! after three refused exchanges; and the idp ends a session a SET from the transmitter names.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use kit::ssf::{
    Delivery, EventType, Receiver, ReceiverConfig, ReceiverSettings, SetEvent, SubjectId,
};
use serde_json::{Value, json};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

use crate::support::{ADMIN, IAM, TestApp, iam, refused, spawn_app, spawn_app_with};

const SOURCE_TOKEN: &str = "idp-source-token-for-tests-01234";
const PROBE_TOKEN: &str = "probe-receiver-token-0123456789";
const IDP_TOKEN: &str = "idp-receiver-token-for-tests-0123";

/// Polls `check` every 50 ms for up to 30 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen within 30 s");
}

/// The real transmitter, stoppable and restartable on one port, database and key.
struct Transmitter {
    config: ssf::Config,
    url: String,
    running: Option<(oneshot::Sender<()>, JoinHandle<anyhow::Result<()>>)>,
}

impl Transmitter {
    async fn start_new() -> Self {
        let db_url = stack::testing::fresh_database().await.unwrap();
        let port = stack::postgres::free_port().unwrap();
        let mut config = ssf::Config::new(&db_url);
        config.bind = format!("127.0.0.1:{port}").parse().unwrap();
        config.keys_dir = std::env::temp_dir().join(format!("idp-ssf-{}", kit::random_id(8)));
        config.receivers = [("probe", PROBE_TOKEN), ("idp", IDP_TOKEN)]
            .iter()
            .map(|(n, t)| ssf::config::ReceiverCredential {
                name: (*n).into(),
                token: (*t).into(),
            })
            .collect();
        config.source_token = Some(SOURCE_TOKEN.into());
        config.retry_base = Duration::from_millis(50);
        config.retry_max = Duration::from_millis(400);
        let mut t = Self {
            config,
            url: format!("http://127.0.0.1:{port}"),
            running: None,
        };
        t.start().await;
        t
    }

    async fn start(&mut self) {
        let app = ssf::Application::build(self.config.clone()).await.unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        self.running = Some((tx, handle));
    }

    async fn stop(&mut self) {
        let (tx, handle) = self.running.take().unwrap();
        let _ = tx.send(());
        handle.await.unwrap().unwrap();
    }

    /// `POST /events` as a source other than the idp would.
    async fn send(&self, body: &Value) {
        let resp = reqwest::Client::new()
            .post(format!("{}/events", self.url))
            .bearer_auth(SOURCE_TOKEN)
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
    }
}

/// A receiver standing for any service: collects what it is pushed.
async fn probe(t: &Transmitter) -> Arc<Mutex<Vec<SetEvent>>> {
    let got = Arc::new(Mutex::new(vec![]));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sink = got.clone();
    let receiver = Receiver::new(
        reqwest::Client::new(),
        ReceiverConfig {
            transmitter: t.url.clone(),
            token: PROBE_TOKEN.into(),
            description: "probe".into(),
            delivery: Delivery::Push {
                endpoint_url: format!("http://{}/ssf/events", listener.local_addr().unwrap()),
            },
            events: vec![EventType::SessionRevoked, EventType::CredentialChange],
        },
        move |e: SetEvent| {
            sink.lock().unwrap().push(e);
            async { Ok(()) }
        },
    );
    receiver.start().await.unwrap();
    tokio::spawn(async move { axum::serve(listener, receiver.router("/ssf/events")).await });
    got
}

async fn revoke(app: &TestApp, sid: &str, reason: &str) {
    let resp = app
        .http
        .post(format!("{}/api/sessions/{sid}/revoke", app.url))
        .bearer_auth(ADMIN)
        .json(&json!({"reason": reason}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

async fn db(app: &TestApp) -> tokio_postgres::Client {
    let (db, conn) = tokio_postgres::connect(&app.db_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    db
}

#[tokio::test]
async fn a_revocation_made_while_the_transmitter_is_down_reaches_it_when_it_is_back() {
    let mut t = Transmitter::start_new().await;
    let got = probe(&t).await;
    t.stop().await;

    let url = t.url.clone();
    let app = spawn_app_with(|c| {
        c.signals.source = Some(idp::config::Source {
            transmitter: url,
            token: SOURCE_TOKEN.into(),
        });
    })
    .await;
    let alice = app.sign_in("alice@example.com").await;
    let sid = crate::support::claims_of(&alice.access_token).sid.unwrap();
    revoke(&app, &sid, "killed while the transmitter was down").await;

    // Queued with the revocation, tried, not delivered.
    let db = db(&app).await;
    eventually("a failed delivery attempt", || async {
        let r = db
            .query_one(
                "SELECT attempts, delivered_at IS NULL, last_error FROM idp.signal_outbox WHERE session_id = $1",
                &[&sid],
            )
            .await
            .unwrap();
        r.get::<_, i32>(0) >= 1 && r.get::<_, bool>(1) && r.get::<_, Option<String>>(2).is_some()
    })
    .await;
    assert!(got.lock().unwrap().is_empty());

    t.start().await;
    eventually("the SET at the receiver", || async {
        !got.lock().unwrap().is_empty()
    })
    .await;
    let e = got.lock().unwrap()[0].clone();
    assert_eq!(e.kind, EventType::SessionRevoked);
    assert_eq!(
        e.sub_id,
        SubjectId::session_of(SubjectId::email("alice@example.com"), &sid)
    );
    assert_eq!(e.claims.initiating_entity.as_deref(), Some("admin"));
    assert_eq!(
        e.claims.reason_admin_text(),
        Some("killed while the transmitter was down")
    );
    assert!(e.claims.event_timestamp.is_some());
    let delivered: bool = db
        .query_one(
            "SELECT delivered_at IS NOT NULL FROM idp.signal_outbox WHERE session_id = $1",
            &[&sid],
        )
        .await
        .unwrap()
        .get(0);
    assert!(delivered);
}

#[tokio::test]
async fn three_refused_exchanges_in_a_session_revoke_it_as_policy() {
    let app = spawn_app().await;
    let alice = app.sign_in("alice@example.com").await;
    let sid = crate::support::claims_of(&alice.access_token).sid.unwrap();
    let delete = [iam("delete_user", "sarah.smith@example.com")];
    for _ in 0..2 {
        let (error, _) = refused(app.hop1(&alice.access_token, IAM, &delete).await);
        assert_eq!(error, "access_denied");
    }
    assert_eq!(app.introspect(&alice.access_token).await["active"], true);
    let (error, _) = refused(app.hop1(&alice.access_token, IAM, &delete).await);
    assert_eq!(error, "access_denied");

    assert_eq!(app.introspect(&alice.access_token).await["active"], false);
    let event = app.last_event("session_revoked").await;
    assert_eq!(
        event["reason"],
        "policy: anomaly: 3 denied exchanges in 60 s"
    );
    assert_eq!(event["session"], sid.as_str());
    let row = db(&app)
        .await
        .query_one(
            "SELECT kind, initiating_entity, reason_admin, email FROM idp.signal_outbox WHERE session_id = $1",
            &[&sid],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "session-revoked");
    assert_eq!(row.get::<_, String>(1), "policy");
    assert_eq!(
        row.get::<_, String>(2),
        "anomaly: 3 denied exchanges in 60 s"
    );
    assert_eq!(row.get::<_, String>(3), "alice@example.com");
}

#[tokio::test]
async fn the_anomaly_rule_can_be_turned_off() {
    let app = spawn_app_with(|c| c.signals.anomaly_denials = 0).await;
    let alice = app.sign_in("alice@example.com").await;
    let delete = [iam("delete_user", "sarah.smith@example.com")];
    for _ in 0..4 {
        refused(app.hop1(&alice.access_token, IAM, &delete).await);
    }
    assert_eq!(app.introspect(&alice.access_token).await["active"], true);
}

#[tokio::test]
async fn a_set_naming_a_live_session_ends_it_once() {
    let t = Transmitter::start_new().await;
    let url = t.url.clone();
    let app = spawn_app_with(|c| {
        c.signals.receiver = Some(ReceiverSettings {
            transmitter: url,
            token: IDP_TOKEN.into(),
        });
    })
    .await;
    let alice = app.sign_in("alice@example.com").await;
    let sid = crate::support::claims_of(&alice.access_token).sid.unwrap();
    let event = json!({
        "type": "session-revoked",
        "subject": SubjectId::session_of(SubjectId::email("alice@example.com"), &sid),
        "reason_admin": {"en": "reported by another source"},
        "initiating_entity": "admin",
    });
    t.send(&event).await;

    let received = || async {
        app.events(None)
            .await
            .into_iter()
            .filter(|e| e["type"] == "signal_received" && e["session"] == sid.as_str())
            .collect::<Vec<Value>>()
    };
    eventually("the idp acting on the SET", || async {
        !received().await.is_empty()
    })
    .await;
    assert_eq!(app.introspect(&alice.access_token).await["active"], false);
    let first = &received().await[0];
    assert!(
        first["reason"]
            .as_str()
            .unwrap()
            .starts_with("session-revoked (admin: reported by another source): ended the session"),
        "{first}"
    );
    // Not reported back: the transmitter already knows.
    let queued: i64 = db(&app)
        .await
        .query_one(
            "SELECT count(*) FROM idp.signal_outbox WHERE session_id = $1",
            &[&sid],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(queued, 0);

    t.send(&event).await;
    eventually("the second SET acted on", || async {
        received().await.len() == 2
    })
    .await;
    let again = &received().await[0];
    assert!(
        again["reason"]
            .as_str()
            .unwrap()
            .contains("the session had already ended"),
        "{again}"
    );
}
