//! Every refusal in the Vault error shape: bad tokens, missing path access, unmapped RAR,
//! revoked sessions; and no role is created for any of them.

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    harness::{assert_vault_error, spawn_app},
    idp::{detail, transfer_rar},
};

const ALICE: &str = "alice@example.com";

async fn login(app: &crate::harness::App, jwt: &str) -> (StatusCode, String, serde_json::Value) {
    app.call(
        "PUT",
        "/v1/auth/jwt/login",
        None,
        Some(json!({"role": "banking", "jwt": jwt})),
    )
    .await
}

#[tokio::test]
async fn login_refuses_bad_tokens_and_missing_path_access() {
    let app = spawn_app().await;
    let alice = app.idp.sign_in(ALICE).await;
    let business = transfer_rar("1.00", "checking", "savings");

    // A real token for the issuer that names no credential path.
    let transfer = detail(business.clone());
    let (no_path, _) = app
        .idp
        .delegate(&alice, &transfer, std::slice::from_ref(&transfer))
        .await;
    assert_vault_error(
        &login(&app, &no_path).await,
        StatusCode::BAD_REQUEST,
        "vault:path_access",
    );

    // The idp never mints an expired token: this one is forged with its key.
    let (_, mut expired) = app
        .idp
        .t2(&alice, business.clone(), "banking-transfers")
        .await;
    expired.exp = kit::now_secs() - 600;
    expired.iat = expired.exp - 300;
    assert_vault_error(
        &login(&app, &app.idp.forge(&expired)).await,
        StatusCode::BAD_REQUEST,
        "expired",
    );

    // A real token for another audience: the T1 the concierge got for the banking agent.
    let t1 = app.idp.t1(&alice, &transfer).await;
    assert_vault_error(&login(&app, &t1).await, StatusCode::BAD_REQUEST, "audience");
    // And one the idp would address to another resource, forged with its key.
    let (_, mut wrong_aud) = app
        .idp
        .t2(&alice, business.clone(), "banking-transfers")
        .await;
    wrong_aud.aud = kit::claims::Audience::one("graph");
    assert_vault_error(
        &login(&app, &app.idp.forge(&wrong_aud)).await,
        StatusCode::BAD_REQUEST,
        "audience",
    );

    let other_key = kit::jwt::SigningKey::generate("intruder").unwrap();
    let (_, claims) = app
        .idp
        .t2(&alice, business.clone(), "banking-transfers")
        .await;
    let forged = other_key.sign("at+jwt", &claims).unwrap();
    assert_vault_error(
        &login(&app, &forged).await,
        StatusCode::BAD_REQUEST,
        "unknown key",
    );

    // A real token whose session the administrator ends before it is shown.
    let doomed = app.idp.sign_in(ALICE).await;
    let (jwt, _) = app
        .idp
        .t2(&doomed, business.clone(), "banking-transfers")
        .await;
    app.idp.revoke_session(&doomed.sid).await;
    assert_vault_error(
        &login(&app, &jwt).await,
        StatusCode::BAD_REQUEST,
        "session is not active",
    );

    assert_vault_error(
        &login(&app, "").await,
        StatusCode::BAD_REQUEST,
        "missing jwt",
    );
    let garbage = app.call("POST", "/v1/auth/jwt/login", None, None).await;
    assert_vault_error(&garbage, StatusCode::BAD_REQUEST, "missing jwt");
}

#[tokio::test]
async fn creds_refuse_bad_tokens_other_paths_unmapped_rar_and_dead_sessions() {
    let app = spawn_app().await;
    let creds = |token: Option<String>, role: &'static str| {
        let app = &app;
        async move {
            app.call(
                "GET",
                &format!("/v1/verify-rar/creds/{role}"),
                token.as_deref(),
                None,
            )
            .await
        }
    };
    assert_vault_error(
        &creds(None, "banking-transfers").await,
        StatusCode::FORBIDDEN,
        "permission denied",
    );
    assert_vault_error(
        &creds(Some("hvs.nonsense".into()), "banking-transfers").await,
        StatusCode::FORBIDDEN,
        "permission denied",
    );

    // A transfer token may read banking-transfers only.
    let alice = app.idp.sign_in(ALICE).await;
    let (jwt, _) = app
        .idp
        .t2(
            &alice,
            transfer_rar("1.00", "checking", "savings"),
            "banking-transfers",
        )
        .await;
    let token = app.login(&jwt).await;
    assert_vault_error(
        &creds(Some(token.clone()), "banking-reader").await,
        StatusCode::FORBIDDEN,
        "may not read",
    );

    // Path access to banking-transfers, but the business RAR is a balance read: no mapping.
    let balance =
        json!({"type": "urn:smt:agent:banking", "operationDetails": {"action": "get_balance"}});
    let (jwt, _) = app.idp.t2(&alice, balance, "banking-transfers").await;
    let unmapped = app.login(&jwt).await;
    assert_vault_error(
        &creds(Some(unmapped), "banking-transfers").await,
        StatusCode::FORBIDDEN,
        "no rar_mapping of role banking-transfers matches urn:smt:agent:banking|get_balance",
    );

    // The session dies after login: the next creds request is refused.
    app.idp.revoke_session(&alice.sid).await;
    assert_vault_error(
        &creds(Some(token), "banking-transfers").await,
        StatusCode::FORBIDDEN,
        "session is no longer active",
    );

    // The admin token administers roles; it never gets credentials.
    let admin = Some(crate::harness::ADMIN_TOKEN.to_owned());
    assert_vault_error(
        &creds(admin, "banking-transfers").await,
        StatusCode::FORBIDDEN,
        "permission denied",
    );

    let n: i64 = app
        .admin
        .query_one("SELECT count(*) FROM verify_rar.leases", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "no refusal created a credential");
    let denied: i64 = app
        .admin
        .query_one("SELECT count(*) FROM verify_rar.events WHERE kind = 'cred_denied' AND outcome = 'denied'", &[])
        .await
        .unwrap()
        .get(0);
    // Other path, unmapped RAR, dead session: the decisions taken on a valid token.
    assert_eq!(denied, 3);
}

#[tokio::test]
async fn unknown_paths_and_health_speak_vault() {
    let app = spawn_app().await;
    let got = app.call("GET", "/v1/secret/data/x", None, None).await;
    assert_eq!(
        (got.0, got.2.clone()),
        (StatusCode::NOT_FOUND, json!({"errors": []}))
    );
    assert_eq!(got.1, "application/json");
    let (status, _, body) = app.call("GET", "/v1/sys/health", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["initialized"].as_bool(), body["sealed"].as_bool()),
        (Some(true), Some(false))
    );
    let (status, _, body) = app.call("HEAD", "/v1/sys/health", None, None).await;
    assert_eq!((status, body), (StatusCode::OK, serde_json::Value::Null));
}
