//! Postgres under the running stack: crashed and restarted while a transfer waits for its
//! approval, and the limits every pooled connection carries so a stuck wait cannot hang a
//! request silently.

use std::str::FromStr as _;

use e2e::Platform;
use kit::a2a::TaskState;
use tokio_postgres::error::SqlState;

use crate::{
    ledger_total, no_ephemeral_role_left, signal_delivered_everywhere, tokens_of_approval,
    transfers_of_approval,
};

/// The stack on its own (durable) Postgres, which is crashed (`pg_ctl stop -m immediate`: every
/// backend killed, the WAL replayed at the next start) and started again on the same port while
/// a transfer waits for the user's approval. Every service reconnects by itself: the approval
/// is still there and is applied once, the next transfer works, and a session revocation
/// afterwards goes through the outbox (its `LISTEN` reconnected) to every receiver.
#[tokio::test]
async fn postgres_restarted_under_the_running_stack_services_reconnect_and_carry_on() {
    let mut p = Platform::start_with_own_postgres().await;
    let alice = p.sign_in("alice@example.com").await;
    let before = p.balances("alice@example.com").await;
    let total = ledger_total(&p).await;

    let mut conv = p
        .ask(&alice, "Transfer $650 from checking to savings.")
        .await;
    conv.wait_for(TaskState::AuthRequired).await;
    p.stack.restart_postgres().await.unwrap();
    p.reconnect_db().await;

    let approval = p.approve_next(&alice).await;
    let (state, text, _) = conv.finish().await;
    assert_eq!(state, TaskState::Completed, "{text}");
    let id = approval["id"].as_str().unwrap();
    assert_eq!(tokens_of_approval(&p, id).await, 1);
    assert_eq!(transfers_of_approval(&p, id).await, 1);

    // Carry on: another transfer, then the session ended from the console.
    let mut conv = p
        .ask(&alice, "Transfer $650 from savings to checking.")
        .await;
    conv.wait_for(TaskState::AuthRequired).await;
    p.approve_next(&alice).await;
    let (state, text, _) = conv.finish().await;
    assert_eq!(state, TaskState::Completed, "{text}");
    assert_eq!(p.balances("alice@example.com").await, before);
    assert_eq!(ledger_total(&p).await, total);
    let rows: i64 = p
        .query("SELECT count(*) FROM banking.transactions", &[])
        .await[0]
        .get(0);
    assert_eq!(rows, 2);

    p.revoke_session(&alice.sid, "after the database restart")
        .await;
    signal_delivered_everywhere(&p, &alice.sid).await;
    assert!(!p.introspect_active(&alice.access_token).await);
    no_ephemeral_role_left(&p).await;
    p.verify_issuer_audit_chains();

    // This stack's cluster lives in its data directory: stop it and remove both.
    p.stack.stop().await.unwrap();
    std::fs::remove_dir_all(&p.data_dir).unwrap();
}

/// Every pooled connection carries `statement_timeout` and `lock_timeout` (so a wait on a lock
/// held by a stuck transaction fails with `lock_not_available` instead of hanging the request and
/// its connection), but not an idle-in-transaction limit (a worker may hold row locks across an
/// HTTP call); `LISTEN` connections carry neither.
#[tokio::test]
async fn pooled_connections_give_up_on_a_stuck_lock_instead_of_hanging() {
    let url = stack::testing::fresh_database().await.unwrap();
    let pool = kit::pg::pool(&url, "public", 2).unwrap();
    let db = pool.get().await.unwrap();
    let show = |name: &'static str| {
        let db = &db;
        async move {
            db.query_one(&format!("SHOW {name}"), &[])
                .await
                .unwrap()
                .get::<_, String>(0)
        }
    };
    assert_eq!(show("statement_timeout").await, kit::pg::STATEMENT_TIMEOUT);
    assert_eq!(show("lock_timeout").await, kit::pg::LOCK_TIMEOUT);
    assert_eq!(show("idle_in_transaction_session_timeout").await, "0");

    let (holder, conn) = tokio_postgres::Config::from_str(&url)
        .unwrap()
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    holder
        .batch_execute("CREATE TABLE stuck (id int)")
        .await
        .unwrap();
    holder
        .batch_execute("BEGIN; LOCK TABLE stuck")
        .await
        .unwrap();
    let err = db
        .query("SELECT * FROM stuck", &[])
        .await
        .expect_err("the lock is held by a transaction that never ends");
    assert_eq!(err.code(), Some(&SqlState::LOCK_NOT_AVAILABLE), "{err}");
    holder.batch_execute("ROLLBACK").await.unwrap();
    // The connection is still good for the next request.
    assert_eq!(show("lock_timeout").await, kit::pg::LOCK_TIMEOUT);
}
