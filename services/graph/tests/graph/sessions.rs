//! A session ended at the idp is refused here at the very next call: graph asks the idp on
//! every request, with no cache to wait out.

use reqwest::StatusCode;

use crate::support::{entra, graph_error, spawn_app};

#[tokio::test]
async fn a_revoked_session_is_refused_at_the_next_call() {
    let mut app = spawn_app().await;
    let alice = app.idp.sign_in("alice@example.com").await;
    let list = app
        .idp
        .graph_token(&alice, &entra("graph_user_list", None))
        .await;
    assert_eq!(
        app.get("/v1.0/users", Some(&list)).await.status(),
        StatusCode::OK
    );
    assert_eq!(app.next_event().await["outcome"], "allowed");

    app.idp.revoke_session(&alice.sid).await;

    let resp = app.get("/v1.0/users", Some(&list)).await;
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    let body = graph_error(resp, StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("session"),
        "{body}"
    );
    app.expect_refusal("graph_user_list", "session_revoked")
        .await;

    // Bob's session is his own: it still works.
    let bob = app.idp.sign_in("bob@example.com").await;
    let bobs = app
        .idp
        .graph_token(&bob, &entra("graph_user_list", None))
        .await;
    assert_eq!(
        app.get("/v1.0/users", Some(&bobs)).await.status(),
        StatusCode::OK
    );
}
