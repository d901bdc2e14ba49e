//! S5: the session is killed while a conversation is running: by the console's "Kill session"
//! (the idp's sessions API), or by the anomaly rule after three refused exchanges. The CAEP
//! `session-revoked` reaches every receiver; the concierge's task fails; the next A2A call with
//! a token of that session is refused with 401; introspection says `active: false`; the
//! session's outstanding database lease is revoked and its role dropped.
//!
//! No timing is asserted; the time from the revocation to each receiver acting is printed, from
//! the services' own events.

use e2e::{Platform, User, eventually};
use kit::{
    a2a::TaskState,
    exchange::{AgentIdentity, ExchangeClient},
    jwt::SigningKey,
    rar::{self, AuthorizationDetail},
};
use serde_json::{Value, json};

/// Every service that holds a receiver stream, by the schema its events live in.
const RECEIVERS: &[&str] = &["idp", "verify_rar", "banking", "iam", "entra", "concierge"];

/// An agent's identity from the stack's dev keys.
fn agent(p: &Platform, name: &str) -> ExchangeClient {
    let key = SigningKey::load_or_generate(&p.stack.keys_dir, name).unwrap();
    ExchangeClient::new(
        p.http.clone(),
        p.idp(),
        AgentIdentity {
            spiffe_id: kit::agent::spiffe_id(name),
            key,
        },
    )
}

/// What the banking agent does for a balance, stopped before it revokes its lease: hop 1 (as
/// the concierge), hop 2 (as banking) to the issuer for `get_balance` + read of
/// `verify-rar/creds/banking-reader` (tier 1), Vault login, creds. Returns (lease, role).
async fn hold_a_lease(p: &Platform, user: &User) -> (String, String) {
    let business = AuthorizationDetail::operation(
        rar::BANKING,
        "get_balance",
        [("account", json!("checking"))],
    );
    let t1 = agent(p, "concierge")
        .exchange(
            &user.access_token,
            &kit::agent::spiffe_id("banking"),
            std::slice::from_ref(&business),
        )
        .await
        .expect("hop 1");
    let t2 = agent(p, "banking")
        .exchange(
            &t1.access_token,
            "verify-rar",
            &[
                business,
                AuthorizationDetail::vault_read("verify-rar/creds/banking-reader"),
            ],
        )
        .await
        .expect("hop 2 (tier 1)");
    let vault = &p.stack.urls.verify_rar;
    let login: Value = p
        .http
        .post(format!("{vault}/v1/auth/jwt/login"))
        .json(&json!({"jwt": t2.access_token}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["auth"]["client_token"]
        .as_str()
        .unwrap_or_else(|| panic!("vault login: {login}"));
    let creds: Value = p
        .http
        .get(format!("{vault}/v1/verify-rar/creds/banking-reader"))
        .header("X-Vault-Token", token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let lease = creds["lease_id"]
        .as_str()
        .unwrap_or_else(|| panic!("creds: {creds}"));
    let role = creds["data"]["username"].as_str().unwrap();
    (lease.to_owned(), role.to_owned())
}

/// One JSON-RPC call to the concierge with `token`; the HTTP status.
async fn a2a_status(p: &Platform, token: &str) -> u16 {
    p.http
        .post(format!("{}/a2a", p.stack.urls.concierge))
        .bearer_auth(token)
        .header("A2A-Version", "1.0")
        .json(&json!({
            "jsonrpc": "2.0", "id": 1, "method": "SendMessage",
            "params": {"message": {"messageId": "m-after", "role": "ROLE_USER",
                                   "parts": [{"text": "What's my checking balance?"}]}}
        }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// `schema`'s `signal_received` events for `sid`.
async fn received(p: &Platform, schema: &str, sid: &str) -> Vec<Value> {
    p.service_events(schema)
        .await
        .into_iter()
        .filter(|e| e["type"] == "signal_received" && e["session"] == sid)
        .collect()
}

/// Milliseconds from the session's revocation (`idp.sessions.revoked_at`) to each stage of its
/// signal: the outbox delivery, the transmitter queueing SETs, and each receiver's
/// `signal_received` event (one host, one database clock).
async fn lags(p: &Platform, sid: &str) -> Vec<(String, f64)> {
    let revoked: f64 = p
        .query(
            "SELECT (extract(epoch FROM revoked_at) * 1000)::float8 FROM idp.sessions WHERE id = $1",
            &[&sid],
        )
        .await[0]
        .get(0);
    let mut out = vec![];
    let stages = [
        (
            "idp outbox: the transmitter accepted it",
            "SELECT (extract(epoch FROM delivered_at) * 1000)::float8 FROM idp.signal_outbox WHERE session_id = $1",
        ),
        (
            "ssf: SETs signed and queued",
            "SELECT (extract(epoch FROM min(at)) * 1000)::float8 FROM ssf.events WHERE kind = 'ssf_session_revoked' AND session = $1",
        ),
    ];
    for (stage, sql) in stages {
        let t: Option<f64> = p.query(sql, &[&sid]).await[0].get(0);
        out.push((stage.to_owned(), t.unwrap_or(f64::NAN) - revoked));
    }
    for schema in RECEIVERS {
        let sql = format!(
            "SELECT (extract(epoch FROM min(at)) * 1000)::float8 FROM {schema}.events WHERE kind = 'signal_received' AND session = $1"
        );
        let t: Option<f64> = p.query(&sql, &[&sid]).await[0].get(0);
        out.push(((*schema).to_owned(), t.unwrap_or(f64::NAN) - revoked));
    }
    out
}

#[tokio::test]
async fn s5_killing_the_session_reaches_every_receiver() {
    let p = Platform::start().await;
    let alice = p.sign_in("alice@example.com").await;

    // An outstanding credential of her session, and a transfer waiting for her approval.
    let (lease, role) = hold_a_lease(&p, &alice).await;
    let exists = "SELECT count(*) FROM pg_roles WHERE rolname = $1";
    assert_eq!(p.query(exists, &[&role]).await[0].get::<_, i64>(0), 1);
    let mut conv = p
        .ask(&alice, "Transfer $1,000 from checking to savings.")
        .await;
    conv.wait_for(TaskState::AuthRequired).await;

    // The console's "Kill session".
    p.revoke_session(&alice.sid, "killed from the console")
        .await;

    // The transmitter sent it, and every receiver acted on it.
    eventually("the transmitter's session-revoked", || async {
        p.service_events("ssf")
            .await
            .iter()
            .any(|e| e["type"] == "ssf_session_revoked" && e["session"] == alice.sid.as_str())
    })
    .await;
    for schema in RECEIVERS {
        eventually(&format!("{schema} receiving the signal"), || async {
            !received(&p, schema, &alice.sid).await.is_empty()
        })
        .await;
        let e = &received(&p, schema, &alice.sid).await[0];
        let reason = e["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("session-revoked (admin: killed from the console)"),
            "{schema}: {reason}"
        );
        assert_eq!(e["user"], "alice@example.com", "{schema}");
    }

    // The concierge's task failed, and the next call with her token is refused at once.
    // Either the concierge's own signal fails the task, or banking's approval poll is refused
    // because the session ended: both end it, neither completes it.
    let (state, text, _) = conv.finish().await;
    assert!(
        matches!(state, TaskState::Failed | TaskState::Rejected),
        "{state:?}: {text}"
    );
    assert!(text.contains("session"), "{text}");
    assert_eq!(a2a_status(&p, &alice.access_token).await, 401);
    assert!(!p.introspect_active(&alice.access_token).await);

    // The outstanding lease is revoked and its role is gone.
    eventually("the lease's role dropped", || async {
        p.query(exists, &[&role]).await[0].get::<_, i64>(0) == 0
    })
    .await;
    let state: String = p
        .query(
            "SELECT state FROM verify_rar.leases WHERE lease_id = $1",
            &[&lease],
        )
        .await[0]
        .get(0);
    assert_eq!(state, "revoked");
    let vr = received(&p, "verify_rar", &alice.sid).await;
    assert!(vr[0]["reason"].as_str().unwrap().contains(&role), "{vr:?}");

    for (schema, ms) in lags(&p, &alice.sid).await {
        println!("S5 kill session, +{ms:.0} ms: {schema}");
    }
}

#[tokio::test]
async fn s5_three_refused_exchanges_end_the_session() {
    let p = Platform::start().await;
    let alice = p.sign_in("alice@example.com").await;

    for i in 0..3 {
        let (state, text, _) = p
            .ask(&alice, "Delete sarah.smith@example.com permanently.")
            .await
            .finish()
            .await;
        if i < 2 {
            assert_eq!(state, TaskState::Rejected, "{text}");
        } else {
            // The third refusal ends the session; the concierge may hear the signal (and fail
            // the task) before its own refusal arrives: either way, nothing was done.
            assert!(
                matches!(state, TaskState::Rejected | TaskState::Failed),
                "{state:?}: {text}"
            );
        }
    }

    // The session itself, in the idp's store, names the rule that ended it.
    let reason_sql = "SELECT revoked_reason FROM idp.sessions WHERE id = $1";
    eventually("the anomaly rule revoking the session", || async {
        p.query(reason_sql, &[&alice.sid]).await[0]
            .get::<_, Option<String>>(0)
            .is_some()
    })
    .await;
    let reason: Option<String> = p.query(reason_sql, &[&alice.sid]).await[0].get(0);
    assert_eq!(
        reason.as_deref(),
        Some("anomaly: 3 denied exchanges in 60 s")
    );
    assert_eq!(a2a_status(&p, &alice.access_token).await, 401);
    assert!(!p.introspect_active(&alice.access_token).await);

    // The signal reached the concierge too, naming the policy.
    eventually("the concierge receiving the signal", || async {
        !received(&p, "concierge", &alice.sid).await.is_empty()
    })
    .await;
    let e = &received(&p, "concierge", &alice.sid).await[0];
    assert!(
        e["reason"]
            .as_str()
            .unwrap()
            .starts_with("session-revoked (policy: anomaly: 3 denied exchanges in 60 s)"),
        "{e}"
    );
    for (schema, ms) in lags(&p, &alice.sid).await {
        println!("S5 anomaly rule, +{ms:.0} ms: {schema}");
    }
}
