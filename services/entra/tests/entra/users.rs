//! Onboarding (S3's Entra leg): a tier-2 create approved on the phone, then tier-1 reads that
//! show her; the agent's record and Graph's row joined by the T2 `jti`.

use kit::a2a::TaskState;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn creating_sarah_waits_for_approval_then_get_and_list_show_her() {
    let app = spawn_app().await;
    let alice = app.sign_in(ALICE).await;

    let (t1, task) = app
        .call(
            &alice,
            "graph_user_create",
            json!({"email": SARAH, "display_name": "Sarah Smith"}),
        )
        .await;
    assert_eq!(
        claims_of(&t1).chain_names(),
        vec!["concierge".to_owned(), ALICE.to_owned()]
    );
    assert_eq!(task.status.state, TaskState::AuthRequired);
    assert!(
        said(&task).contains(&format!("Create Entra user {SARAH}")),
        "{}",
        said(&task)
    );
    assert!(
        app.stored_users().await.is_empty(),
        "nothing happens before the user decides"
    );
    app.decide(&alice, &task, true).await;
    let done = app.finish(&t1, &task).await;
    assert_eq!(done.status.state, TaskState::Completed, "{}", said(&done));
    assert_eq!(said(&done), format!("Created {SARAH} in Entra."));
    let created = result_data(&done);
    assert_eq!(created["userPrincipalName"], SARAH);
    assert_eq!(created["mailNickname"], "sarah.smith");
    assert_eq!(created["accountEnabled"], true);

    // One jti across three records: the agent's exchange and call, and Graph's row and event.
    let calls = app.events("graph_call").await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    let call = &calls[0];
    assert_eq!(call["outcome"], "allowed");
    assert_eq!(call["tool"], "graph_user_create");
    assert_eq!(call["actor_chain"], json!(["entra", "concierge", ALICE]));
    assert!(call["duration_ms"].as_f64().is_some(), "{call}");
    let jti = call["jti"].as_str().unwrap();
    assert_eq!(app.events("token_exchange").await[0]["jti"], jti);
    assert_eq!(
        app.stored_users().await,
        vec![(SARAH.to_owned(), "Sarah Smith".to_owned(), jti.to_owned())]
    );
    let graph = app.graph_events(jti).await;
    assert!(
        graph
            .iter()
            .any(|e| e["type"] == "graph_user_create" && e["outcome"] == "allowed"),
        "{graph:?}"
    );

    // Tier 1 reads: no approval.
    let (t1, task) = app
        .call(&alice, "graph_user_get", json!({"email": SARAH}))
        .await;
    let done = app.finish(&t1, &task).await;
    assert_eq!(done.status.state, TaskState::Completed, "{}", said(&done));
    assert_eq!(
        said(&done),
        format!("{SARAH} is in Entra: Sarah Smith, enabled.")
    );
    assert_eq!(result_data(&done)["id"], created["id"]);

    let (t1, task) = app.call(&alice, "graph_user_list", json!({})).await;
    let done = app.finish(&t1, &task).await;
    assert_eq!(done.status.state, TaskState::Completed, "{}", said(&done));
    assert_eq!(said(&done), format!("Entra has 1 user: {SARAH}."));
    assert_eq!(result_data(&done)["value"][0]["userPrincipalName"], SARAH);
    assert_eq!(
        app.events("approval_wait").await.len(),
        1,
        "reads never ask"
    );
}

#[tokio::test]
async fn a_user_who_is_not_there_is_reported_as_such() {
    let app = spawn_app().await;
    let alice = app.sign_in(ALICE).await;
    let (t1, task) = app
        .call(&alice, "graph_user_get", json!({"email": SARAH}))
        .await;
    let done = app.finish(&t1, &task).await;
    assert_eq!(done.status.state, TaskState::Completed, "{}", said(&done));
    assert_eq!(said(&done), format!("There is no user {SARAH} in Entra."));
    assert_eq!(result_data(&done)["found"], false);
}

#[tokio::test]
async fn a_denied_approval_rejects_the_task_and_creates_nobody() {
    let app = spawn_app().await;
    let alice = app.sign_in(ALICE).await;
    let (t1, task) = app
        .call(&alice, "graph_user_create", json!({"email": SARAH}))
        .await;
    app.decide(&alice, &task, false).await;
    let done = app.finish(&t1, &task).await;
    assert_eq!(done.status.state, TaskState::Rejected, "{}", said(&done));
    assert!(
        said(&done).starts_with("The identity provider refused:"),
        "{}",
        said(&done)
    );
    assert!(app.stored_users().await.is_empty());
    assert!(
        app.events("graph_call").await.is_empty(),
        "Graph was never called"
    );
}
