//! Sensitive operations (S4): deactivating a user and ending their sessions are approved every
//! single time; once done, the user's tokens are dead at the idp; a denial changes nothing.

use kit::a2a::TaskState;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn deactivating_bob_is_approved_every_time_and_ends_his_session() {
    let app = spawn_app().await;
    let bob = app.sign_in(BOB).await;
    assert!(app.active(&bob.access_token).await);
    let alice = app.sign_in(ALICE).await;

    let (t1, task) = app
        .call(&alice, "deactivate_user", json!({"email": BOB}))
        .await;
    assert_eq!(task.status.state, TaskState::AuthRequired);
    assert!(
        said(&task).contains(&format!("Deactivate user {BOB}")),
        "{}",
        said(&task)
    );
    app.decide(&alice, &task, true).await;
    let done = app.finish(&t1, &task).await;
    assert_eq!(done.status.state, TaskState::Completed, "{}", said(&done));
    assert_eq!(
        said(&done),
        format!("Deactivated {BOB} in Verify; every one of their sessions has ended.")
    );
    assert_eq!(result_data(&done)["active"], false);
    assert!(
        !app.active(&bob.access_token).await,
        "bob's session is dead"
    );
    assert!(!app.stored_user(BOB).await.unwrap().0);

    // Tier 3 is never remembered: the same request asks again.
    let (t1, task) = app
        .call(&alice, "deactivate_user", json!({"email": BOB}))
        .await;
    assert_eq!(
        task.status.state,
        TaskState::AuthRequired,
        "{}",
        said(&task)
    );
    app.decide(&alice, &task, true).await;
    assert_eq!(
        app.finish(&t1, &task).await.status.state,
        TaskState::Completed
    );
    let approvals: Vec<_> = app
        .events("token_exchange")
        .await
        .into_iter()
        .map(|e| e["approval_id"].clone())
        .collect();
    assert_eq!(approvals.len(), 2);
    assert_ne!(approvals[0], approvals[1], "two separate approvals");
}

#[tokio::test]
async fn revoking_bob_s_sessions_ends_them_and_leaves_him_active() {
    let app = spawn_app().await;
    let bob = app.sign_in(BOB).await;
    let alice = app.sign_in(ALICE).await;
    let (t1, task) = app
        .call(&alice, "revoke_user_sessions", json!({"email": BOB}))
        .await;
    assert_eq!(task.status.state, TaskState::AuthRequired);
    app.decide(&alice, &task, true).await;
    let done = app.finish(&t1, &task).await;
    assert_eq!(done.status.state, TaskState::Completed, "{}", said(&done));
    assert_eq!(
        said(&done),
        format!("Ended the one session of {BOB} in Verify.")
    );
    assert_eq!(result_data(&done)["revokedSessions"], 1);
    assert!(!app.active(&bob.access_token).await);
    assert!(
        app.active(&alice.access_token).await,
        "only bob's sessions end"
    );
    assert!(app.stored_user(BOB).await.unwrap().0, "bob stays active");
    let again = app.sign_in(BOB).await;
    assert!(
        app.active(&again.access_token).await,
        "and may sign in again"
    );
}

#[tokio::test]
async fn a_denied_approval_rejects_the_task_and_changes_nothing() {
    let app = spawn_app().await;
    let bob = app.sign_in(BOB).await;
    let alice = app.sign_in(ALICE).await;
    let before = app.stored_user(BOB).await;
    let (t1, task) = app
        .call(&alice, "deactivate_user", json!({"email": BOB}))
        .await;
    app.decide(&alice, &task, false).await;
    let done = app.finish(&t1, &task).await;
    assert_eq!(done.status.state, TaskState::Rejected, "{}", said(&done));
    assert!(
        said(&done).starts_with("The identity provider refused:"),
        "{}",
        said(&done)
    );
    assert_eq!(app.stored_user(BOB).await, before);
    assert!(app.active(&bob.access_token).await);
    assert!(
        app.events("scim_call").await.is_empty(),
        "the SCIM API was never called"
    );
    let exchanges = app.events("token_exchange").await;
    assert_eq!(exchanges.len(), 1);
    assert_eq!(exchanges[0]["outcome"], "denied");
}
