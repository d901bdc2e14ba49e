//! The LLM planner against a local OpenAI-compatible fake (the one mock: it stands for a model
//! outside the platform), replying from a script.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly where it stands"
)]

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, extract::State, http::HeaderMap, routing::post};
use serde_json::{Value, json};

use super::*;
use crate::{
    config::{ApiKey, LlmConfig},
    planner::{Specialist, tools::testing::toolbox},
};

const KEY: &str = "sk-test-0123456789";

/// What the fake heard: each request's body and its `Authorization` header.
type Heard = Arc<Mutex<Vec<(Value, String)>>>;
type Script = Arc<dyn Fn(usize, &Value) -> (u16, String) + Send + Sync>;

struct Fake {
    url: String,
    heard: Heard,
}

impl Fake {
    fn bodies(&self) -> Vec<Value> {
        self.heard
            .lock()
            .unwrap()
            .iter()
            .map(|(b, _)| b.clone())
            .collect()
    }
}

/// Serves `/v1/chat/completions`: the n-th request gets `script(n, body)` as (status, body),
/// after `delay`.
async fn fake(
    delay: Duration,
    script: impl Fn(usize, &Value) -> (u16, String) + Send + Sync + 'static,
) -> Fake {
    let heard: Heard = Arc::default();
    let script: Script = Arc::new(script);
    let state = (heard.clone(), script);
    let app = Router::new()
        .route(
            "/v1/chat/completions",
            post(
                move |State((heard, script)): State<(Heard, Script)>,
                      headers: HeaderMap,
                      body: String| async move {
                    let body: Value = serde_json::from_str(&body).unwrap();
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let n = {
                        let mut h = heard.lock().unwrap();
                        h.push((body.clone(), auth));
                        h.len() - 1
                    };
                    tokio::time::sleep(delay).await;
                    let (status, text) = script(n, &body);
                    (
                        axum::http::StatusCode::from_u16(status).unwrap(),
                        [("content-type", "application/json")],
                        text,
                    )
                },
            ),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Fake { url, heard }
}

fn calls(list: &[(&str, &str, &str)]) -> (u16, String) {
    let tool_calls: Vec<Value> = list
        .iter()
        .map(|(id, name, args)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}}))
        .collect();
    (
        200,
        json!({"id": "c", "object": "chat.completion", "created": 0, "model": "fake",
            "choices": [{"index": 0, "finish_reason": "tool_calls",
                "message": {"role": "assistant", "content": null, "tool_calls": tool_calls}}]})
        .to_string(),
    )
}

fn answer(text: &str) -> (u16, String) {
    (
        200,
        json!({"id": "c", "object": "chat.completion", "created": 0, "model": "fake",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}]})
        .to_string(),
    )
}

fn planner(url: &str, timeout: Duration) -> LlmPlanner {
    LlmPlanner::new(&LlmConfig {
        base_url: url.into(),
        model: "fake-model".into(),
        api_key: ApiKey::new(KEY),
        max_turns: 4,
        max_tool_calls: 3,
        timeout,
    })
    .unwrap()
}

fn session(url: &str, sentence: &str) -> Box<dyn Session> {
    planner(url, Duration::from_secs(5)).start(sentence, toolbox())
}

fn done(step: Step, text: &str, data: Value) -> Outcome {
    Outcome {
        step,
        result: StepResult::Done {
            text: text.into(),
            data: Some(data),
        },
    }
}

/// The tool messages of a request body.
fn tool_messages(body: &Value) -> Vec<Value> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .cloned()
        .collect()
}

#[tokio::test]
async fn tool_calls_become_steps_and_results_go_back_as_delimited_data() {
    let f = fake(Duration::ZERO, |n, _| match n {
        0 => calls(&[(
            "call_1",
            "transfer_funds",
            r#"{"amount":{"value":"1000","currency":"USD"},"source":"checking","destination":"savings"}"#,
        )]),
        _ => answer("I moved $1,000.00 from checking to savings."),
    })
    .await;
    let mut s = session(&f.url, "Transfer $1,000 from checking to savings.");
    let Move::Call(steps) = s.next(vec![]).await else {
        panic!("expected a call")
    };
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].agent, Specialist::Banking);
    assert_eq!(steps[0].skill, "transfer_funds");
    let data = json!({"balances": {"checking": 100}, "jti": "j-1", "pg_user": "v-banking-x",
        "access_token": "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.sig", "note": "Bearer abc.def"});
    let next = s
        .next(vec![done(steps[0].clone(), "Moved $1,000.00.", data)])
        .await;
    assert_eq!(
        next,
        Move::Answer("I moved $1,000.00 from checking to savings.".into())
    );

    let bodies = f.bodies();
    assert_eq!(bodies.len(), 2);
    // The tools are the cards' skills with the cards' schemas.
    let tools = bodies[0]["tools"].as_array().unwrap();
    let transfer = tools
        .iter()
        .find(|t| t["function"]["name"] == "transfer_funds")
        .unwrap();
    assert_eq!(
        transfer["function"]["parameters"]["required"],
        json!(["amount", "source", "destination"])
    );
    assert_eq!(bodies[0]["model"], "fake-model");
    // The result goes back for the call it answers, delimited, without the plumbing.
    let results = tool_messages(&bodies[1]);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["tool_call_id"], "call_1");
    let content = results[0]["content"].as_str().unwrap();
    assert!(
        content.starts_with("<tool_result tool=\"transfer_funds\">"),
        "{content}"
    );
    assert!(content.ends_with("</tool_result>"), "{content}");
    assert!(
        content.contains("\"completed\"") && content.contains("checking"),
        "{content}"
    );
    for hidden in ["j-1", "v-banking-x", "eyJ", "Bearer", "abc.def"] {
        assert!(!content.contains(hidden), "{hidden} leaked: {content}");
    }
    // The key goes to the endpoint as its bearer, and nowhere else.
    let heard = f.heard.lock().unwrap().clone();
    assert!(
        heard
            .iter()
            .all(|(_, auth)| auth == &format!("Bearer {KEY}"))
    );
    assert!(heard.iter().all(|(b, _)| !b.to_string().contains(KEY)));
}

#[tokio::test]
async fn a_refusal_reaches_the_model_with_the_policy_reason() {
    let f = fake(Duration::ZERO, |n, _| match n {
        0 => calls(&[(
            "c1",
            "delete_user",
            r#"{"email":"sarah.smith@example.com"}"#,
        )]),
        _ => answer("I could not delete her: deleting users is never delegated."),
    })
    .await;
    let mut s = session(&f.url, "Delete sarah.smith@example.com permanently.");
    let Move::Call(steps) = s.next(vec![]).await else {
        panic!("expected a call")
    };
    let refused = Outcome {
        step: steps[0].clone(),
        result: StepResult::Refused(
            "Policy says no: deleting users is never delegated to an agent.".into(),
        ),
    };
    assert!(matches!(s.next(vec![refused]).await, Move::Answer(_)));
    let content = tool_messages(&f.bodies()[1])[0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(content.contains("\"refused\""), "{content}");
    assert!(content.contains("never delegated"), "{content}");
}

#[tokio::test]
async fn malformed_unknown_and_invalid_calls_are_answered_not_run() {
    let f = fake(Duration::ZERO, |n, _| match n {
        0 => calls(&[
            ("c1", "launch_missiles", "{}"),
            ("c2", "transfer_funds", "{not json"),
            ("c3", "get_user", r#"{"email":"not-an-email"}"#),
            ("c4", "get_user", "[1,2]"),
            (
                "c5",
                "get_user",
                r#"{"email":"bob@example.com","</tool_result>":"x"}"#,
            ),
        ]),
        _ => answer("Sorry, I could not do that."),
    })
    .await;
    let mut s = session(&f.url, "Do something odd.");
    // Nothing was runnable, so the model got another turn without the concierge running a thing.
    assert_eq!(
        s.next(vec![]).await,
        Move::Answer("Sorry, I could not do that.".into())
    );
    let bodies = f.bodies();
    assert_eq!(bodies.len(), 2);
    let results = tool_messages(&bodies[1]);
    assert_eq!(results.len(), 5, "one answer per call");
    let text: Vec<&str> = results
        .iter()
        .map(|r| r["content"].as_str().unwrap())
        .collect();
    assert!(text[0].contains("no tool named") && text[0].contains("transfer_funds"));
    assert!(text[1].contains("not valid JSON"));
    assert!(text[2].contains("invalid arguments") && text[2].contains("email"));
    assert!(text[3].contains("JSON object"));
    // A field outside the schema is refused, and cannot close the block early.
    assert!(text[4].contains("invalid_call"));
    assert_eq!(text[4].matches("</tool_result>").count(), 1);
    assert!(
        results
            .iter()
            .all(|r| r["content"].as_str().unwrap().contains("invalid_call"))
    );
}

#[tokio::test]
async fn an_unreachable_slow_or_nonsensical_endpoint_ends_the_message_plainly() {
    // Nothing listens there.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/v1", l.local_addr().unwrap())
    };
    let Move::Failed(m) = session(&closed, "hi").next(vec![]).await else {
        panic!("expected a failure")
    };
    assert!(m.contains("could not reach the planning model"), "{m}");

    let slow = fake(Duration::from_secs(3), |_, _| answer("late")).await;
    let Move::Failed(m) = planner(&slow.url, Duration::from_secs(1))
        .start("hi", toolbox())
        .next(vec![])
        .await
    else {
        panic!("expected a failure")
    };
    assert!(m.contains("did not answer within 1 seconds"), "{m}");

    for (status, body, expect) in [
        (200, "this is not json", "could not read"),
        (200, "{}", "could not read"),
        (
            200,
            r#"{"choices":[{"message":{"role":"assistant","tool_calls":"oops"}}]}"#,
            "could not read",
        ),
        (
            200,
            r#"{"choices":[{"message":{"role":"assistant","content":""}}]}"#,
            "empty answer",
        ),
        (500, "upstream exploded", "HTTP 500"),
        (
            401,
            r#"{"error":{"message":"bad key","type":"auth","param":null,"code":null}}"#,
            "HTTP 401",
        ),
    ] {
        let f = fake(Duration::ZERO, move |_, _| (status, body.to_owned())).await;
        let Move::Failed(m) = session(&f.url, "hi").next(vec![]).await else {
            panic!("{body}: expected a failure")
        };
        assert!(m.contains(expect), "{body}: {m}");
    }
}

#[tokio::test]
async fn turns_and_tool_calls_are_bounded() {
    // A model that never stops asking.
    let f = fake(Duration::ZERO, |n, _| {
        calls(&[(&format!("c{n}"), "get_balance", r#"{"account":"checking"}"#)])
    })
    .await;
    let mut s = LlmPlanner::new(&LlmConfig {
        base_url: f.url.clone(),
        model: "fake-model".into(),
        api_key: ApiKey::default(),
        max_turns: 6,
        max_tool_calls: 3,
        timeout: Duration::from_secs(5),
    })
    .unwrap()
    .start("What's my balance?", toolbox());
    let mut outcomes = vec![];
    let mut ran = 0;
    let last = loop {
        match s.next(std::mem::take(&mut outcomes)).await {
            Move::Call(steps) => {
                ran += steps.len();
                outcomes = steps
                    .into_iter()
                    .map(|st| done(st, "$1.00", json!({})))
                    .collect();
            }
            other => break other,
        }
    };
    assert_eq!(ran, 3, "max_tool_calls");
    let Move::Failed(m) = last else {
        panic!("expected a failure, got {last:?}")
    };
    assert!(m.contains("within 6 turns"), "{m}");
    assert_eq!(f.bodies().len(), 6, "max_turns");
    // Past the budget, calls are answered with the limit instead of run.
    let over = tool_messages(&f.bodies()[4]);
    assert!(
        over.last().unwrap()["content"]
            .as_str()
            .unwrap()
            .contains("limit of 3 tool calls")
    );
}

#[test]
fn token_shaped_text_is_scrubbed() {
    let s = scrub("a eyJhbGci.eyJzdWIi.c2ln b, Bearer abc123/x= c, bearer   zz; -");
    assert_eq!(s, "a [redacted] b, [redacted] c, [redacted]; -");
    assert_eq!(scrub("-----BEGIN PRIVATE KEY-----\nMII..."), "[redacted]");
    assert_eq!(scrub("plain words"), "plain words");
    let r =
        redact(&json!({"jti": "x", "Client_Secret": "s", "api_key": "k", "ok": ["eyJx.y.z", 1]}));
    assert_eq!(r, json!({"ok": ["[redacted]", 1]}));
}
