//! Writes besides S1: opening an account (tier 2, approved once), and a transfer the ledger
//! refuses after the user approved it: the task is rejected with the ledger's reason and the
//! credential is revoked all the same.

use kit::a2a::{StreamResponse, TaskState};
use serde_json::json;

use crate::{
    harness::{ALICE, spawn_app, tool_call},
    idp::banking_rar,
};

fn last_status(events: &[StreamResponse]) -> (TaskState, String) {
    let Some(StreamResponse::StatusUpdate(u)) = events.last() else {
        panic!("the stream ends on a status: {events:?}")
    };
    (u.status.state, u.status.message.as_ref().unwrap().text())
}

#[tokio::test]
async fn open_account_opens_the_approved_kind() {
    let app = spawn_app().await;
    let alice = app.idp.sign_in(ALICE).await;
    let args = json!({"kind": "trading"});
    let t1 = app
        .idp
        .t1(&alice, &banking_rar("open_account", args.clone()))
        .await;
    let message = tool_call("Open a trading account for me.", "open_account", args);
    let events = app
        .stream_until_done(&t1, &message, async |id: &str| {
            app.idp.decide(&alice, id, true).await
        })
        .await;
    assert_eq!(
        last_status(&events),
        (
            TaskState::Completed,
            "Opened a trading account named trading for alice@example.com.".into()
        )
    );
    let opened: i64 = app
        .admin
        .query_one(
            "SELECT count(*) FROM banking.accounts WHERE owner = $1 AND kind = 'trading'",
            &[&ALICE],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(opened, 1);
    let pg_user = app.events("credential_issued").await[0]["pg_user"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(pg_user.starts_with("v-banking-accounts-"), "{pg_user}");
    assert!(!app.role_exists(&pg_user).await);
}

#[tokio::test]
async fn a_ledger_refusal_rejects_the_task_and_still_revokes_the_lease() {
    let app = spawn_app().await;
    let alice = app.idp.sign_in(ALICE).await;
    // Alice has $5,000.00 in checking.
    let args = json!({"amount": {"value": "6000.00", "currency": "USD"}, "source": "checking", "destination": "savings"});
    let t1 = app
        .idp
        .t1(&alice, &banking_rar("transfer_funds", args.clone()))
        .await;
    let before = app.all_balances().await;
    let message = tool_call(
        "Transfer $6,000 from checking to savings.",
        "transfer_funds",
        args,
    );
    let events = app
        .stream_until_done(&t1, &message, async |id: &str| {
            app.idp.decide(&alice, id, true).await
        })
        .await;
    assert_eq!(
        last_status(&events),
        (
            TaskState::Rejected,
            "The ledger refused: insufficient funds in checking.".into()
        )
    );
    assert_eq!(app.all_balances().await, before);

    let sql = app.events("sql_executed").await;
    assert_eq!(
        (sql[0]["outcome"].as_str(), sql[0]["reason"].as_str()),
        (Some("denied"), Some("insufficient funds in checking"))
    );
    let pg_user = sql[0]["pg_user"].as_str().unwrap();
    assert_eq!(app.events("lease_revoked").await[0]["pg_user"], pg_user);
    assert!(!app.role_exists(pg_user).await);
    assert_eq!(app.events("tool_refused").await.len(), 1);
}
