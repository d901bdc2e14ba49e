//! S3: onboarding across three systems — four specialist calls, each with its own two hops and
//! its own `act` chain; one approval for the session's first write, the rest remembered.

use e2e::Platform;
use kit::a2a::TaskState;

#[tokio::test]
async fn s3_onboard_across_three_systems() {
    let p = Platform::start().await;
    let alice = p.sign_in("alice@example.com").await;
    let sarah = "sarah.smith@example.com";
    let before = p.balances(sarah).await;

    let mut conv = p.ask(&alice, "Onboard sarah.smith@example.com across Verify and Entra, open her a trading account, and transfer $50 from her checking into it.").await;
    conv.wait_for(TaskState::AuthRequired).await;
    let approval = p.approve_next(&alice).await;
    assert_eq!(approval["tier"], 2);
    assert_eq!(approval["summary"], "Create user sarah.smith@example.com");
    let (state, text, data) = conv.finish().await;
    assert_eq!(state, TaskState::Completed, "{text}");
    let steps = data.expect("result data")["steps"]
        .as_array()
        .cloned()
        .unwrap();
    assert_eq!(steps.len(), 4, "{steps:?}");
    assert!(steps.iter().all(|s| s["state"] == "completed"), "{steps:?}");

    // One approval; the following tier-2 writes of the session were cached.
    assert!(p.pending_approvals(&alice).await.is_empty());
    let cached: Vec<_> = p
        .idp_events(None)
        .await
        .into_iter()
        .filter(|e| e["outcome"] == "hitl_cached")
        .collect();
    assert_eq!(
        cached.len(),
        3,
        "graph_user_create, open_account, transfer_funds: {cached:?}"
    );
    let chains: Vec<String> = cached
        .iter()
        .map(|e| e["actor_chain"][0].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(chains.contains(&"entra".to_owned()) && chains.contains(&"banking".to_owned()));

    // sarah exists in the idp's SCIM store and in the Graph store.
    assert_eq!(
        p.query("SELECT count(*) FROM idp.users WHERE email = $1", &[&sarah])
            .await[0]
            .get::<_, i64>(0),
        1
    );
    assert_eq!(
        p.query(
            "SELECT count(*) FROM graph.users WHERE lower(user_principal_name) = $1",
            &[&sarah]
        )
        .await[0]
            .get::<_, i64>(0),
        1
    );
    // She has a trading account with $50 more, taken from her checking.
    let after = p.balances(sarah).await;
    assert_eq!(after.get("trading"), Some(&5_000));
    assert_eq!(after["checking"], before["checking"] - 5_000);
    assert!(p.leftover_roles().await.is_empty());
}
