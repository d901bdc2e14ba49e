//! S4: "Deactivate bob@example.com" twice in a row — two separate approvals, no caching.

use e2e::Platform;
use kit::a2a::TaskState;

#[tokio::test]
async fn s4_sensitive_operations_are_approved_every_time() {
    let p = Platform::start().await;
    let alice = p.sign_in("alice@example.com").await;
    let bob = p.sign_in("bob@example.com").await;
    let mut approvals = vec![];
    for _ in 0..2 {
        let mut conv = p.ask(&alice, "Deactivate bob@example.com").await;
        conv.wait_for(TaskState::AuthRequired).await;
        let a = p.approve_next(&alice).await;
        assert_eq!(a["tier"], 3);
        assert_eq!(a["summary"], "Deactivate user bob@example.com");
        approvals.push(a["id"].as_str().unwrap().to_owned());
        let (state, text, _) = conv.finish().await;
        assert_eq!(state, TaskState::Completed, "{text}");
    }
    assert_ne!(approvals[0], approvals[1], "two separate approvals");
    assert_eq!(
        p.idp_events(None)
            .await
            .iter()
            .filter(|e| e["outcome"] == "hitl_cached")
            .count(),
        0
    );
    // Deactivation ended bob's session.
    assert!(!p.introspect_active(&bob.access_token).await);
    let active: bool = p
        .query(
            "SELECT active FROM idp.users WHERE email = 'bob@example.com'",
            &[],
        )
        .await[0]
        .get(0);
    assert!(!active);
}
