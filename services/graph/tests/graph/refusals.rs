//! Refusals: tokens that are not delegated tokens for graph, and delegated tokens for another
//! operation or another user. Each answers in Graph's shape and leaves one event naming the rule.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{claims_of, entra, graph_error, new_user, reshaped, spawn_app};

const SARAH: &str = "sarah.smith@example.com";

#[tokio::test]
async fn a_create_granted_for_another_email_is_refused() {
    let mut app = spawn_app().await;
    let alice = app.idp.sign_in("alice@example.com").await;
    let other = app
        .idp
        .graph_token(
            &alice,
            &entra("graph_user_create", Some("megan.bowen@example.com")),
        )
        .await;
    let resp = app.create(&other, &new_user(SARAH, "Sarah Smith")).await;
    let body = graph_error(resp, StatusCode::FORBIDDEN, "Authorization_RequestDenied").await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("megan.bowen@example.com") && message.contains(SARAH),
        "{message}"
    );
    let e = app
        .expect_refusal("graph_user_create", "rar_target_mismatch")
        .await;
    assert_eq!(e["jti"], claims_of(&other).jti.as_str());
    assert_eq!(
        e["actor_chain"],
        serde_json::json!(["entra", "concierge", "alice@example.com"])
    );
    assert!(
        app.created_by_jti(SARAH).await.is_none(),
        "sarah was not created"
    );
}

#[tokio::test]
async fn read_tokens_cannot_create_and_reads_are_bound_to_their_user() {
    let mut app = spawn_app().await;
    let alice = app.idp.sign_in("alice@example.com").await;
    let list = app
        .idp
        .graph_token(&alice, &entra("graph_user_list", None))
        .await;
    let get_sarah = app
        .idp
        .graph_token(&alice, &entra("graph_user_get", Some(SARAH)))
        .await;

    for token in [&list, &get_sarah] {
        let resp = app.create(token, &new_user(SARAH, "Sarah Smith")).await;
        graph_error(resp, StatusCode::FORBIDDEN, "Authorization_RequestDenied").await;
        app.expect_refusal("graph_user_create", "rar_not_granted")
            .await;
    }
    assert!(app.created_by_jti(SARAH).await.is_none());

    // A get for sarah reads neither another user nor the list.
    let resp = app
        .get("/v1.0/users/megan.bowen@example.com", Some(&get_sarah))
        .await;
    graph_error(resp, StatusCode::FORBIDDEN, "Authorization_RequestDenied").await;
    app.expect_refusal("graph_user_get", "rar_target_mismatch")
        .await;
    let resp = app.get("/v1.0/users", Some(&get_sarah)).await;
    graph_error(resp, StatusCode::FORBIDDEN, "Authorization_RequestDenied").await;
    app.expect_refusal("graph_user_list", "rar_not_granted")
        .await;
}

#[tokio::test]
async fn tokens_that_are_not_delegated_tokens_for_graph_are_refused() {
    let mut app = spawn_app().await;
    let alice = app.idp.sign_in("alice@example.com").await;

    // No token: 401 with a bare challenge.
    let resp = app.get("/v1.0/users", None).await;
    assert_eq!(resp.headers()["www-authenticate"], "Bearer realm=\"graph\"");
    graph_error(resp, StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken").await;
    app.expect_refusal("graph_user_list", "token_missing").await;

    // Garbage, and a token signed by a key the idp never published.
    let stranger = kit::jwt::SigningKey::generate("stranger").unwrap();
    let claims = reshaped(&claims_of(&alice.access_token), |_| {});
    let unknown_key = stranger.sign(kit::claims::TYP_ACCESS, &claims).unwrap();
    for token in ["garbage", unknown_key.as_str()] {
        let resp = app.get("/v1.0/users", Some(token)).await;
        assert!(
            resp.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("error=\"invalid_token\"")
        );
        graph_error(resp, StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken").await;
        app.expect_refusal("graph_user_list", "token_invalid").await;
    }

    // Real tokens for someone else: the user's own (for the concierge), the phone's (for the
    // idp), and hop 1 (for the entra agent, not for graph).
    let t1 = app.idp.t1(&alice, &entra("graph_user_list", None)).await;
    for token in [&alice.access_token, &alice.device_token, &t1] {
        let resp = app.get("/v1.0/users", Some(token)).await;
        graph_error(resp, StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken").await;
        app.expect_refusal("graph_user_list", "audience_mismatch")
            .await;
    }

    // Addressed to graph and alive, but the user's own: no act chain.
    let own = app
        .idp
        .forge(&reshaped(&claims_of(&alice.access_token), |c| {
            c.act = None;
            c.authorization_details = Some(vec![entra("graph_user_list", None)]);
        }));
    let resp = app.get("/v1.0/users", Some(&own)).await;
    graph_error(resp, StatusCode::FORBIDDEN, "Authorization_RequestDenied").await;
    let e = app.expect_refusal("graph_user_list", "not_delegated").await;
    assert_eq!(e["user"], "alice@example.com");
    assert_eq!(e["actor_chain"], serde_json::json!(["alice@example.com"]));

    // A real delegated token, expired.
    let real = app
        .idp
        .graph_token(&alice, &entra("graph_user_list", None))
        .await;
    let expired = app.idp.forge(&reshaped(&claims_of(&real), |c| {
        c.iat -= 3600;
        c.exp = c.iat + 300;
    }));
    let resp = app.get("/v1.0/users", Some(&expired)).await;
    graph_error(resp, StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken").await;
    app.expect_refusal("graph_user_list", "token_expired").await;

    // And the real one works: every refusal above was about the token, not the service.
    let ok = app.get("/v1.0/users", Some(&real)).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let body: Value = ok.json().await.unwrap();
    assert!(body["value"].is_array());
}
