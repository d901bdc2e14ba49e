//! S2: "Delete sarah.smith@example.com permanently." — denied by a tier-4 policy at the token
//! endpoint: no token, the iam agent never called, the SCIM store untouched.

use e2e::Platform;
use kit::a2a::TaskState;

#[tokio::test]
async fn s2_delete_is_blocked_by_policy() {
    let p = Platform::start().await;
    let alice = p.sign_in("alice@example.com").await;
    let users_before = p.query("SELECT count(*) FROM idp.users", &[]).await[0].get::<_, i64>(0);

    let mut conv = p
        .ask(&alice, "Delete sarah.smith@example.com permanently.")
        .await;
    let (state, text, _) = conv.finish().await;
    assert_eq!(state, TaskState::Rejected, "{text}");
    assert!(
        text.contains("never delegated"),
        "Charlie quotes the policy's reason: {text}"
    );

    let denial = p
        .idp_events(None)
        .await
        .into_iter()
        .find(|e| e["type"] == "token_exchange" && e["tool"] == "delete_user")
        .expect("the denial event");
    assert_eq!(denial["outcome"], "denied");
    assert_eq!(denial["tier"], 4);
    assert!(
        denial["reason"]
            .as_str()
            .unwrap()
            .starts_with("policy_denied")
    );
    assert!(denial["jti"].is_null(), "no token was minted");

    assert!(
        p.service_events("iam").await.is_empty(),
        "the iam agent was never called"
    );
    assert_eq!(
        p.query("SELECT count(*) FROM idp.users", &[]).await[0].get::<_, i64>(0),
        users_before
    );
}
