//! Shared signals: a CAEP `session-revoked` pushed by the real transmitter (`services/ssf`)
//! revokes every live lease of that session (role dropped, its connections terminated) and no
//! other session's.

use std::time::Duration;

use kit::ssf::{ReceiverSettings, SubjectId};
use serde_json::json;

use crate::{harness::spawn_with, idp::Idp};

const SOURCE_TOKEN: &str = "vr-test-source-token-0123456789";
const VR_TOKEN: &str = "vr-test-receiver-token-0123456789";

#[tokio::test]
async fn a_pushed_session_revoked_revokes_that_sessions_leases() {
    let db_url = stack::testing::fresh_database().await.unwrap();
    let ledger = kit::pg::pool(&db_url, banking::SCHEMA, 2).unwrap();
    banking::migrate(&ledger).await.unwrap();

    let mut config = ssf::Config::new(&db_url);
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.keys_dir = std::env::temp_dir().join(format!("vr-ssf-{}", kit::random_id(8)));
    config.receivers = vec![ssf::config::ReceiverCredential {
        name: "verify-rar".into(),
        token: VR_TOKEN.into(),
    }];
    config.source_token = Some(SOURCE_TOKEN.into());
    let transmitter = ssf::Application::build(config).await.unwrap();
    let ssf_url = transmitter.url().to_owned();
    tokio::spawn(transmitter.run_until(std::future::pending()));

    let idp = Idp::start(&db_url).await;
    let settings = ReceiverSettings {
        transmitter: ssf_url.clone(),
        token: VR_TOKEN.into(),
    };
    let app = spawn_with(db_url, idp, |c| c.signals = Some(settings)).await;
    let http = reqwest::Client::new();
    // The issuer creates its stream as it starts serving.
    let mut ready = false;
    for _ in 0..200 {
        let streams: Vec<serde_json::Value> = http
            .get(format!("{ssf_url}/ssf/streams"))
            .bearer_auth(VR_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if !streams.is_empty() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "verify-rar created its stream");

    let balance = json!({"type": "urn:smt:agent:banking",
                         "operationDetails": {"action": "get_balance", "account": "checking"}});
    let alice = app.idp.sign_in("alice@example.com").await;
    let bob = app.idp.sign_in("bob@example.com").await;
    let mut held = vec![];
    for session in [&alice, &bob] {
        let (jwt, _) = app.idp.t2(session, balance.clone(), "banking-reader").await;
        let token = app.login(&jwt).await;
        let (lease, user, password) = app.creds(&token, "banking-reader").await;
        let conn = app.connect_as(&user, &password).await.unwrap();
        conn.simple_query("SELECT 1").await.unwrap();
        held.push((lease, user, conn));
    }

    let resp = http
        .post(format!("{ssf_url}/events"))
        .bearer_auth(SOURCE_TOKEN)
        .json(&json!({
            "type": "session-revoked",
            "subject": SubjectId::session_of(SubjectId::email("alice@example.com"), &alice.sid),
            "reason_admin": {"en": "killed from the console"},
            "initiating_entity": "admin",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);

    let (alice_lease, alice_user, alice_conn) = &held[0];
    let mut gone = false;
    for _ in 0..600 {
        if !app.role_exists(alice_user).await {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "alice's role was dropped");
    assert!(
        alice_conn.simple_query("SELECT 1").await.is_err(),
        "her open connection was terminated"
    );
    let state: String = app
        .admin
        .query_one(
            "SELECT state FROM verify_rar.leases WHERE lease_id = $1",
            &[alice_lease],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(state, "revoked");
    // The signal's own event follows the revocation.
    let mut events: Vec<serde_json::Value> = vec![];
    for _ in 0..600 {
        events = app
            .admin
            .query(
                "SELECT body FROM verify_rar.events WHERE kind = 'signal_received' AND session = $1",
                &[&alice.sid],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        if !events.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(events.len(), 1);
    let reason = events[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("session-revoked (admin: killed from the console): revoked 1 lease"),
        "{reason}"
    );
    assert!(reason.contains(alice_user.as_str()), "{reason}");

    // Bob's session was not named: his credential works.
    let (_, bob_user, bob_conn) = &held[1];
    assert!(app.role_exists(bob_user).await);
    bob_conn.simple_query("SELECT 1").await.unwrap();
}
