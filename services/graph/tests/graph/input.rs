//! Bad input from an authorized caller: Graph-shaped 4xx, never a 5xx, and an event naming the
//! rule. Also the routes that do not exist.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{entra, graph_error, new_user, spawn_app};

const SARAH: &str = "sarah.smith@example.com";

#[tokio::test]
async fn malformed_create_bodies_are_graph_shaped_bad_requests() {
    let mut app = spawn_app().await;
    let alice = app.idp.sign_in("alice@example.com").await;
    let create = app
        .idp
        .graph_token(&alice, &entra("graph_user_create", Some(SARAH)))
        .await;
    let (http, url) = (app.http.clone(), format!("{}/v1.0/users", app.url));
    let post = |body: String, content_type: &'static str| {
        http.post(&url)
            .bearer_auth(&create)
            .header("content-type", content_type)
            .body(body)
            .send()
    };

    let resp = post("{\"accountEnabled\": tru".into(), "application/json")
        .await
        .unwrap();
    graph_error(resp, StatusCode::BAD_REQUEST, "Request_BadRequest").await;
    app.expect_refusal("graph_user_create", "invalid_request")
        .await;

    let mut missing = new_user(SARAH, "Sarah Smith");
    missing.as_object_mut().unwrap().remove("mailNickname");
    let resp = post(missing.to_string(), "application/json").await.unwrap();
    let body = graph_error(resp, StatusCode::BAD_REQUEST, "Request_BadRequest").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("mailNickname"),
        "{body}"
    );
    app.expect_refusal("graph_user_create", "invalid_request")
        .await;

    let resp = post(
        json!({"userPrincipalName": 7}).to_string(),
        "application/json",
    )
    .await
    .unwrap();
    graph_error(resp, StatusCode::BAD_REQUEST, "Request_BadRequest").await;
    app.expect_refusal("graph_user_create", "invalid_request")
        .await;

    let resp = post(new_user(SARAH, "Sarah Smith").to_string(), "text/plain")
        .await
        .unwrap();
    graph_error(resp, StatusCode::BAD_REQUEST, "Request_BadRequest").await;
    app.expect_refusal("graph_user_create", "invalid_request")
        .await;

    // Bodies are bounded.
    let huge = json!({"displayName": "x".repeat(64 * 1024)}).to_string();
    let resp = post(huge, "application/json").await.unwrap();
    graph_error(resp, StatusCode::PAYLOAD_TOO_LARGE, "Request_BadRequest").await;

    // The same UPN twice (in another case) is Graph's 400, with Graph's words.
    let resp = app.create(&create, &new_user(SARAH, "Sarah Smith")).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    app.next_event().await;
    let again = new_user(&SARAH.to_uppercase(), "Sarah Again");
    let create_upper = app
        .idp
        .graph_token(&alice, &entra("graph_user_create", Some(SARAH)))
        .await;
    let resp = app.create(&create_upper, &again).await;
    let body = graph_error(resp, StatusCode::BAD_REQUEST, "Request_BadRequest").await;
    assert_eq!(
        body["error"]["message"],
        "Another object with the same value for property userPrincipalName already exists."
    );
    app.expect_refusal("graph_user_create", "upn_exists").await;
}

#[tokio::test]
async fn bad_queries_ids_and_routes_are_graph_shaped() {
    let mut app = spawn_app().await;
    let alice = app.idp.sign_in("alice@example.com").await;
    let list = app
        .idp
        .graph_token(&alice, &entra("graph_user_list", None))
        .await;
    for query in [
        "$top=0",
        "$top=abc",
        "$filter=displayName eq 'x'",
        "$orderby=id",
    ] {
        let resp = app.get(&format!("/v1.0/users?{query}"), Some(&list)).await;
        graph_error(resp, StatusCode::BAD_REQUEST, "Request_BadRequest").await;
        app.expect_refusal("graph_user_list", "invalid_request")
            .await;
    }

    let get = app
        .idp
        .graph_token(&alice, &entra("graph_user_get", Some(SARAH)))
        .await;
    // Not a GUID and not a UPN.
    let resp = app.get("/v1.0/users/not%20a%20user", Some(&get)).await;
    graph_error(resp, StatusCode::BAD_REQUEST, "Request_BadRequest").await;
    app.expect_refusal("graph_user_get", "invalid_request")
        .await;
    // Granted, but nobody by that name yet.
    let resp = app.get(&format!("/v1.0/users/{SARAH}"), Some(&get)).await;
    graph_error(resp, StatusCode::NOT_FOUND, "Request_ResourceNotFound").await;
    let e = app.next_event().await;
    assert_eq!(
        (&e["outcome"], &e["reason"]),
        (&"info".into(), &"user_not_found".into())
    );
    let resp = app
        .get(
            "/v1.0/users/00000000-0000-4000-8000-000000000000",
            Some(&get),
        )
        .await;
    graph_error(resp, StatusCode::NOT_FOUND, "Request_ResourceNotFound").await;
    app.next_event().await;

    // Routes and methods that do not exist.
    let resp = app.get("/v1.0/groups", Some(&list)).await;
    graph_error(resp, StatusCode::NOT_FOUND, "Request_ResourceNotFound").await;
    let resp = app
        .http
        .delete(format!("{}/v1.0/users/{SARAH}", app.url))
        .bearer_auth(&list)
        .send()
        .await
        .unwrap();
    graph_error(resp, StatusCode::METHOD_NOT_ALLOWED, "Request_BadRequest").await;
}
