//! Lease lookup, renew and revoke over the Vault API, and the reaper.

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    harness::{assert_vault_error, spawn_app},
    idp::transfer_rar,
};

#[tokio::test]
async fn revoke_drops_the_role_and_terminates_a_held_connection() {
    let app = spawn_app().await;
    let alice = app.idp.sign_in("alice@example.com").await;
    let (jwt, _) = app
        .idp
        .t2(
            &alice,
            transfer_rar("5.00", "checking", "savings"),
            "banking-transfers",
        )
        .await;
    let token = app.login(&jwt).await;
    let (lease, user, password) = app.creds(&token, "banking-transfers").await;
    let held = app.connect_as(&user, &password).await.unwrap();
    held.simple_query("SELECT 1").await.unwrap();
    assert!(app.role_exists(&user).await);

    let (status, _, body) = app
        .call(
            "PUT",
            "/v1/sys/leases/lookup",
            Some(&token),
            Some(json!({"lease_id": lease})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["id"], lease.as_str());
    assert!(body["data"]["ttl"].as_i64().unwrap() > 0);
    assert!(body["data"]["last_renewal"].is_null());

    let (status, _, _) = app
        .call(
            "PUT",
            "/v1/sys/leases/revoke",
            Some(&token),
            Some(json!({"lease_id": lease})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!app.role_exists(&user).await);
    // pg_terminate_backend waited for the session to end: the held connection is gone.
    assert!(held.simple_query("SELECT 1").await.is_err());
    assert!(app.connect_as(&user, &password).await.is_err());
    // Idempotent; and the lease is no longer live.
    let (status, _, _) = app
        .call(
            "POST",
            &format!("/v1/sys/leases/revoke/{lease}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let got = app
        .call(
            "PUT",
            "/v1/sys/leases/lookup",
            Some(&token),
            Some(json!({"lease_id": lease})),
        )
        .await;
    assert_vault_error(&got, StatusCode::BAD_REQUEST, "invalid lease");
}

#[tokio::test]
async fn renew_extends_within_max_ttl_and_only_for_the_owner() {
    let app = spawn_app().await;
    let alice = app.idp.sign_in("alice@example.com").await;
    let (jwt, _) = app
        .idp
        .t2(
            &alice,
            transfer_rar("5.00", "checking", "savings"),
            "banking-transfers",
        )
        .await;
    let token = app.login(&jwt).await;
    let (lease, user, _) = app.creds(&token, "banking-transfers").await;
    let (status, _, body) = app
        .call(
            "PUT",
            "/v1/sys/leases/renew",
            Some(&token),
            Some(json!({"lease_id": lease, "increment": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["lease_id"], lease.as_str());
    assert!(body["lease_duration"].as_u64().unwrap() <= 300);
    // The grant in the ledger follows the lease.
    let same: bool = app
        .admin
        .query_one(
            "SELECT abs(extract(epoch FROM g.expires_at - l.expires_at)) < 1 FROM banking.grants g
             JOIN verify_rar.leases l ON l.grant_id = g.id WHERE l.lease_id = $1",
            &[&lease],
        )
        .await
        .unwrap()
        .get(0);
    assert!(same);
    // Another token cannot touch it.
    let bob = app.idp.sign_in("bob@example.com").await;
    let (other_jwt, _) = app
        .idp
        .t2(
            &bob,
            transfer_rar("1.00", "checking", "savings"),
            "banking-transfers",
        )
        .await;
    let other = app.login(&other_jwt).await;
    let got = app
        .call(
            "PUT",
            "/v1/sys/leases/revoke",
            Some(&other),
            Some(json!({"lease_id": lease})),
        )
        .await;
    assert_vault_error(&got, StatusCode::FORBIDDEN, "permission denied");
    assert!(app.role_exists(&user).await);
    let got = app
        .call("PUT", "/v1/sys/leases/renew", Some(&token), Some(json!({})))
        .await;
    assert_vault_error(&got, StatusCode::BAD_REQUEST, "lease_id must be specified");
}

#[tokio::test]
async fn a_lease_past_its_ttl_is_reaped() {
    let app = spawn_app().await;
    let alice = app.idp.sign_in("alice@example.com").await;
    let (jwt, _) = app
        .idp
        .t2(
            &alice,
            transfer_rar("5.00", "checking", "savings"),
            "banking-transfers",
        )
        .await;
    let token = app.login(&jwt).await;
    let (expired, expired_user, _) = app.creds(&token, "banking-transfers").await;
    let (_, live_user, _) = app.creds(&token, "banking-transfers").await;
    app.admin
        .execute("UPDATE verify_rar.leases SET expires_at = now() - interval '1 second' WHERE lease_id = $1", &[&expired])
        .await
        .unwrap();
    let reaped = verify_rar::leases::reap_once(&app.state).await.unwrap();
    assert_eq!(reaped, 1);
    assert!(!app.role_exists(&expired_user).await);
    assert!(app.role_exists(&live_user).await);
    let state: String = app
        .admin
        .query_one(
            "SELECT state || ':' || revoke_reason FROM verify_rar.leases WHERE lease_id = $1",
            &[&expired],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(state, "revoked:expired");
    assert_eq!(verify_rar::leases::reap_once(&app.state).await.unwrap(), 0);
}
