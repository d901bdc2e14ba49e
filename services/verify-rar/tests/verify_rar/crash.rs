//! Crash safety: an issuer stopped between creating a role and recording its lease leaves no
//! orphan once an instance starts again; marked roles without a lease are removed at start-up.

use reqwest::StatusCode;

use crate::{
    harness::{spawn_app, spawn_with, start},
    idp::transfer_rar,
};
use verify_rar::config::Failpoint;

#[tokio::test]
async fn killing_the_issuer_between_create_and_record_leaves_no_orphan_role() {
    let healthy = spawn_app().await;
    let crashing = spawn_with(healthy.db_url.clone(), healthy.idp.clone(), |c| {
        c.failpoint = Some(Failpoint::AfterCreate)
    })
    .await;
    let alice = crashing.idp.sign_in("alice@example.com").await;
    let (jwt, _) = crashing
        .idp
        .t2(
            &alice,
            transfer_rar("5.00", "checking", "savings"),
            "banking-transfers",
        )
        .await;
    let token = crashing.login(&jwt).await;
    let (status, _, _) = crashing
        .call(
            "GET",
            "/v1/verify-rar/creds/banking-transfers",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let row = crashing
        .admin
        .query_one(
            "SELECT pg_user, state FROM verify_rar.leases ORDER BY issued_at DESC LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    let (role, state): (String, String) = (row.get(0), row.get(1));
    assert_eq!(state, "creating");
    assert!(
        crashing.role_exists(&role).await,
        "the role was created before the crash"
    );

    // The same instance starts again: its unfinished intent is cleaned up.
    let mut config = crashing.config.clone();
    config.failpoint = None;
    let restarted = start(crashing.db_url.clone(), crashing.idp.clone(), config).await;
    assert!(!restarted.role_exists(&role).await);
    let state: String = restarted
        .admin
        .query_one(
            "SELECT state FROM verify_rar.leases WHERE pg_user = $1",
            &[&role],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(state, "revoked");
}

#[tokio::test]
async fn marked_roles_without_a_live_lease_are_dropped_at_start_up() {
    let app = spawn_app().await;
    let orphan = format!(
        "v-banking-transfers-{}",
        verify_rar::store::random_alnum(20)
    );
    let foreign = format!(
        "v-banking-transfers-{}",
        verify_rar::store::random_alnum(20)
    );
    app.admin
        .batch_execute(&format!(
            "CREATE ROLE \"{orphan}\" LOGIN; GRANT banking_transfers TO \"{orphan}\";
             DO $$ BEGIN EXECUTE format('COMMENT ON ROLE %I IS %L', '{orphan}', 'verify-rar@' || current_database()); END $$;
             CREATE ROLE \"{foreign}\" LOGIN; COMMENT ON ROLE \"{foreign}\" IS 'verify-rar@some_other_database';"
        ))
        .await
        .unwrap();
    let restarted = start(app.db_url.clone(), app.idp.clone(), app.config.clone()).await;
    assert!(!restarted.role_exists(&orphan).await);
    // Another database's role is not ours to drop.
    assert!(restarted.role_exists(&foreign).await);
    restarted
        .admin
        .batch_execute(&format!("DROP ROLE \"{foreign}\""))
        .await
        .unwrap();
}
