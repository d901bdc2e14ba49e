//! What is refused before anything runs: no token, a token for another agent, a skill the card
//! does not list.

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    harness::{ALICE, spawn_app, tool_call},
    idp::{IAM, banking_rar},
};

fn send(message: &kit::a2a::Message) -> serde_json::Value {
    json!({"jsonrpc": "2.0", "id": "1", "method": "SendMessage", "params": {"message": message, "configuration": {}}})
}

#[tokio::test]
async fn no_token_is_401_with_a_bearer_challenge() {
    let app = spawn_app().await;
    let body = send(&tool_call("balance", "get_balance", json!({})));
    let (status, challenge, reply) = app.raw_rpc(None, body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{reply}");
    assert!(challenge.unwrap().starts_with("Bearer "));
    let refused = app.events("request_refused").await;
    assert_eq!(
        refused[0]["reason"].as_str().unwrap().split(':').next(),
        Some("token_missing")
    );
}

#[tokio::test]
async fn a_token_addressed_to_another_agent_is_401() {
    let app = spawn_app().await;
    let alice = app.idp.sign_in(ALICE).await;
    let iam = json!({"type": kit::rar::IAM, "operationDetails": {"action": "list_users"}});
    let for_iam = app.idp.t1_for(&alice, IAM, &[iam]).await;
    let body = send(&tool_call("balance", "get_balance", json!({})));
    let (status, challenge, _) = app.raw_rpc(Some(&for_iam), body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.unwrap().contains("invalid_token"));
    let refused = app.events("request_refused").await;
    assert!(
        refused[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("audience_mismatch"),
        "{}",
        refused[0]
    );
}

#[tokio::test]
async fn an_unknown_skill_is_invalid_params_with_http_200() {
    let app = spawn_app().await;
    let alice = app.idp.sign_in(ALICE).await;
    let t1 = app
        .idp
        .t1(&alice, &banking_rar("get_balance", json!({})))
        .await;
    let body = send(&tool_call(
        "Fly me to the moon.",
        "launch_rocket",
        json!({}),
    ));
    let (status, _, reply) = app.raw_rpc(Some(&t1), body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply["error"]["code"], -32602, "{reply}");
    assert!(app.events("credential_issued").await.is_empty());
}

#[tokio::test]
async fn arguments_beyond_the_token_are_refused_by_the_idp() {
    // T1 allows the balance of checking; the tool call asks for savings: hop 2 would widen the
    // authority, so the idp refuses and the task is rejected with its reason.
    let app = spawn_app().await;
    let alice = app.idp.sign_in(ALICE).await;
    let t1 = app
        .idp
        .t1(
            &alice,
            &banking_rar("get_balance", json!({"account": "checking"})),
        )
        .await;
    let message = tool_call("And savings?", "get_balance", json!({"account": "savings"}));
    let kit::a2a::SendMessageResponse::Task(task) = app
        .a2a
        .send(&app.endpoint, &t1, &message, false)
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        task.status.state,
        kit::a2a::TaskState::Rejected,
        "{:?}",
        task.status
    );
    assert!(
        task.status
            .message
            .unwrap()
            .text()
            .starts_with("The identity provider refused")
    );
    assert!(app.events("credential_issued").await.is_empty());
}
