//! What is refused, and by whom: a caller without a token at the agent's door, and authority
//! that would widen at hop 2.

use kit::a2a::TaskState;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn a_call_without_a_token_is_refused_with_401() {
    let app = spawn_app().await;
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message":
        {"messageId": "m1", "role": "ROLE_USER", "parts": [{"data": {"skill": "graph_user_list", "arguments": {}}}]}}});
    let resp = app
        .http
        .post(&app.endpoint)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let answer: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(answer["id"], 1);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("a bearer token is required"),
        "{answer}"
    );
    let refused = app.events("request_refused").await;
    assert_eq!(refused.len(), 1);
    assert!(
        refused[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("token_missing"),
        "{}",
        refused[0]
    );
    // Graph itself answers the same to a caller without a token.
    let resp = app
        .http
        .get(format!("{}/v1.0/users", app.graph))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // The card is public.
    let card = app.a2a.card(&app.url).await.unwrap();
    assert_eq!(card.jsonrpc_url(), Some(app.endpoint.as_str()));
    assert_eq!(
        card.skills
            .iter()
            .map(|s| s.id.as_str())
            .collect::<Vec<_>>(),
        ["graph_user_list", "graph_user_get", "graph_user_create"]
    );
}

#[tokio::test]
async fn arguments_wider_than_t1_are_refused_by_the_idp_at_hop_two() {
    let app = spawn_app().await;
    let alice = app.sign_in(ALICE).await;
    let t1 = app
        .hop1(&alice, &entra("graph_user_get", json!({"email": SARAH})))
        .await
        .unwrap();
    let task = app
        .send(&t1, "graph_user_get", json!({"email": ALICE}))
        .await;
    let done = app.finish(&t1, &task).await;
    assert_eq!(done.status.state, TaskState::Rejected, "{}", said(&done));
    assert!(
        said(&done).starts_with("The identity provider refused:"),
        "{}",
        said(&done)
    );
    assert!(app.events("graph_call").await.is_empty());
    assert_eq!(app.events("token_exchange").await[0]["outcome"], "denied");
}
