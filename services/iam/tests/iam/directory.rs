//! Onboarding (S3's iam leg) and reads: a tier-2 create approved once on the phone, then tier-1
//! reads that find her, and the trail that joins the agent's record to the directory's by `jti`.

use kit::a2a::TaskState;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn creating_sarah_waits_for_one_approval_then_get_user_finds_her() {
    let app = spawn_app().await;
    let alice = app.sign_in(ALICE).await;

    let (t1, task) = app
        .call(
            &alice,
            "create_user",
            json!({"email": SARAH, "display_name": "Sarah Smith"}),
        )
        .await;
    assert_eq!(
        claims_of(&t1).chain_names(),
        vec!["concierge".to_owned(), ALICE.to_owned()]
    );
    assert_eq!(task.status.state, TaskState::AuthRequired);
    assert!(
        said(&task).contains(&format!("Create user {SARAH}")),
        "{}",
        said(&task)
    );
    assert_eq!(
        app.stored_user(SARAH).await,
        None,
        "nothing happens before the user decides"
    );
    app.decide(&alice, &task, true).await;
    let done = app.finish(&t1, &task).await;
    assert_eq!(done.status.state, TaskState::Completed, "{}", said(&done));
    assert_eq!(said(&done), format!("Created {SARAH} in Verify."));
    assert_eq!(result_data(&done)["userName"], SARAH);
    assert_eq!(
        app.stored_user(SARAH).await,
        Some((true, "Sarah Smith".into(), vec![]))
    );

    // The agent's record of the SCIM request and the directory's own record share the T2 jti.
    let calls = app.events("scim_call").await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    let call = &calls[0];
    assert_eq!(call["outcome"], "allowed");
    assert_eq!(call["tool"], "create_user");
    assert_eq!(call["actor_chain"], json!(["iam", "concierge", ALICE]));
    assert!(call["duration_ms"].as_f64().is_some(), "{call}");
    assert!(call["approval_id"].is_string(), "{call}");
    let jti = call["jti"].as_str().unwrap();
    let exchanges = app.events("token_exchange").await;
    assert_eq!(exchanges[0]["outcome"], "approved");
    assert_eq!(exchanges[0]["jti"], jti);
    let idp = app.idp_events(jti).await;
    assert!(
        idp.iter()
            .any(|e| e["type"] == "scim_create_user" && e["outcome"] == "allowed"),
        "{idp:?}"
    );

    // Tier 1: no approval; she is there.
    let (t1, task) = app.call(&alice, "get_user", json!({"email": SARAH})).await;
    let done = app.finish(&t1, &task).await;
    assert_eq!(done.status.state, TaskState::Completed, "{}", said(&done));
    assert_eq!(
        said(&done),
        format!("{SARAH} is in Verify: Sarah Smith, active, in no group.")
    );
    assert_eq!(result_data(&done)["userName"], SARAH);

    let (t1, task) = app.call(&alice, "list_users", json!({})).await;
    let done = app.finish(&t1, &task).await;
    assert_eq!(done.status.state, TaskState::Completed, "{}", said(&done));
    for who in [ALICE, BOB, SARAH] {
        assert!(said(&done).contains(who), "{}", said(&done));
    }
}

#[tokio::test]
async fn a_create_without_a_display_name_gets_one_from_the_address() {
    let app = spawn_app().await;
    let alice = app.sign_in(ALICE).await;
    let (t1, task) = app
        .call(&alice, "create_user", json!({"email": SARAH}))
        .await;
    app.decide(&alice, &task, true).await;
    let done = app.finish(&t1, &task).await;
    assert_eq!(done.status.state, TaskState::Completed, "{}", said(&done));
    assert_eq!(
        app.stored_user(SARAH).await,
        Some((true, "Sarah Smith".into(), vec![]))
    );
    // The session's write approval is remembered (tier 2): a second create asks nobody, and
    // creating her again is refused by the directory, in its words.
    let (t1, task) = app
        .call(&alice, "create_user", json!({"email": SARAH}))
        .await;
    let done = app.finish(&t1, &task).await;
    assert_eq!(done.status.state, TaskState::Rejected, "{}", said(&done));
    assert!(
        said(&done).starts_with("Verify refused:"),
        "{}",
        said(&done)
    );
    assert!(said(&done).contains("exists"), "{}", said(&done));
    assert_eq!(app.events("approval_wait").await.len(), 1);
    let refused = app.events("scim_call").await;
    assert_eq!(refused.last().unwrap()["outcome"], "denied");
}

#[tokio::test]
async fn a_user_who_is_not_there_is_reported_as_such() {
    let app = spawn_app().await;
    let alice = app.sign_in(ALICE).await;
    let (t1, task) = app.call(&alice, "get_user", json!({"email": SARAH})).await;
    let done = app.finish(&t1, &task).await;
    assert_eq!(done.status.state, TaskState::Completed, "{}", said(&done));
    assert_eq!(said(&done), format!("There is no user {SARAH} in Verify."));
    assert_eq!(result_data(&done)["found"], false);
}

#[tokio::test]
async fn adding_bob_to_traders_is_a_write_approved_on_the_phone() {
    let app = spawn_app().await;
    let alice = app.sign_in(ALICE).await;
    let (t1, task) = app
        .call(
            &alice,
            "add_user_to_group",
            json!({"email": BOB, "group": "traders"}),
        )
        .await;
    assert_eq!(task.status.state, TaskState::AuthRequired);
    app.decide(&alice, &task, true).await;
    let done = app.finish(&t1, &task).await;
    assert_eq!(done.status.state, TaskState::Completed, "{}", said(&done));
    assert_eq!(
        said(&done),
        format!("Added {BOB} to the group traders in Verify.")
    );
    assert_eq!(
        app.stored_user(BOB).await.unwrap().2,
        vec!["traders".to_owned()]
    );
}
