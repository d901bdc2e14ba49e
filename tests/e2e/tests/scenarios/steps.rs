//! Step-by-step runs (presenter mode's mechanism): the concierge pauses before each hop, shows
//! the artifact, and goes on only when told.

use e2e::Platform;
use kit::a2a::{Message, TaskState, ToolCall};
use serde_json::{Value, json};

#[tokio::test]
async fn a_step_by_step_run_pauses_before_each_hop() {
    let p = Platform::start().await;
    let alice = p.sign_in("alice@example.com").await;
    let call = ToolCall {
        skill: "assist".into(),
        arguments: json!({"text": "What's my checking balance?", "step_mode": true}),
    };
    let mut conv = p
        .ask_with(
            &alice,
            Message::tool_call("What's my checking balance?", &call),
        )
        .await;
    let task = conv.task_id().await;
    let url = format!("{}/steps/{task}", p.stack.urls.concierge);
    let mut hops = vec![];
    for expected in ["plan", "exchange", "dispatch"] {
        let view = loop {
            let v: Value = p
                .http
                .get(&url)
                .bearer_auth(&alice.access_token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if v["pending"].is_object() && !hops.contains(&v["pending"]["seq"]) {
                break v;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        assert_eq!(view["pending"]["hop"], expected, "{view}");
        hops.push(view["pending"]["seq"].clone());
        if expected == "exchange" {
            assert_eq!(
                view["pending"]["artifact"][0]["operationDetails"]["action"],
                "get_balance"
            );
        }
        if expected == "dispatch" {
            assert_eq!(
                view["pending"]["artifact"]["token"]["act"]["sub"],
                "spiffe://demo.local/agent/concierge"
            );
        }
        // Another user can neither see nor advance the run.
        let bob = p.sign_in("bob@example.com").await;
        assert_eq!(
            p.http
                .post(format!("{url}/next"))
                .bearer_auth(&bob.access_token)
                .send()
                .await
                .unwrap()
                .status(),
            404
        );
        assert_eq!(
            p.http
                .post(format!("{url}/next"))
                .bearer_auth(&alice.access_token)
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    let (state, text, _) = conv.finish().await;
    assert_eq!(state, TaskState::Completed, "{text}");
}
