//! Property tests of A2A JSON-RPC parsing, the face every agent shows the network: arbitrary
//! bytes and envelopes sent to a real `kit::a2a::server` (over HTTP, behind a real guard) always get
//! one well-formed JSON-RPC answer, well-formed requests are served as sent, and the A2A types
//! round-trip through serde.

#![expect(
    clippy::unwrap_used,
    reason = "helpers of a test fail loudly where they stand, like the test"
)]

mod common;

use std::sync::{Arc, LazyLock};

use axum::{Json, Router, routing::get, routing::post};
use proptest::{prelude::*, sample::Index};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

use common::{listen, serve};
use kit::{
    a2a::{
        AgentCapabilities, AgentCard, AgentInterface, AgentSkill, Artifact, ListTasksRequest,
        Message, Part, RPC_PATH, Role, RpcError, SendMessageConfiguration, SendMessageRequest,
        SendMessageResponse, StreamResponse, Task, TaskArtifactUpdateEvent, TaskIdRequest,
        TaskState, TaskStatus, TaskStatusUpdateEvent, ToolCall, codes,
        server::{AgentError, Reply, Server, TaskHandle},
    },
    claims::{AccessClaims, Audience},
    guard::{Guard, IntrospectionAuth},
    jwks,
    jwt::SigningKey,
};

const AGENT: &str = "spiffe://demo.local/agent/echo";

/// Every method the server dispatches, and a few it does not.
const METHODS: &[&str] = &[
    "SendMessage",
    "SendStreamingMessage",
    "GetTask",
    "CancelTask",
    "ListTasks",
    "SubscribeToTask",
    "CreateTaskPushNotificationConfig",
    "GetTaskPushNotificationConfig",
    "ListTaskPushNotificationConfigs",
    "DeleteTaskPushNotificationConfig",
    "GetExtendedAgentCard",
    "message/send",
    "tasks/get",
    "",
];

const KNOWN_CODES: &[i64] = &[
    codes::PARSE_ERROR,
    codes::INVALID_REQUEST,
    codes::METHOD_NOT_FOUND,
    codes::INVALID_PARAMS,
    codes::INTERNAL,
    codes::TASK_NOT_FOUND,
    codes::TASK_NOT_CANCELABLE,
    codes::PUSH_NOT_SUPPORTED,
    codes::UNSUPPORTED_OPERATION,
    codes::CONTENT_TYPE_NOT_SUPPORTED,
    codes::VERSION_NOT_SUPPORTED,
];

// ---- the agent under test, its idp, and a caller with a good token -----------------------------

/// Echoes each tool call's arguments back as its result's data part.
struct Echo;

impl kit::a2a::server::Agent for Echo {
    fn card(&self, base_url: &str) -> AgentCard {
        AgentCard {
            name: "echo".into(),
            description: "echoes its arguments".into(),
            version: "1".into(),
            supported_interfaces: vec![AgentInterface {
                url: format!("{base_url}{RPC_PATH}"),
                protocol_binding: "JSONRPC".into(),
                protocol_version: "1.0".into(),
            }],
            provider: None,
            capabilities: AgentCapabilities::default(),
            security_schemes: Default::default(),
            security_requirements: vec![],
            default_input_modes: vec!["application/json".into()],
            default_output_modes: vec!["application/json".into()],
            skills: vec![AgentSkill {
                id: "echo".into(),
                name: "echo".into(),
                description: "echoes its arguments".into(),
                tags: vec![],
                examples: vec![],
            }],
        }
    }

    async fn run(&self, call: ToolCall, _task: TaskHandle) -> Result<Reply, AgentError> {
        Ok(Reply {
            text: "echoed".into(),
            data: Some(call.arguments),
        })
    }
}

struct Fixture {
    endpoint: String,
    token: String,
    http: reqwest::Client,
}

static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
});

/// An idp (JWKS, and an introspection endpoint that finds every token active) and the echo
/// agent behind a guard that trusts it, both on port 0.
static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let key = SigningKey::generate("idp").unwrap();
    let (idp_listener, issuer) = listen();
    let set = jwks::publish([&key]);
    let idp = Router::new()
        .route("/jwks", get(move || async move { Json(set) }))
        .route(
            "/introspect",
            post(|| async { Json(json!({"active": true})) }),
        );
    serve(&RT, idp_listener, idp);

    let http = reqwest::Client::new();
    let guard = Guard::new(
        http.clone(),
        &issuer,
        AGENT,
        IntrospectionAuth::Secret {
            client_id: "echo".into(),
            client_secret: "secret".into(),
        },
    );
    let (agent_listener, base) = listen();
    serve(
        &RT,
        agent_listener,
        Server::new(Arc::new(Echo), guard, &base).router(),
    );

    let now = kit::now_secs();
    let claims = AccessClaims {
        iss: issuer,
        sub: "alice".into(),
        aud: Audience::one(AGENT),
        exp: now + 3600,
        iat: now,
        jti: kit::random_id(12),
        sid: Some(kit::random_id(12)),
        client_id: None,
        scope: None,
        email: None,
        acr: None,
        auth_time: None,
        act: None,
        may_act: None,
        authorization_details: None,
        approval_id: None,
    };
    Fixture {
        endpoint: format!("{base}{RPC_PATH}"),
        token: key.sign(kit::claims::TYP_ACCESS, &claims).unwrap(),
        http,
    }
});

/// What came back for one POST to the JSON-RPC endpoint.
struct Answer {
    status: u16,
    event_stream: bool,
    www_authenticate: bool,
    body: Vec<u8>,
}

fn post_rpc(body: Vec<u8>, authorization: Option<String>) -> Answer {
    let fx = &*FIXTURE;
    RT.block_on(async {
        let mut req = fx
            .http
            .post(&fx.endpoint)
            .header("content-type", "application/json")
            .body(body);
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let event_stream =
            header("content-type").is_some_and(|c| c.starts_with("text/event-stream"));
        let www_authenticate = header("www-authenticate").is_some();
        let body = resp.bytes().await.unwrap().to_vec();
        Answer {
            status,
            event_stream,
            www_authenticate,
            body,
        }
    })
}

fn bearer() -> Option<String> {
    Some(format!("Bearer {}", FIXTURE.token))
}

/// Checks one JSON-RPC 2.0 response object answering `id`: exactly one of `result` and
/// `error`, an error with a known code. Returns the error code, if an error.
fn check_response(v: &Value, id: &Value) -> Result<Option<i64>, TestCaseError> {
    prop_assert_eq!(&v["jsonrpc"], "2.0");
    prop_assert_eq!(&v["id"], id);
    let (result, error) = (v.get("result"), v.get("error"));
    prop_assert!(result.is_some() != error.is_some(), "{v}");
    match error {
        Some(e) => {
            let code = e["code"].as_i64().unwrap();
            prop_assert!(KNOWN_CODES.contains(&code), "{code}");
            prop_assert!(e["message"].is_string());
            Ok(Some(code))
        }
        None => Ok(None),
    }
}

// ---- generators ------------------------------------------------------------------------------

/// Any JSON value without floats (whose text form is not exact in both directions).
fn json_value() -> impl Strategy<Value = Value> {
    common::json_tree(WORDS, KEYS, false)
}

const WORDS: &[&str] = &["2.0", "echo", "ROLE_USER", "TASK_STATE_WORKING", "text"];
const KEYS: &[&str] = &[
    "jsonrpc",
    "id",
    "method",
    "params",
    "message",
    "messageId",
    "role",
    "parts",
    "text",
    "data",
    "skill",
    "arguments",
    "configuration",
    "historyLength",
    "pageSize",
    "status",
    "contextId",
    "taskId",
    "metadata",
];

/// A ProtoJSON `Struct`: what `metadata` members carry.
fn json_object() -> impl Strategy<Value = Value> {
    common::json_object_of(KEYS, json_value())
}

fn text() -> impl Strategy<Value = String> {
    ".{0,24}"
}

fn opt<T: std::fmt::Debug>(s: impl Strategy<Value = T>) -> impl Strategy<Value = Option<T>> {
    prop::option::of(s)
}

/// A part with exactly one content member, as A2A 1.0 has it.
fn part() -> impl Strategy<Value = Part> {
    let content = prop_oneof![
        text().prop_map(|t| Part {
            text: Some(t),
            ..Part::default()
        }),
        // `data` is a non-null value: `"data": null` is a part without content.
        json_value()
            .prop_filter("non-null", |v| !v.is_null())
            .prop_map(|d| Part {
                data: Some(d),
                ..Part::default()
            }),
        text().prop_map(|u| Part {
            url: Some(u),
            ..Part::default()
        }),
        "[A-Za-z0-9+/]{0,24}".prop_map(|r| Part {
            raw: Some(r),
            ..Part::default()
        }),
    ];
    (content, opt(text()), opt(text()), opt(json_object())).prop_map(
        |(p, media_type, filename, metadata)| Part {
            media_type,
            filename,
            metadata,
            ..p
        },
    )
}

fn role() -> impl Strategy<Value = Role> {
    prop::sample::select(vec![Role::User, Role::Agent, Role::Unspecified])
}

fn message() -> impl Strategy<Value = Message> {
    (
        text(),
        opt(text()),
        opt(text()),
        role(),
        prop::collection::vec(part(), 0..4),
        opt(json_object()),
    )
        .prop_map(
            |(message_id, context_id, task_id, role, parts, metadata)| Message {
                message_id,
                context_id,
                task_id,
                role,
                parts,
                metadata,
            },
        )
}

fn task_state() -> impl Strategy<Value = TaskState> {
    prop::sample::select(vec![
        TaskState::Unspecified,
        TaskState::Submitted,
        TaskState::Working,
        TaskState::Completed,
        TaskState::Failed,
        TaskState::Canceled,
        TaskState::InputRequired,
        TaskState::Rejected,
        TaskState::AuthRequired,
    ])
}

fn task_status() -> impl Strategy<Value = TaskStatus> {
    (task_state(), opt(message()), opt(text())).prop_map(|(state, message, timestamp)| TaskStatus {
        state,
        message,
        timestamp,
    })
}

fn artifact() -> impl Strategy<Value = Artifact> {
    (text(), opt(text()), prop::collection::vec(part(), 0..3)).prop_map(
        |(artifact_id, name, parts)| Artifact {
            artifact_id,
            name,
            parts,
        },
    )
}

fn task() -> impl Strategy<Value = Task> {
    (
        text(),
        text(),
        task_status(),
        prop::collection::vec(artifact(), 0..2),
        prop::collection::vec(message(), 0..2),
        opt(json_object()),
    )
        .prop_map(
            |(id, context_id, status, artifacts, history, metadata)| Task {
                id,
                context_id,
                status,
                artifacts,
                history,
                metadata,
            },
        )
}

fn stream_response() -> impl Strategy<Value = StreamResponse> {
    prop_oneof![
        task().prop_map(StreamResponse::Task),
        message().prop_map(StreamResponse::Message),
        (text(), text(), task_status(), opt(json_object())).prop_map(
            |(task_id, context_id, status, metadata)| {
                StreamResponse::StatusUpdate(TaskStatusUpdateEvent {
                    task_id,
                    context_id,
                    status,
                    metadata,
                })
            }
        ),
        (
            text(),
            text(),
            artifact(),
            opt(any::<bool>()),
            opt(any::<bool>())
        )
            .prop_map(|(task_id, context_id, artifact, append, last_chunk)| {
                StreamResponse::ArtifactUpdate(TaskArtifactUpdateEvent {
                    task_id,
                    context_id,
                    artifact,
                    append,
                    last_chunk,
                })
            }),
    ]
}

fn configuration() -> impl Strategy<Value = SendMessageConfiguration> {
    (
        opt(any::<bool>()),
        opt(any::<i32>()),
        prop::collection::vec(text(), 0..3),
    )
        .prop_map(
            |(return_immediately, history_length, accepted_output_modes)| {
                SendMessageConfiguration {
                    return_immediately,
                    history_length,
                    accepted_output_modes,
                }
            },
        )
}

fn send_message_request() -> impl Strategy<Value = SendMessageRequest> {
    (message(), opt(configuration()), opt(json_object())).prop_map(
        |(message, configuration, metadata)| SendMessageRequest {
            message,
            configuration,
            metadata,
        },
    )
}

fn list_tasks_request() -> impl Strategy<Value = ListTasksRequest> {
    (
        opt(text()),
        opt(task_state()),
        opt(any::<i32>()),
        opt(text()),
    )
        .prop_map(
            |(context_id, status, page_size, page_token)| ListTasksRequest {
                context_id,
                status,
                page_size,
                page_token,
            },
        )
}

fn task_id_request() -> impl Strategy<Value = TaskIdRequest> {
    (text(), opt(any::<i32>()))
        .prop_map(|(id, history_length)| TaskIdRequest { id, history_length })
}

fn rpc_error() -> impl Strategy<Value = RpcError> {
    (
        prop::sample::select(KNOWN_CODES.to_vec()),
        text(),
        opt(json_object()),
    )
        .prop_map(|(code, message, data)| {
            let e = RpcError::new(code, message);
            RpcError {
                data: data.or(e.data),
                ..e
            }
        })
}

/// Valid JSON-RPC ids, and ids JSON-RPC does not allow.
fn any_id() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => text().prop_map(Value::from),
        2 => any::<i64>().prop_map(Value::from),
        1 => Just(Value::Null),
        1 => json_value(),
    ]
}

/// Bodies an attacker might post: bytes, any JSON, and envelopes with random members.
fn any_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        (
            opt(prop_oneof![Just(json!("2.0")), json_value()]),
            opt(any_id()),
            opt(prop_oneof![
                prop::sample::select(METHODS.to_vec()).prop_map(Value::from),
                json_value()
            ]),
            opt(json_value()),
        )
            .prop_map(|(jsonrpc, id, method, params)| {
                let mut env = serde_json::Map::new();
                for (k, v) in [
                    ("jsonrpc", jsonrpc),
                    ("id", id),
                    ("method", method),
                    ("params", params),
                ] {
                    if let Some(v) = v {
                        env.insert(k.into(), v);
                    }
                }
                Value::Object(env).to_string().into_bytes()
            }),
    ]
}

// ---- helpers ---------------------------------------------------------------------------------

/// `v` with one node replaced by `new`.
fn replace_node(mut v: Value, at: Index, new: Value) -> Value {
    let mut all = vec![];
    common::pointers(&v, String::new(), &mut all);
    if let Some(node) = v.pointer_mut(&all[at.index(all.len())]) {
        *node = new;
    }
    v
}

/// Serializing then deserializing gives back the same value, through text and through `Value`.
fn round_trips<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    t: &T,
) -> Result<(), TestCaseError> {
    let text = serde_json::to_string(t).unwrap();
    prop_assert_eq!(&serde_json::from_str::<T>(&text).unwrap(), t, "{}", text);
    prop_assert_eq!(
        &serde_json::from_value::<T>(serde_json::to_value(t).unwrap()).unwrap(),
        t
    );
    Ok(())
}

/// Reading `v` as `T` never panics, and whatever is read is re-emitted as something read back
/// identically.
fn reads_stably<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    v: &Value,
) -> Result<Option<T>, TestCaseError> {
    match serde_json::from_value::<T>(v.clone()) {
        Ok(t) => {
            round_trips(&t)?;
            Ok(Some(t))
        }
        Err(_) => Ok(None),
    }
}

fn reads_every_type(v: &Value) -> Result<(), TestCaseError> {
    if let Some(m) = reads_stably::<Message>(v)? {
        let _ = (m.text(), m.data());
        // A call is only ever read from a data part that is an object naming its skill.
        if let Some(call) = m.find_tool_call() {
            let named = json!(call.skill);
            prop_assert!(
                m.parts
                    .iter()
                    .filter_map(|p| p.data.as_ref())
                    .any(|d| d.get("skill") == Some(&named))
            );
        }
    }
    reads_stably::<SendMessageRequest>(v)?;
    reads_stably::<TaskIdRequest>(v)?;
    reads_stably::<ListTasksRequest>(v)?;
    reads_stably::<Task>(v)?;
    reads_stably::<StreamResponse>(v)?;
    reads_stably::<SendMessageResponse>(v)?;
    reads_stably::<AgentCard>(v)?;
    reads_stably::<RpcError>(v)?;
    reads_stably::<ToolCall>(v)?;
    Ok(())
}

// ---- properties ------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Without a good token, any body gets exactly the JSON-RPC answer the rules give: a parse
    /// error for what is not JSON, an invalid request for what is not a 2.0 request (with a null
    /// id when the id is not a string, number or null), and 401 with a challenge otherwise.
    /// Nothing is dispatched and nothing panics.
    #[test]
    fn any_body_without_a_good_token_is_refused_by_the_rules(
        body in any_body(),
        authorization in opt(prop_oneof![
            "[\t -~é€]{0,40}",
            "[A-Za-z0-9_.-]{0,80}".prop_map(|t| format!("Bearer {t}")),
        ]),
    ) {
        let answer = post_rpc(body.clone(), authorization);
        prop_assert!(!answer.event_stream);
        let v: Value = serde_json::from_slice(&answer.body).unwrap();
        let Ok(envelope) = serde_json::from_slice::<Value>(&body) else {
            prop_assert_eq!(answer.status, 200);
            prop_assert_eq!(check_response(&v, &Value::Null)?, Some(codes::PARSE_ERROR));
            return Ok(());
        };
        let id = envelope.get("id").cloned().unwrap_or(Value::Null);
        let id_ok = matches!(id, Value::String(_) | Value::Number(_) | Value::Null);
        let is_request = envelope.get("jsonrpc") == Some(&json!("2.0"))
            && envelope.get("method").is_some_and(Value::is_string);
        if !id_ok {
            prop_assert_eq!(answer.status, 200);
            prop_assert_eq!(check_response(&v, &Value::Null)?, Some(codes::INVALID_REQUEST));
        } else if !is_request {
            prop_assert_eq!(answer.status, 200);
            prop_assert_eq!(check_response(&v, &id)?, Some(codes::INVALID_REQUEST));
        } else {
            prop_assert_eq!(answer.status, 401);
            prop_assert!(answer.www_authenticate);
            prop_assert_eq!(check_response(&v, &id)?, Some(codes::INVALID_REQUEST));
        }
    }

    /// With a good token, any method with any params gets one JSON-RPC answer for its id: an
    /// unknown method is "method not found", params that do not fit are "invalid params", and
    /// nothing is a 5xx or a panic.
    #[test]
    fn any_call_with_a_good_token_gets_one_answer(
        id in prop_oneof![text().prop_map(Value::from), any::<i64>().prop_map(Value::from), Just(Value::Null)],
        method in prop_oneof![4 => prop::sample::select(METHODS.to_vec()).prop_map(str::to_owned), 1 => text()],
        params in opt(prop_oneof![
            json_value(),
            json_object(),
            (text(), opt(any::<i32>())).prop_map(|(id, n)| json!({"id": id, "historyLength": n})),
        ]),
    ) {
        let mut env = json!({"jsonrpc": "2.0", "id": id, "method": method});
        if let Some(p) = &params {
            env["params"] = p.clone();
        }
        let answer = post_rpc(env.to_string().into_bytes(), bearer());
        prop_assert_eq!(answer.status, 200);
        if answer.event_stream {
            prop_assert!(method == "SendStreamingMessage" || method == "SubscribeToTask");
            let text = String::from_utf8(answer.body).unwrap();
            for data in text.lines().filter_map(|l| l.strip_prefix("data:")) {
                let v: Value = serde_json::from_str(data.trim()).unwrap();
                check_response(&v, &id)?;
            }
            return Ok(());
        }
        let v: Value = serde_json::from_slice(&answer.body).unwrap();
        let code = check_response(&v, &id)?;
        if !METHODS[..11].contains(&method.as_str()) {
            prop_assert_eq!(code, Some(codes::METHOD_NOT_FOUND));
        }
        if method.ends_with("PushNotificationConfig") || method.ends_with("PushNotificationConfigs") {
            prop_assert_eq!(code, Some(codes::PUSH_NOT_SUPPORTED));
        }
        if let Some(c) = code {
            prop_assert!(c != codes::INTERNAL && c != codes::PARSE_ERROR, "{v}");
        }
    }

    /// A well-formed SendMessage carrying a tool call (`{"skill": ..., "arguments": {...}}`) is
    /// served as sent: the task keeps the message as it was written, and the tool sees the
    /// arguments as they were written.
    #[test]
    fn well_formed_messages_are_served_as_sent(
        id in text(),
        mut req in send_message_request(),
        arguments in json_object(),
        at in any::<Index>(),
    ) {
        req.message.role = Role::User;
        req.message.task_id = None;
        // Data parts that are not tool calls stay out of the way of the one that is.
        for p in &mut req.message.parts {
            if p.data.as_ref().is_some_and(|d| d.get("skill").is_some()) {
                p.data = Some(json!({"note": "not a call"}));
            }
        }
        let call = Part::data(json!({"skill": "echo", "arguments": arguments}));
        let i = at.index(req.message.parts.len() + 1);
        req.message.parts.insert(i, call);
        if let Some(c) = &mut req.configuration {
            c.return_immediately = Some(false);
        }
        let env = json!({"jsonrpc": "2.0", "id": id, "method": "SendMessage", "params": req});
        let answer = post_rpc(env.to_string().into_bytes(), bearer());
        prop_assert_eq!(answer.status, 200);
        let v: Value = serde_json::from_slice(&answer.body).unwrap();
        prop_assert_eq!(check_response(&v, &json!(id))?, None, "{}", v);
        let task: Task = serde_json::from_value(v["result"]["task"].clone()).unwrap();
        prop_assert_eq!(task.status.state, TaskState::Completed);
        let mut sent = req.message.clone();
        sent.task_id = Some(task.id.clone());
        sent.context_id = Some(req.message.context_id.clone().unwrap_or(task.context_id.clone()));
        prop_assert_eq!(&task.history[0], &sent);
        prop_assert_eq!(task.artifacts[0].parts[1].data.as_ref(), Some(&arguments));
    }

    /// The A2A types round-trip through serde, as text and as `Value`.
    #[test]
    fn types_round_trip(
        send in send_message_request(),
        get in task_id_request(),
        list in list_tasks_request(),
        event in stream_response(),
        error in rpc_error(),
    ) {
        round_trips(&send)?;
        round_trips(&get)?;
        round_trips(&list)?;
        round_trips(&event)?;
        round_trips(&error)?;
        round_trips(&SendMessageResponse::Message(send.message))?;
    }

    /// Any JSON, and any one-node edit of a well-formed request or event, read as any A2A type
    /// never panics, and what is read re-emits as something read back identically.
    #[test]
    fn arbitrary_json_reads_stably_as_every_type(
        v in json_value(),
        send in send_message_request(),
        event in stream_response(),
        at in any::<Index>(),
        new in json_value(),
    ) {
        reads_every_type(&v)?;
        reads_every_type(&replace_node(serde_json::to_value(&send).unwrap(), at, new.clone()))?;
        reads_every_type(&replace_node(serde_json::to_value(&event).unwrap(), at, new))?;
    }
}
