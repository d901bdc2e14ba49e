//! The role admin API: only for the admin token, validated, and used by the next creds request.

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    harness::{ADMIN_TOKEN, assert_vault_error, spawn_app},
    idp::transfer_rar,
};

fn role(mapping_sql: &str) -> serde_json::Value {
    json!({
        "default_ttl": 60, "max_ttl": 120,
        "creation_statements": ["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'"],
        "rar_mappings": [{"type": "urn:smt:agent:banking", "actions": ["get_balance"],
            "statements": [{"sql": mapping_sql, "params": ["grant_id", "name", "jti", "fingerprint", "action", "owner", "account", "expires_unix"]}]}]
    })
}

const GRANT_SQL: &str = "GRANT banking_reader TO \"{{name}}\"; ";

#[tokio::test]
async fn admin_writes_reads_lists_and_deletes_roles() {
    let app = spawn_app().await;
    let insert = "INSERT INTO banking.grants (id, pg_user, jti, rar_fingerprint, action, owner, account, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, to_timestamp($8))";
    let mut body = role(insert);
    body["rar_mappings"][0]["statements"] = json!([{"sql": GRANT_SQL.trim_end_matches("; ")}, body["rar_mappings"][0]["statements"][0]]);

    let got = app
        .call(
            "PUT",
            "/v1/verify-rar/roles/short-reader",
            Some("hvs.not-admin"),
            Some(body.clone()),
        )
        .await;
    assert_vault_error(&got, StatusCode::FORBIDDEN, "permission denied");
    let (status, _, _) = app
        .call(
            "PUT",
            "/v1/verify-rar/roles/short-reader",
            Some(ADMIN_TOKEN),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, read) = app
        .call(
            "GET",
            "/v1/verify-rar/roles/short-reader",
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(
        (status, read["data"]["max_ttl"].as_u64()),
        (StatusCode::OK, Some(120))
    );
    let (_, _, list) = app
        .call(
            "GET",
            "/v1/verify-rar/roles?list=true",
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(
        list["data"]["keys"],
        json!([
            "banking-accounts",
            "banking-reader",
            "banking-transfers",
            "short-reader"
        ])
    );

    // Interpolating a RAR value, or a TTL past the ceiling, is refused.
    let got = app
        .call(
            "PUT",
            "/v1/verify-rar/roles/bad",
            Some(ADMIN_TOKEN),
            Some(role("SELECT '{{owner}}'")),
        )
        .await;
    assert_vault_error(&got, StatusCode::BAD_REQUEST, "bind RAR values as params");
    let mut long = role(insert);
    long["max_ttl"] = json!(3600);
    let got = app
        .call(
            "PUT",
            "/v1/verify-rar/roles/bad",
            Some(ADMIN_TOKEN),
            Some(long),
        )
        .await;
    assert_vault_error(&got, StatusCode::BAD_REQUEST, "max_ttl");

    // The new role issues a 60-second credential for a balance read, once the idp's operator
    // lets the banking agent ask for its path.
    app.idp.allow_banking_path("short-reader").await;
    let alice = app.idp.sign_in("alice@example.com").await;
    let balance = json!({"type": "urn:smt:agent:banking", "operationDetails": {"action": "get_balance", "account": "savings"}});
    let (jwt, _) = app.idp.t2(&alice, balance, "short-reader").await;
    let token = app.login(&jwt).await;
    let (status, _, creds) = app
        .call(
            "GET",
            "/v1/verify-rar/creds/short-reader",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (status, creds["lease_duration"].as_u64()),
        (StatusCode::OK, Some(60)),
        "{creds}"
    );
    let db = app
        .connect_as(
            creds["data"]["username"].as_str().unwrap(),
            creds["data"]["password"].as_str().unwrap(),
        )
        .await
        .unwrap();
    let seen = banking::balances(&db).await.unwrap();
    assert_eq!(
        seen.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
        ["savings"]
    );

    let (status, _, _) = app
        .call(
            "DELETE",
            "/v1/verify-rar/roles/short-reader",
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (jwt, _) = app
        .idp
        .t2(
            &alice,
            transfer_rar("1.00", "checking", "savings"),
            "short-reader",
        )
        .await;
    let token = app.login(&jwt).await;
    let got = app
        .call(
            "GET",
            "/v1/verify-rar/creds/short-reader",
            Some(&token),
            None,
        )
        .await;
    assert_vault_error(&got, StatusCode::BAD_REQUEST, "unknown role");
}
