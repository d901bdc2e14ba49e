//! S1's database leg over A2A: a streamed transfer that waits for alice's approval, runs as a
//! role minted for it alone, and leaves an audit row joined to the T2 `jti`; and the same
//! request denied on the phone.

use kit::a2a::{StreamResponse, TaskState};
use serde_json::{Value, json};

use crate::{
    harness::{ALICE, spawn_app, tool_call},
    idp::{banking_rar, claims_of},
};

fn transfer_args(value: &str) -> Value {
    json!({"amount": {"value": value, "currency": "USD"}, "source": "checking", "destination": "savings"})
}

fn states(events: &[StreamResponse]) -> Vec<TaskState> {
    events
        .iter()
        .filter_map(|e| match e {
            StreamResponse::StatusUpdate(u) => Some(u.status.state),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn s1_transfer_streams_waits_for_approval_and_moves_exactly_the_amount() {
    let app = spawn_app().await;
    let alice = app.idp.sign_in(ALICE).await;
    let args = transfer_args("1000.00");
    let t1 = app
        .idp
        .t1(&alice, &banking_rar("transfer_funds", args.clone()))
        .await;
    let before = app.all_balances().await;

    let message = tool_call(
        "Transfer $1,000 from checking to savings.",
        "transfer_funds",
        args,
    );
    let mut prompts = vec![];
    let events = app
        .stream_until_done(&t1, &message, async |approval_id: &str| {
            app.idp.decide(&alice, approval_id, true).await;
        })
        .await;

    // The task first, then its updates: waiting on alice, approved, completed.
    let StreamResponse::Task(task) = &events[0] else {
        panic!("the first event must be the task: {:?}", events[0])
    };
    assert_eq!(task.status.state, TaskState::Submitted);
    let seen = states(&events);
    assert_eq!(seen.last(), Some(&TaskState::Completed), "{seen:?}");
    let waiting = seen
        .iter()
        .position(|s| *s == TaskState::AuthRequired)
        .expect("the task waits for approval");
    assert!(seen[waiting + 1..].contains(&TaskState::Working));
    for e in &events {
        if let StreamResponse::StatusUpdate(u) = e
            && u.status.state == TaskState::AuthRequired
        {
            prompts.push(u.status.message.as_ref().unwrap().text());
        }
    }
    assert!(
        prompts[0].contains("Transfer $1,000.00 from checking to savings"),
        "{prompts:?}"
    );

    let StreamResponse::StatusUpdate(done) = events.last().unwrap() else {
        panic!("the stream ends on the terminal status")
    };
    assert_eq!(
        done.status.message.as_ref().unwrap().text(),
        "Transferred $1,000.00 from checking to savings."
    );
    let artifact = events
        .iter()
        .find_map(|e| match e {
            StreamResponse::ArtifactUpdate(a) => Some(a.artifact.clone()),
            _ => None,
        })
        .unwrap();
    let data = artifact.parts.iter().find_map(|p| p.data.clone()).unwrap();

    // Exactly ±$1,000 on alice's two accounts; nothing else changed.
    let after = app.all_balances().await;
    let expected: Vec<(String, String, i64)> = before
        .into_iter()
        .map(|(owner, name, cents)| {
            let delta = match (owner.as_str(), name.as_str()) {
                (ALICE, "checking") => -100_000,
                (ALICE, "savings") => 100_000,
                _ => 0,
            };
            (owner, name, cents + delta)
        })
        .collect();
    assert_eq!(after, expected);
    let reported: Vec<i64> = data["balances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["balance_cents"].as_i64().unwrap())
        .collect();
    assert_eq!(reported, vec![400_000, 1_100_000]);

    // The audit row names the ephemeral role and the T2 jti, as banking's events do.
    let id = data["transaction_id"].as_i64().unwrap();
    let row = app
        .admin
        .query_one(
            "SELECT audit_pg_user, audit_jti FROM banking.transactions WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    let (pg_user, jti): (String, String) = (row.get(0), row.get(1));
    assert!(pg_user.starts_with("v-banking-transfers-"), "{pg_user}");
    assert_eq!(
        (data["pg_user"].as_str(), data["jti"].as_str()),
        (Some(pg_user.as_str()), Some(jti.as_str()))
    );
    assert_ne!(
        jti,
        claims_of(&t1).jti,
        "the audit names T2, the token banking obtained, not T1"
    );
    let issued = app.events("credential_issued").await;
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0]["jti"], jti.as_str());
    assert_eq!(issued[0]["pg_user"], pg_user.as_str());
    assert!(
        issued[0]["lease"]
            .as_str()
            .unwrap()
            .starts_with("verify-rar/creds/banking-transfers/")
    );
    let exchange = app.events("token_exchange").await;
    assert_eq!(
        (exchange[0]["outcome"].as_str(), exchange[0]["jti"].as_str()),
        (Some("approved"), Some(jti.as_str()))
    );
    for kind in ["vault_login", "sql_executed", "lease_revoked"] {
        let e = app.events(kind).await;
        assert_eq!(e.len(), 1, "{kind}");
        assert_eq!(e[0]["jti"], jti.as_str(), "{kind}");
    }
    assert!(
        app.events("sql_executed").await[0]["duration_ms"]
            .as_f64()
            .is_some()
    );
    assert_eq!(app.events("lease_revoked").await[0]["outcome"], "info");

    // The role existed for this transaction only.
    assert!(!app.role_exists(&pg_user).await);
    let lease_state: String = app
        .admin
        .query_one(
            "SELECT state FROM verify_rar.leases WHERE pg_user = $1",
            &[&pg_user],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(lease_state, "revoked");
}

#[tokio::test]
async fn a_denied_approval_rejects_the_task_and_moves_nothing() {
    let app = spawn_app().await;
    let alice = app.idp.sign_in(ALICE).await;
    let args = transfer_args("700.00");
    let t1 = app
        .idp
        .t1(&alice, &banking_rar("transfer_funds", args.clone()))
        .await;
    let before = app.all_balances().await;

    let message = tool_call(
        "Transfer $700 from checking to savings.",
        "transfer_funds",
        args,
    );
    let events = app
        .stream_until_done(&t1, &message, async |approval_id: &str| {
            app.idp.decide(&alice, approval_id, false).await;
        })
        .await;

    let seen = states(&events);
    assert!(seen.contains(&TaskState::AuthRequired), "{seen:?}");
    assert_eq!(seen.last(), Some(&TaskState::Rejected), "{seen:?}");
    let StreamResponse::StatusUpdate(done) = events.last().unwrap() else {
        panic!()
    };
    let text = done.status.message.as_ref().unwrap().text();
    assert!(text.starts_with("The identity provider refused"), "{text}");
    assert_eq!(app.all_balances().await, before);

    // No credential was ever issued; the refusal is on record with its reason.
    assert!(app.events("credential_issued").await.is_empty());
    let refused = app.events("tool_refused").await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["tool"], "transfer_funds");
    assert_eq!(refused[0]["outcome"], "denied");
    assert_eq!(app.events("token_exchange").await[0]["outcome"], "denied");
}
