//! One service process killed with SIGKILL mid-scenario and started again on the same port with
//! the same configuration, while the rest of the stack runs.

use std::str::FromStr as _;

use e2e::Platform;
use kit::a2a::TaskState;

use crate::{
    decide, eventually, ledger_total, no_ephemeral_role_left, signal_delivered_everywhere,
    tokens_of_approval, transfers_of_approval,
};

async fn superuser(p: &Platform) -> tokio_postgres::Client {
    let cfg = tokio_postgres::Config::from_str(&p.stack.urls.database).unwrap();
    let (client, conn) = cfg.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

/// verify-rar is killed after the transaction that creates the ephemeral role (and its ledger
/// grant) committed and before the lease is marked `active`. The test holds it exactly there
/// with two locks of its own: the ledger's `grants` table (so the role's transaction waits
/// while the test locks the new intent row), then that intent row (so the lease record waits
/// once the role exists). With the role committed and the issuer's `UPDATE leases SET state =
/// 'active'` waiting, the process is killed. The restarted issuer (same instance id) must drop
/// the role and close the lease; no money moved; a retry moves it once.
#[tokio::test]
async fn verify_rar_killed_between_role_creation_and_lease_record_leaves_nothing_behind() {
    let mut p = Platform::start().await;
    let alice = p.sign_in("alice@example.com").await;
    let before = p.balances("alice@example.com").await;
    let total = ledger_total(&p).await;

    let grants = superuser(&p).await;
    grants
        .batch_execute("BEGIN; LOCK TABLE banking.grants IN SHARE MODE")
        .await
        .unwrap();
    let mut conv = p
        .ask(&alice, "Transfer $600 from checking to savings.")
        .await;
    conv.wait_for(TaskState::AuthRequired).await;
    let approval = p.approve_next(&alice).await;

    // The intent is committed; the role's transaction waits for the grants table.
    let intent = "SELECT lease_id, pg_user FROM verify_rar.leases WHERE state = 'creating'";
    eventually("the issuer's intent row", || async {
        !p.query(intent, &[]).await.is_empty()
    })
    .await;
    let lease_lock = superuser(&p).await;
    lease_lock.batch_execute("BEGIN").await.unwrap();
    let row = lease_lock
        .query_one(&format!("{intent} FOR UPDATE"), &[])
        .await
        .unwrap();
    let (lease, role): (String, String) = (row.get(0), row.get(1));
    grants.batch_execute("COMMIT").await.unwrap();

    // The role exists (its transaction committed) and the lease record waits for our lock.
    let waiting = "SELECT pid FROM pg_stat_activity
                   WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE leases SET state = ''active''%'";
    eventually(
        "the role committed and the lease record waiting",
        || async {
            let exists = !p
                .query("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
                .await
                .is_empty();
            exists && !p.query(waiting, &[]).await.is_empty()
        },
    )
    .await;
    let backend: i32 = p.query(waiting, &[]).await[0].get(0);

    p.stack.kill_service("verify-rar").await.unwrap();
    lease_lock.batch_execute("ROLLBACK").await.unwrap();
    // The killed issuer's backend finishes its statement, finds its client gone, rolls back.
    eventually("the killed issuer's backend ending", || async {
        p.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", &[&backend])
            .await
            .is_empty()
    })
    .await;
    let state: String = p
        .query(
            "SELECT state FROM verify_rar.leases WHERE lease_id = $1",
            &[&lease],
        )
        .await[0]
        .get(0);
    assert_eq!(state, "creating", "killed between the role and its record");
    assert_eq!(
        p.leftover_roles().await,
        vec![role.clone()],
        "the role outlived the issuer"
    );

    // Banking could not get its credential: nothing was done.
    let (state, text, _) = conv.finish().await;
    assert_ne!(state, TaskState::Completed, "{text}");

    p.stack.start_service("verify-rar").await.unwrap();
    let row = &p
        .query(
            "SELECT state, revoke_reason FROM verify_rar.leases WHERE lease_id = $1",
            &[&lease],
        )
        .await[0];
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, Option<String>>(1)),
        ("revoked".to_owned(), Some("interrupted".to_owned()))
    );
    no_ephemeral_role_left(&p).await;
    assert!(
        p.issuer_audit()
            .iter()
            .any(|l| l["event"]["type"] == "lease_reconciled"
                && l["event"]["pg_user"] == role.as_str()),
        "the start-up clean-up is in the audit log"
    );
    assert_eq!(
        transfers_of_approval(&p, approval["id"].as_str().unwrap()).await,
        0
    );
    assert_eq!(p.balances("alice@example.com").await, before);
    assert_eq!(ledger_total(&p).await, total);

    // The restarted issuer serves the retry, which moves the money once.
    let mut conv = p
        .ask(&alice, "Transfer $600 from checking to savings.")
        .await;
    conv.wait_for(TaskState::AuthRequired).await;
    let retry = p.approve_next(&alice).await;
    let (state, text, _) = conv.finish().await;
    assert_eq!(state, TaskState::Completed, "{text}");
    assert_eq!(
        transfers_of_approval(&p, retry["id"].as_str().unwrap()).await,
        1
    );
    let after = p.balances("alice@example.com").await;
    assert_eq!(after["checking"], before["checking"] - 60_000);
    assert_eq!(after["savings"], before["savings"] + 60_000);
    let rows: i64 = p
        .query("SELECT count(*) FROM banking.transactions", &[])
        .await[0]
        .get(0);
    assert_eq!(rows, 1);
    no_ephemeral_role_left(&p).await;
    p.verify_issuer_audit_chains();
}

/// Banking is killed while it holds a live credential: the ephemeral role's transfer waits on a
/// lock the test holds on alice's accounts, after the approval, the issuance and the login. The
/// transaction dies with its client (nothing half-applied), the task fails instead of hanging,
/// and the role, which no agent will revoke now, is dropped by the issuer's reaper when its
/// lease ends (the test moves the lease's end to now instead of waiting its 300 s). The
/// restarted agent serves the retry, which moves the money once.
#[tokio::test]
async fn banking_killed_holding_a_credential_half_applies_nothing_and_the_reaper_drops_its_role() {
    let mut p = Platform::start().await;
    let alice = p.sign_in("alice@example.com").await;
    let before = p.balances("alice@example.com").await;
    let total = ledger_total(&p).await;

    let accounts = superuser(&p).await;
    accounts
        .batch_execute(
            "BEGIN; SELECT 1 FROM banking.accounts WHERE owner = 'alice@example.com' FOR UPDATE",
        )
        .await
        .unwrap();
    let mut conv = p
        .ask(&alice, "Transfer $700 from checking to savings.")
        .await;
    conv.wait_for(TaskState::AuthRequired).await;
    let approval = p.approve_next(&alice).await;

    // The ephemeral role's first leg waits for the test's lock: banking holds the credential.
    let waiting = "SELECT pid, usename::text FROM pg_stat_activity
                   WHERE usename LIKE 'v-banking-transfers-%' AND wait_event_type = 'Lock'";
    eventually("the transfer waiting under its credential", || async {
        !p.query(waiting, &[]).await.is_empty()
    })
    .await;
    let row = &p.query(waiting, &[]).await[0];
    let (backend, role): (i32, String) = (row.get(0), row.get(1));

    p.stack.kill_service("banking").await.unwrap();
    accounts.batch_execute("ROLLBACK").await.unwrap();
    eventually("the dead agent's transaction ending", || async {
        p.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", &[&backend])
            .await
            .is_empty()
    })
    .await;
    assert_eq!(
        transfers_of_approval(&p, approval["id"].as_str().unwrap()).await,
        0,
        "the transaction died with its client"
    );
    assert_eq!(p.balances("alice@example.com").await, before);
    assert_eq!(ledger_total(&p).await, total);
    let (state, text, _) = conv.finish().await;
    assert_eq!(
        state,
        TaskState::Failed,
        "the concierge says banking stopped: {text}"
    );

    // Nobody revoked the lease: its role lives until the lease ends, and not a moment longer.
    assert_eq!(p.leftover_roles().await, vec![role.clone()]);
    p.stack.start_service("banking").await.unwrap();
    p.query(
        "UPDATE verify_rar.leases SET expires_at = now() WHERE pg_user = $1",
        &[&role],
    )
    .await;
    no_ephemeral_role_left(&p).await;
    assert!(
        p.issuer_audit().iter().any(
            |l| l["event"]["type"] == "lease_expired" && l["event"]["pg_user"] == role.as_str()
        ),
        "the reaper's lease_expired is in the audit log"
    );

    // The restarted agent serves the retry, which moves the money once.
    let mut conv = p
        .ask(&alice, "Transfer $700 from checking to savings.")
        .await;
    conv.wait_for(TaskState::AuthRequired).await;
    p.approve_next(&alice).await;
    let (state, text, _) = conv.finish().await;
    assert_eq!(state, TaskState::Completed, "{text}");
    let after = p.balances("alice@example.com").await;
    assert_eq!(after["checking"], before["checking"] - 70_000);
    assert_eq!(after["savings"], before["savings"] + 70_000);
    no_ephemeral_role_left(&p).await;
    p.verify_issuer_audit_chains();
}

/// The concierge is killed while the transfer it delegated waits for the user's approval. Its
/// A2A tasks lived in its memory, so the user's conversation is gone; what it started is not:
/// banking's task holds its own token and waits for the same approval, so the user's "approve"
/// still moves the money, exactly once, and leaves no role behind. The restarted concierge
/// serves the next conversation.
#[tokio::test]
async fn the_concierge_killed_mid_approval_leaves_the_delegated_transfer_whole() {
    let mut p = Platform::start().await;
    let alice = p.sign_in("alice@example.com").await;
    let before = p.balances("alice@example.com").await;
    let total = ledger_total(&p).await;

    let mut conv = p
        .ask(&alice, "Transfer $800 from checking to savings.")
        .await;
    conv.wait_for(TaskState::AuthRequired).await;
    // The user's conversation ends with the process (its stream breaks; nothing to read).
    p.stack.kill_service("concierge").await.unwrap();
    drop(conv);

    let approval = p.approve_next(&alice).await;
    let id = approval["id"].as_str().unwrap().to_owned();
    eventually("banking finishing the approved transfer", || async {
        transfers_of_approval(&p, &id).await == 1
    })
    .await;
    no_ephemeral_role_left(&p).await;
    let after = p.balances("alice@example.com").await;
    assert_eq!(after["checking"], before["checking"] - 80_000);
    assert_eq!(after["savings"], before["savings"] + 80_000);
    assert_eq!(ledger_total(&p).await, total);
    assert_eq!(tokens_of_approval(&p, &id).await, 1);

    p.stack.start_service("concierge").await.unwrap();
    let mut conv = p.ask(&alice, "What is my checking balance?").await;
    let (state, text, _) = conv.finish().await;
    assert_eq!(state, TaskState::Completed, "{text}");
    assert_eq!(
        p.query("SELECT count(*) FROM banking.transactions", &[])
            .await[0]
            .get::<_, i64>(0),
        1
    );
    p.verify_issuer_audit_chains();
}

/// Kills the idp and keeps it down for three of banking's one-second approval polls, so they
/// meet the outage, then starts it again.
async fn idp_down_for_a_while(p: &mut Platform) {
    p.stack.kill_service("idp").await.unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    p.stack.start_service("idp").await.unwrap();
}

/// The idp is killed twice: while a transfer's approval is pending (the user has not decided),
/// and right after the user approved another. Banking keeps polling through the outage; the
/// approval survives in the idp's store, is approved once on the restarted idp, and the money
/// moves once. The approval given just before the kill is applied at most once, and exactly
/// once if the task completed; a second decision on either is refused.
#[tokio::test]
async fn the_idp_killed_mid_approval_loses_nothing_and_applies_nothing_twice() {
    let mut p = Platform::start().await;
    let alice = p.sign_in("alice@example.com").await;
    let before = p.balances("alice@example.com").await;
    let total = ledger_total(&p).await;

    // 1. Killed while the approval waits for the user.
    let mut conv = p
        .ask(&alice, "Transfer $700 from checking to savings.")
        .await;
    conv.wait_for(TaskState::AuthRequired).await;
    let pending = p.pending_approvals(&alice).await;
    assert_eq!(pending.len(), 1);
    idp_down_for_a_while(&mut p).await;
    let survived = p.pending_approvals(&alice).await;
    assert_eq!(
        survived.iter().map(|a| &a["id"]).collect::<Vec<_>>(),
        vec![&pending[0]["id"]],
        "the pending approval survived the restart, once"
    );
    let first = p.approve_next(&alice).await;
    let (state, text, _) = conv.finish().await;
    assert_eq!(state, TaskState::Completed, "{text}");
    let first_id = first["id"].as_str().unwrap();
    assert_eq!(tokens_of_approval(&p, first_id).await, 1);
    assert_eq!(transfers_of_approval(&p, first_id).await, 1);
    assert_ne!(decide(&p, &alice, first_id, "approve").await, 200);

    // 2. Killed right after the user approved, before or while banking collects the token.
    let mut conv = p
        .ask(&alice, "Transfer $800 from savings to checking.")
        .await;
    conv.wait_for(TaskState::AuthRequired).await;
    let second = p.approve_next(&alice).await;
    idp_down_for_a_while(&mut p).await;
    let (state, text, _) = conv.finish().await;
    let second_id = second["id"].as_str().unwrap();
    let applied = transfers_of_approval(&p, second_id).await;
    assert!(tokens_of_approval(&p, second_id).await <= 1);
    assert_eq!(
        applied,
        i64::from(state == TaskState::Completed),
        "{state:?}: {text}"
    );
    assert_ne!(decide(&p, &alice, second_id, "approve").await, 200);
    assert!(p.pending_approvals(&alice).await.is_empty());

    let after = p.balances("alice@example.com").await;
    let moved = 70_000 - 80_000 * applied;
    assert_eq!(after["checking"], before["checking"] - moved);
    assert_eq!(after["savings"], before["savings"] + moved);
    assert_eq!(ledger_total(&p).await, total);
    no_ephemeral_role_left(&p).await;
    p.verify_issuer_audit_chains();
}

/// The signals transmitter is down when a session is revoked, and the idp is killed with the
/// revocation still queued in its outbox. Once both are back, the one `session-revoked` reaches
/// every receiver (one SET per stream), and the session's pending approval is gone.
#[tokio::test]
async fn a_revocation_queued_while_the_transmitter_and_the_idp_are_down_is_delivered() {
    let mut p = Platform::start().await;
    let alice = p.sign_in("alice@example.com").await;
    let mut conv = p
        .ask(&alice, "Transfer $900 from checking to savings.")
        .await;
    conv.wait_for(TaskState::AuthRequired).await;

    p.stack.kill_service("ssf").await.unwrap();
    p.revoke_session(&alice.sid, "killed while the transmitter is down")
        .await;
    // The idp tried to hand it over and could not.
    eventually("a failed delivery attempt", || async {
        p.query(
            "SELECT 1 FROM idp.signal_outbox WHERE session_id = $1 AND delivered_at IS NULL AND attempts > 0",
            &[&alice.sid],
        )
        .await
        .len()
            == 1
    })
    .await;
    p.stack.restart_service("idp").await.unwrap();
    p.stack.start_service("ssf").await.unwrap();

    signal_delivered_everywhere(&p, &alice.sid).await;
    let (state, text, _) = conv.finish().await;
    assert_ne!(state, TaskState::Completed, "{text}");
    let pending: i64 = p
        .query(
            "SELECT count(*) FROM idp.approvals WHERE session_id = $1 AND status = 'pending'",
            &[&alice.sid],
        )
        .await[0]
        .get(0);
    assert_eq!(pending, 0, "the revoked session's approval is closed");
    let rows: i64 = p
        .query("SELECT count(*) FROM banking.transactions", &[])
        .await[0]
        .get(0);
    assert_eq!(rows, 0);
    assert!(!p.introspect_active(&alice.access_token).await);
    no_ephemeral_role_left(&p).await;
    p.verify_issuer_audit_chains();
}
