//! What is refused, and by whom: tier 4 at the token endpoint before the agent exists in the
//! conversation (S2), a caller without a token at the agent's door, authority that would widen
//! at hop 2, and arguments that are not the action's fields.

use kit::{a2a::TaskState, exchange::ExchangeError};
use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn deleting_a_user_or_granting_admin_never_gets_a_token() {
    let app = spawn_app().await;
    let alice = app.sign_in(ALICE).await;
    let before = app.stored_user(BOB).await;
    for (action, reason) in [
        (
            "delete_user",
            "Deleting a user is irreversible and is never delegated to an agent",
        ),
        (
            "grant_admin_role",
            "Granting the admin role is never delegated to an agent",
        ),
    ] {
        match app.hop1(&alice, &iam(action, json!({"email": BOB}))).await {
            Err(ExchangeError::Refused { error, description }) => {
                assert_eq!(error, "access_denied", "{description}");
                assert!(
                    description.contains(reason),
                    "the idp's refusal names the policy's reason: {description}"
                );
            }
            other => panic!("{action} must be refused at hop 1, got {other:?}"),
        }
    }
    // The agent was never called, and the directory never touched.
    assert!(app.events("token_exchange").await.is_empty());
    assert!(app.events("scim_call").await.is_empty());
    assert_eq!(app.stored_user(BOB).await, before);
}

#[tokio::test]
async fn a_call_without_a_token_is_refused_at_the_door() {
    let app = spawn_app().await;
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message":
        {"messageId": "m1", "role": "ROLE_USER", "parts": [{"data": {"skill": "list_users", "arguments": {}}}]}}});
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
    // The card is public.
    let card = app.a2a.card(&app.url).await.unwrap();
    assert_eq!(card.jsonrpc_url(), Some(app.endpoint.as_str()));
    assert_eq!(card.skills.len(), 8);
}

#[tokio::test]
async fn arguments_wider_than_t1_are_refused_by_the_idp_at_hop_two() {
    let app = spawn_app().await;
    let alice = app.sign_in(ALICE).await;
    let t1 = app
        .hop1(&alice, &iam("get_user", json!({"email": BOB})))
        .await
        .unwrap();
    let task = app.send(&t1, "get_user", json!({"email": ALICE})).await;
    let done = app.finish(&t1, &task).await;
    assert_eq!(done.status.state, TaskState::Rejected, "{}", said(&done));
    assert!(
        said(&done).starts_with("The identity provider refused:"),
        "{}",
        said(&done)
    );
    assert!(app.events("scim_call").await.is_empty());
    assert_eq!(app.events("token_exchange").await[0]["outcome"], "denied");
}

#[tokio::test]
async fn arguments_that_are_not_the_action_s_fields_are_rejected() {
    let app = spawn_app().await;
    let alice = app.sign_in(ALICE).await;
    let t1 = app
        .hop1(&alice, &iam("get_user", json!({"email": BOB})))
        .await
        .unwrap();
    let task = app
        .send(&t1, "get_user", json!({"email": BOB, "group": "admins"}))
        .await;
    let done = app.finish(&t1, &task).await;
    assert_eq!(done.status.state, TaskState::Rejected);
    assert_eq!(
        said(&done),
        "I cannot carry out that request: get_user takes no argument group (it takes: email)."
    );
    let refused = app.events("request_refused").await;
    assert!(
        refused[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("invalid_arguments"),
        "{}",
        refused[0]
    );
    assert!(
        app.events("token_exchange").await.is_empty(),
        "nothing was asked of the idp"
    );
}
