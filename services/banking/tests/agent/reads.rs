//! Tier-1 reads: no approval, a blocking `SendMessage`, and `GetTask` returning the same task.

use kit::a2a::{SendMessageResponse, TaskState};
use serde_json::json;

use crate::{
    harness::{ALICE, spawn_app, tool_call},
    idp::banking_rar,
};

#[tokio::test]
async fn get_balance_completes_without_approval_and_get_task_returns_the_same_task() {
    let app = spawn_app().await;
    let alice = app.idp.sign_in(ALICE).await;
    let args = json!({"account": "checking"});
    let t1 = app
        .idp
        .t1(&alice, &banking_rar("get_balance", args.clone()))
        .await;

    let message = tool_call("What is my checking balance?", "get_balance", args);
    let SendMessageResponse::Task(task) = app
        .a2a
        .send(&app.endpoint, &t1, &message, false)
        .await
        .unwrap()
    else {
        panic!("a task is expected")
    };
    assert_eq!(task.status.state, TaskState::Completed, "{:?}", task.status);
    assert_eq!(
        task.status.message.as_ref().unwrap().text(),
        "The balance of checking is $5,000.00."
    );
    let data = task.artifacts[0]
        .parts
        .iter()
        .find_map(|p| p.data.clone())
        .unwrap();
    assert_eq!(
        data["balances"].as_array().unwrap().len(),
        1,
        "the credential sees the one account: {data}"
    );
    let pg_user = data["pg_user"].as_str().unwrap();
    assert!(pg_user.starts_with("v-banking-reader-"), "{pg_user}");

    let got = app
        .a2a
        .get_task(&app.endpoint, &t1, &task.id)
        .await
        .unwrap();
    assert_eq!(got, task);

    assert!(app.events("approval_wait").await.is_empty());
    assert_eq!(app.events("token_exchange").await[0]["outcome"], "allowed");
    assert_eq!(app.events("lease_revoked").await.len(), 1);
    assert!(!app.role_exists(pg_user).await);
}

#[tokio::test]
async fn list_accounts_names_every_account_of_the_user() {
    let app = spawn_app().await;
    let alice = app.idp.sign_in(ALICE).await;
    let t1 = app
        .idp
        .t1(&alice, &banking_rar("list_accounts", json!({})))
        .await;
    let message = tool_call("Which accounts do I have?", "list_accounts", json!({}));
    let SendMessageResponse::Task(task) = app
        .a2a
        .send(&app.endpoint, &t1, &message, false)
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(task.status.state, TaskState::Completed, "{:?}", task.status);
    assert_eq!(
        task.status.message.as_ref().unwrap().text(),
        "alice@example.com has 2 accounts: checking $5,000.00, savings $10,000.00."
    );
}
