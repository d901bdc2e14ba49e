//! The LLM planner on the real stack: the concierge started with `LLM_*` pointing at a local
//! OpenAI-compatible fake that replies with scripted tool calls (the one mock: it stands for a
//! model outside the platform). The model decides; the tokens, the approvals and every
//! authorization decision stay where they are, and the model never sees a secret.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, extract::State, routing::post};
use e2e::{Platform, User};
use kit::a2a::TaskState;
use serde_json::{Value, json};
use stack::launch::LlmEndpoint;

const MODEL: &str = "fake-model";
const KEY: &str = "sk-fake-llm-key-0123456789";

/// The fake's reply to one request: after a delay, a status and a body.
type Reply = (Duration, u16, String);
type Script = Arc<dyn Fn(&Value) -> Reply + Send + Sync>;

/// A local stand-in for a hosted model; it keeps every request body it received.
struct FakeModel {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl FakeModel {
    async fn start(script: impl Fn(&Value) -> Reply + Send + Sync + 'static) -> Self {
        let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
        let script: Script = Arc::new(script);
        let app = Router::new()
            .route(
                "/v1/chat/completions",
                post(
                    |State((bodies, script)): State<(Arc<Mutex<Vec<Value>>>, Script)>,
                     body: String| async move {
                        let body: Value = serde_json::from_str(&body).expect("a JSON request");
                        bodies.lock().unwrap().push(body.clone());
                        let (delay, status, text) = script(&body);
                        tokio::time::sleep(delay).await;
                        (
                            axum::http::StatusCode::from_u16(status).unwrap(),
                            [("content-type", "application/json")],
                            text,
                        )
                    },
                ),
            )
            .with_state((bodies.clone(), script));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, bodies }
    }

    fn endpoint(&self, timeout_secs: Option<u64>) -> LlmEndpoint {
        LlmEndpoint {
            base_url: self.url.clone(),
            model: MODEL.into(),
            api_key: KEY.into(),
            timeout_secs,
        }
    }

    fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }
}

/// A chat completion asking for these tool calls (name, arguments as the model wrote them).
fn calls(list: &[(&str, &str)]) -> Reply {
    let tool_calls: Vec<Value> = list
        .iter()
        .enumerate()
        .map(|(i, (name, args))| json!({"id": format!("call_{}_{i}", kit::random_id(4)), "type": "function", "function": {"name": name, "arguments": args}}))
        .collect();
    (
        Duration::ZERO,
        200,
        json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": MODEL,
            "choices": [{"index": 0, "finish_reason": "tool_calls",
                "message": {"role": "assistant", "content": null, "tool_calls": tool_calls}}]})
        .to_string(),
    )
}

/// A chat completion answering in words.
fn say(text: &str) -> Reply {
    (
        Duration::ZERO,
        200,
        json!({"id": "chatcmpl-2", "object": "chat.completion", "created": 0, "model": MODEL,
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}]})
        .to_string(),
    )
}

/// The user's sentence in a request.
fn sentence(body: &Value) -> String {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// The tool results in a request, parsed from between their `<tool_result>` markers.
fn results(body: &Value) -> Vec<Value> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| {
            let c = m["content"].as_str().unwrap();
            assert!(
                c.starts_with("<tool_result tool=") && c.ends_with("</tool_result>"),
                "a delimited tool result: {c}"
            );
            let inner = c.split_once('\n').unwrap().1.rsplit_once('\n').unwrap().0;
            serde_json::from_str(inner).expect("the tool result is JSON")
        })
        .collect()
}

/// Nothing the model received carries a token, a key or a client secret.
fn assert_no_secrets(p: &Platform, users: &[&User], bodies: &[Value]) {
    assert!(!bodies.is_empty());
    let all: String = bodies.iter().map(Value::to_string).collect();
    let mut secrets: Vec<String> = vec![
        "eyJ".into(),
        "Bearer".into(),
        "bearer ".into(),
        "PRIVATE KEY".into(),
        "-----BEGIN".into(),
        KEY.into(),
        p.stack.admin_token.clone(),
    ];
    // Every client secret of the tenant.
    let clients =
        std::fs::read_to_string(e2e::workspace_root().join("infra/clients.toml")).unwrap();
    secrets.extend(
        clients
            .lines()
            .filter_map(|l| l.trim().strip_prefix("secret = "))
            .map(|s| s.trim_matches('"').to_owned()),
    );
    for u in users {
        secrets.push(u.access_token.clone());
        secrets.push(u.device_token.clone());
    }
    // Key material: every line of every key file, every value of every JWK.
    for entry in std::fs::read_dir(&p.stack.keys_dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        secrets.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| l.len() >= 16 && !l.starts_with("-----"))
                .map(str::to_owned),
        );
        if let Ok(Value::Object(jwk)) = serde_json::from_str::<Value>(&text) {
            secrets.extend(
                jwk.values()
                    .filter_map(Value::as_str)
                    .filter(|v| v.len() >= 16)
                    .map(str::to_owned),
            );
        }
    }
    assert!(secrets.len() > 10, "the secrets to look for: {secrets:?}");
    for s in &secrets {
        assert!(!all.contains(s.as_str()), "the model received {s:?}");
    }
}

#[tokio::test]
async fn s1_transfer_through_the_llm_planner() {
    let model = FakeModel::start(|body| {
        if results(body).is_empty() {
            calls(&[(
                "transfer_funds",
                r#"{"amount":{"value":"1000.00","currency":"USD"},"source":"checking","destination":"savings"}"#,
            )])
        } else {
            say("Done: I moved $1,000.00 from your checking to your savings.")
        }
    })
    .await;
    let p = Platform::start_with_llm(model.endpoint(None)).await;

    // The concierge says which planner decides.
    let card: Value = p
        .http
        .get(format!(
            "{}/.well-known/agent-card.json",
            p.stack.urls.concierge
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        card["description"].as_str().unwrap().contains(MODEL),
        "{card}"
    );
    assert!(
        card["skills"][0]["tags"]
            .as_array()
            .unwrap()
            .contains(&json!("planner:llm"))
    );

    let alice = p.sign_in("alice@example.com").await;
    let before = p.balances("alice@example.com").await;
    let mut conv = p
        .ask(&alice, "Transfer $1,000 from checking to savings.")
        .await;
    let waiting = conv.wait_for(TaskState::AuthRequired).await;
    assert!(
        waiting.contains("Transfer $1,000.00 from checking to savings"),
        "{waiting}"
    );
    // The same approval as with the deterministic planner: the phone, tier 3, the full chain.
    let approval = p.approve_next(&alice).await;
    assert_eq!(approval["tier"], 3);
    assert_eq!(
        approval["chain"],
        json!(["banking", "concierge", "alice@example.com"])
    );
    let (state, text, data) = conv.finish().await;
    assert_eq!(state, TaskState::Completed, "{text}");
    assert_eq!(
        text,
        "Done: I moved $1,000.00 from your checking to your savings."
    );
    let data = data.expect("result data");
    assert_eq!(data["planner"], "llm");
    assert_eq!(data["steps"][0]["skill"], "transfer_funds");
    assert_eq!(data["steps"][0]["state"], "completed");

    let after = p.balances("alice@example.com").await;
    assert_eq!(after["checking"], before["checking"] - 100_000);
    assert_eq!(after["savings"], before["savings"] + 100_000);
    let rows = p
        .query("SELECT audit_pg_user FROM banking.transactions", &[])
        .await;
    assert_eq!(rows.len(), 1);
    assert!(p.leftover_roles().await.is_empty());

    // What the model saw: the user's words, tools whose schemas come from the specialists'
    // cards, and the result as delimited data without the audit plumbing.
    let bodies = model.bodies();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0]["model"], MODEL);
    assert_eq!(
        sentence(&bodies[0]),
        "Transfer $1,000 from checking to savings."
    );
    let tools = bodies[0]["tools"].as_array().unwrap();
    let transfer = tools
        .iter()
        .find(|t| t["function"]["name"] == "transfer_funds")
        .expect("banking's skill is a tool");
    assert_eq!(
        transfer["function"]["parameters"]["required"],
        json!(["amount", "source", "destination"])
    );
    for skill in ["delete_user", "graph_user_create", "get_balance"] {
        assert!(
            tools.iter().any(|t| t["function"]["name"] == skill),
            "{skill} is offered"
        );
    }
    let r = results(&bodies[1]);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["status"], "completed");
    assert!(r[0]["data"]["balances"].is_array() || r[0]["data"]["balances"].is_object());
    let jti: String = rows[0].get::<_, String>(0);
    let seen = bodies[1].to_string();
    assert!(!seen.contains(&jti) && !seen.contains("jti"), "{seen}");
    assert_no_secrets(&p, &[&alice], &bodies);
}

#[tokio::test]
async fn s2_and_an_injected_delete_are_denied_at_the_token_endpoint() {
    let model = FakeModel::start(|body| {
        let done = results(body);
        match (sentence(body).as_str(), done.len()) {
            (s, 0) if s.starts_with("Delete") => {
                calls(&[("delete_user", r#"{"email":"sarah.smith@example.com"}"#)])
            }
            (s, _) if s.starts_with("Delete") => say(&format!(
                "I could not delete that user. {}",
                done[0]["reason"].as_str().unwrap_or("(no reason)")
            )),
            // A harmless question; the balance comes back carrying an injected instruction
            // (as a hijacked model would act on it), and the model obeys it.
            (_, 0) => calls(&[("get_balance", r#"{"account":"checking"}"#)]),
            (_, 1) => calls(&[("delete_user", r#"{"email":"bob@example.com"}"#)]),
            // Then it claims success: the concierge must still tell the truth.
            _ => say("Your checking balance is ready, and I removed bob@example.com as asked."),
        }
    })
    .await;
    let p = Platform::start_with_llm(model.endpoint(None)).await;
    let alice = p.sign_in("alice@example.com").await;
    let users_before = p.query("SELECT count(*) FROM idp.users", &[]).await[0].get::<_, i64>(0);

    // S2: the model asks for the delete; policy refuses it at the token endpoint, and the
    // model hears the reason and passes it on.
    let mut conv = p
        .ask(&alice, "Delete sarah.smith@example.com permanently.")
        .await;
    let (state, text, _) = conv.finish().await;
    assert_eq!(state, TaskState::Rejected, "{text}");
    assert!(text.contains("never delegated"), "{text}");
    let bodies = model.bodies();
    let refusal = &results(&bodies[1])[0];
    assert_eq!(refusal["status"], "refused");
    assert!(
        refusal["reason"]
            .as_str()
            .unwrap()
            .contains("never delegated"),
        "{refusal}"
    );

    // The injection: the model calls delete_user on its own; the same policy denies it.
    let mut conv = p.ask(&alice, "What's my checking balance?").await;
    let (state, text, data) = conv.finish().await;
    assert_eq!(state, TaskState::Completed, "the balance was read: {text}");
    assert!(
        text.contains("never delegated"),
        "the refusal is told whatever the model claims: {text}"
    );
    let steps = data.expect("result data")["steps"].clone();
    assert_eq!(steps[0]["skill"], "get_balance");
    assert_eq!(steps[0]["state"], "completed");
    assert_eq!(steps[1]["skill"], "delete_user");
    assert_eq!(steps[1]["state"], "rejected");

    let denials: Vec<Value> = p
        .idp_events(None)
        .await
        .into_iter()
        .filter(|e| e["type"] == "token_exchange" && e["tool"] == "delete_user")
        .collect();
    assert_eq!(denials.len(), 2, "{denials:?}");
    for d in &denials {
        assert_eq!(d["outcome"], "denied");
        assert_eq!(d["tier"], 4);
        assert!(d["jti"].is_null(), "no token was minted");
    }
    assert!(
        p.service_events("iam").await.is_empty(),
        "the iam agent was never called"
    );
    assert_eq!(
        p.query("SELECT count(*) FROM idp.users", &[]).await[0].get::<_, i64>(0),
        users_before
    );
    assert_no_secrets(&p, &[&alice], &model.bodies());
}

#[tokio::test]
async fn malformed_unknown_and_broken_model_replies_do_not_crash_the_concierge() {
    let model = FakeModel::start(|body| {
        let done = results(body);
        match sentence(body).as_str() {
            "Do something odd." if done.is_empty() => calls(&[
                ("launch_missiles", "{}"),
                ("transfer_funds", "{not json"),
                ("get_user", r#"{"email":"not-an-email"}"#),
                ("delete_user", r#"{"email":"bob@example.com","reason":"x"}"#),
            ]),
            "Do something odd." => say("Sorry, I could not work out how to do that."),
            "Answer with garbage." => (Duration::ZERO, 200, "<html>not json</html>".into()),
            "Answer with an error." => (Duration::ZERO, 500, "upstream exploded".into()),
            "Answer slowly." => (Duration::from_secs(5), 200, "{}".into()),
            _ if done.is_empty() => calls(&[("get_balance", r#"{"account":"checking"}"#)]),
            _ => say("Your checking balance is in the result."),
        }
    })
    .await;
    let p = Platform::start_with_llm(model.endpoint(Some(2))).await;
    let alice = p.sign_in("alice@example.com").await;

    // Unknown tool, malformed JSON, invalid arguments: each answered to the model, none run.
    let (state, text, data) = p.ask(&alice, "Do something odd.").await.finish().await;
    assert_eq!(state, TaskState::Completed, "{text}");
    assert_eq!(text, "Sorry, I could not work out how to do that.");
    assert_eq!(data.expect("result data")["steps"], json!([]));
    let bodies = model.bodies();
    let answered = results(&bodies[1]);
    assert_eq!(answered.len(), 4);
    assert!(
        answered.iter().all(|r| r["status"] == "invalid_call"),
        "{answered:?}"
    );
    assert!(
        answered[0]["error"]
            .as_str()
            .unwrap()
            .contains("no tool named")
    );
    assert!(
        answered[1]["error"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
    assert!(answered[2]["error"].as_str().unwrap().contains("email"));
    assert!(
        answered[3]["error"]
            .as_str()
            .unwrap()
            .contains("invalid arguments")
    );
    assert!(
        p.idp_events(None)
            .await
            .iter()
            .all(|e| e["type"] != "token_exchange"),
        "nothing invalid reached the token endpoint"
    );

    // A model that answers nonsense, fails, or is too slow: a plain message, a failed task.
    for (ask, expect) in [
        ("Answer with garbage.", "could not read"),
        ("Answer with an error.", "HTTP 500"),
        ("Answer slowly.", "did not answer within 2 seconds"),
    ] {
        let (state, text, _) = p.ask(&alice, ask).await.finish().await;
        assert_eq!(state, TaskState::Failed, "{ask}: {text}");
        assert!(text.contains(expect), "{ask}: {text}");
    }

    // And the concierge is still there for the next message.
    let (state, text, data) = p
        .ask(&alice, "What's my checking balance?")
        .await
        .finish()
        .await;
    assert_eq!(state, TaskState::Completed, "{text}");
    assert_eq!(data.expect("result data")["steps"][0]["state"], "completed");
    assert_no_secrets(&p, &[&alice], &model.bodies());
}
