//! The A2A server side. A specialist implements [`Agent`] (its card and one `run` per tool call)
//! and gets the rest: the agent card, JSON-RPC dispatch, bearer-token verification before
//! anything runs, the task lifecycle, blocking and streaming sends, `GetTask`, `CancelTask`,
//! `ListTasks`, `SubscribeToTask`, and A2A's error codes (HTTP 200 for JSON-RPC errors).
//!
//! While a task waits for the user's push approval, the agent calls
//! [`TaskHandle::auth_required`]: the task shows `TASK_STATE_AUTH_REQUIRED` with a message
//! naming what is awaited, and streams stay open until it resumes.

use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future,
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::{get, post},
};
use futures::StreamExt as _;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::{
    CARD_PATH, RPC_PATH, VERSION_HEADER,
    types::{
        AgentCard, Artifact, ListTasksRequest, ListTasksResponse, Message, Part, RpcError,
        SendMessageRequest, StreamResponse, Task, TaskArtifactUpdateEvent, TaskIdRequest,
        TaskState, TaskStatus, TaskStatusUpdateEvent, ToolCall, codes, rpc_error, rpc_result,
        timestamp,
    },
};
use crate::{
    claims::AccessClaims,
    guard::{Guard, GuardError},
};

/// The verified caller of a task: the delegated token and what it says.
#[derive(Debug, Clone)]
pub struct Principal {
    pub token: String,
    pub claims: AccessClaims,
}

/// What a finished tool call answers: words for people, data for agents.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub text: String,
    pub data: Option<Value>,
}

/// Why a tool call did not complete.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AgentError {
    /// Refused by someone with authority (policy, the user, the issuer): `TASK_STATE_REJECTED`.
    #[error("{0}")]
    Rejected(String),
    /// Something broke: `TASK_STATE_FAILED`.
    #[error("{0}")]
    Failed(String),
}

/// A specialist: its card, and what it does for one tool call.
pub trait Agent: Send + Sync + 'static {
    /// The card, given the URL this agent is reachable at.
    fn card(&self, base_url: &str) -> AgentCard;

    /// Runs one tool call for the verified principal in `task`.
    fn run(
        &self,
        call: ToolCall,
        task: TaskHandle,
    ) -> impl Future<Output = Result<Reply, AgentError>> + Send;

    /// The skill a plain-text message goes to (`{"text": ...}` as its arguments), for agents
    /// that talk to people (the supervisor). Specialists take tool calls only.
    fn text_skill(&self) -> Option<&'static str> {
        None
    }

    /// Hears every request refused before dispatch (no token, a bad one, a dead session), so the
    /// agent can record it as a security event.
    fn refused(&self, _error: &GuardError, _method: &str) -> impl Future<Output = ()> + Send {
        async {}
    }
}

struct Entry {
    task: Task,
    owner: String,
    session: Option<String>,
    updates: broadcast::Sender<StreamResponse>,
    abort: Option<tokio::task::AbortHandle>,
}

/// The agent's tasks, in memory (one process; a replica-safe store is a later step).
#[derive(Default)]
pub struct TaskStore {
    tasks: Mutex<HashMap<String, Entry>>,
    order: Mutex<Vec<String>>,
}

impl std::fmt::Debug for TaskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskStore").finish_non_exhaustive()
    }
}

const MAX_TASKS: usize = 2000;

impl TaskStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn create(
        &self,
        principal: &Principal,
        message: Message,
    ) -> (Task, broadcast::Receiver<StreamResponse>) {
        let id = uuid::Uuid::new_v4().to_string();
        let context_id = message
            .context_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let mut message = message;
        message.task_id = Some(id.clone());
        message.context_id = Some(context_id.clone());
        let task = Task {
            id: id.clone(),
            context_id,
            status: TaskStatus {
                state: TaskState::Submitted,
                message: None,
                timestamp: Some(timestamp()),
            },
            artifacts: vec![],
            history: vec![message],
            metadata: None,
        };
        let (tx, rx) = broadcast::channel(64);
        let mut tasks = self.lock();
        let mut order = self
            .order
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Forget the oldest finished tasks beyond the cap.
        while order.len() >= MAX_TASKS {
            let old = order.remove(0);
            tasks.remove(&old);
        }
        order.push(id.clone());
        tasks.insert(
            id,
            Entry {
                task: task.clone(),
                owner: principal.claims.sub.clone(),
                session: principal.claims.sid.clone(),
                updates: tx,
                abort: None,
            },
        );
        (task, rx)
    }

    fn set_status(&self, id: &str, state: TaskState, message: Option<Message>) {
        let mut tasks = self.lock();
        let Some(e) = tasks.get_mut(id) else { return };
        if e.task.status.state.is_terminal() {
            return;
        }
        let mut message = message;
        if let Some(m) = &mut message {
            m.task_id = Some(id.to_owned());
            m.context_id = Some(e.task.context_id.clone());
        }
        e.task.status = TaskStatus {
            state,
            message,
            timestamp: Some(timestamp()),
        };
        if state.is_terminal() {
            e.abort = None;
        }
        let _ = e
            .updates
            .send(StreamResponse::StatusUpdate(TaskStatusUpdateEvent {
                task_id: id.to_owned(),
                context_id: e.task.context_id.clone(),
                status: e.task.status.clone(),
                metadata: None,
            }));
    }

    fn add_artifact(&self, id: &str, artifact: Artifact) {
        let mut tasks = self.lock();
        let Some(e) = tasks.get_mut(id) else { return };
        e.task.artifacts.push(artifact.clone());
        let _ = e
            .updates
            .send(StreamResponse::ArtifactUpdate(TaskArtifactUpdateEvent {
                task_id: id.to_owned(),
                context_id: e.task.context_id.clone(),
                artifact,
                append: None,
                last_chunk: Some(true),
            }));
    }

    /// The task and a subscription to its updates, if `owner` owns it.
    fn subscribe(
        &self,
        id: &str,
        owner: &str,
    ) -> Option<(Task, broadcast::Receiver<StreamResponse>)> {
        let tasks = self.lock();
        let e = tasks.get(id).filter(|e| e.owner == owner)?;
        Some((e.task.clone(), e.updates.subscribe()))
    }

    fn get(&self, id: &str, owner: &str) -> Option<Task> {
        self.lock()
            .get(id)
            .filter(|e| e.owner == owner)
            .map(|e| e.task.clone())
    }

    fn cancel(&self, id: &str, owner: &str) -> Result<Task, RpcError> {
        {
            let mut tasks = self.lock();
            let e = tasks
                .get_mut(id)
                .filter(|e| e.owner == owner)
                .ok_or_else(|| RpcError::new(codes::TASK_NOT_FOUND, "task not found"))?;
            if e.task.status.state.is_terminal() {
                return Err(RpcError::new(
                    codes::TASK_NOT_CANCELABLE,
                    "the task has already finished",
                ));
            }
            if let Some(a) = e.abort.take() {
                a.abort();
            }
        }
        self.set_status(
            id,
            TaskState::Canceled,
            Some(Message::agent_text("Canceled at the client's request.")),
        );
        self.get(id, owner)
            .ok_or_else(|| RpcError::new(codes::TASK_NOT_FOUND, "task not found"))
    }

    /// Fails every unfinished task of `session` (the session was revoked). Returns how many.
    pub fn fail_session(&self, session: &str, reason: &str) -> usize {
        let ids: Vec<String> = {
            let mut tasks = self.lock();
            tasks
                .iter_mut()
                .filter(|(_, e)| {
                    e.session.as_deref() == Some(session) && !e.task.status.state.is_terminal()
                })
                .map(|(id, e)| {
                    if let Some(a) = e.abort.take() {
                        a.abort();
                    }
                    id.clone()
                })
                .collect()
        };
        for id in &ids {
            self.set_status(id, TaskState::Failed, Some(Message::agent_text(reason)));
        }
        ids.len()
    }

    fn list(&self, owner: &str, req: &ListTasksRequest) -> Vec<Task> {
        let tasks = self.lock();
        let order = self
            .order
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        order
            .iter()
            .rev()
            .filter_map(|id| tasks.get(id))
            .filter(|e| e.owner == owner)
            .filter(|e| {
                req.context_id
                    .as_ref()
                    .is_none_or(|c| *c == e.task.context_id)
            })
            .filter(|e| req.status.is_none_or(|s| s == e.task.status.state))
            .map(|e| e.task.clone())
            .collect()
    }
}

/// The running task, as its agent sees it.
#[derive(Clone)]
pub struct TaskHandle {
    id: String,
    principal: Arc<Principal>,
    store: Arc<TaskStore>,
    /// The `metadata` of the message that started the task (what the caller asked of the run:
    /// step mode, an attack toggle), `Null` when it had none.
    metadata: Arc<Value>,
}

impl std::fmt::Debug for TaskHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskHandle")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl TaskHandle {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Who asked, verified: the delegated token this agent received, and its claims.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The `metadata` object of the message that started the task (`Null` if it had none):
    /// `task.metadata()["step_mode"]`.
    pub fn metadata(&self) -> &Value {
        &self.metadata
    }

    /// Progress, in words.
    pub fn working(&self, text: impl Into<String>) {
        self.store.set_status(
            &self.id,
            TaskState::Working,
            Some(Message::agent_text(text)),
        );
    }

    /// Waiting for the user's approval: `TASK_STATE_AUTH_REQUIRED` with a message naming what
    /// is awaited, and `details` (approval id, binding code) as a data part.
    pub fn auth_required(&self, text: impl Into<String>, details: Value) {
        let message = Message::new(
            super::types::Role::Agent,
            vec![Part::text(text), Part::data(details)],
        );
        self.store
            .set_status(&self.id, TaskState::AuthRequired, Some(message));
    }

    /// Attaches a result artifact.
    pub fn artifact(&self, name: &str, parts: Vec<Part>) {
        self.store.add_artifact(
            &self.id,
            Artifact {
                artifact_id: uuid::Uuid::new_v4().to_string(),
                name: Some(name.to_owned()),
                parts,
            },
        );
    }
}

/// An agent behind its A2A endpoint.
pub struct Server<A> {
    agent: Arc<A>,
    guard: Guard,
    base_url: String,
    tasks: Arc<TaskStore>,
}

impl<A> std::fmt::Debug for Server<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl<A: Agent> Server<A> {
    /// `guard` checks callers' tokens (audience = this agent's SPIFFE id); `base_url` is where
    /// the card says the agent is.
    pub fn new(agent: Arc<A>, guard: Guard, base_url: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            agent,
            guard,
            base_url: base_url.into(),
            tasks: Arc::default(),
        })
    }

    /// The task store, to fail a revoked session's tasks.
    pub fn tasks(&self) -> Arc<TaskStore> {
        self.tasks.clone()
    }

    /// The agent card and the JSON-RPC endpoint.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route(CARD_PATH, get(card::<A>))
            .route(RPC_PATH, post(rpc::<A>))
            // The handler reads the body itself, so an oversized request still gets a JSON-RPC
            // error rather than a plain-text 413.
            .layer(DefaultBodyLimit::disable())
            .with_state(self.clone())
    }
}

async fn card<A: Agent>(State(s): State<Arc<Server<A>>>, headers: HeaderMap) -> Response {
    let body = serde_json::to_vec(&s.agent.card(&s.base_url)).unwrap_or_default();
    let etag = format!("W/\"{}\"", &crate::sha256_hex(&body)[..16]);
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let mut r = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

fn rpc_response(id: &Value, r: Result<Value, RpcError>) -> Response {
    Json(match r {
        Ok(v) => rpc_result(id, v),
        Err(e) => rpc_error(id, &e),
    })
    .into_response()
}

/// Largest JSON-RPC request an agent reads.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// `A2A-Version`: missing is accepted as 1.0 (conformance kits send none); another major.minor
/// is refused.
fn version_ok(headers: &HeaderMap) -> bool {
    match headers.get(VERSION_HEADER).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(v) => {
            let mut parts = v.trim().split('.');
            matches!(
                (parts.next(), parts.next()),
                (Some("1"), Some("0")) | (Some("1"), None)
            )
        }
    }
}

async fn rpc<A: Agent>(
    State(s): State<Arc<Server<A>>>,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Response {
    let body = match axum::body::to_bytes(request.into_body(), MAX_REQUEST_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            let e = RpcError::new(
                codes::INVALID_REQUEST,
                format!("the request is larger than {MAX_REQUEST_BYTES} bytes"),
            );
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                Json(rpc_error(&Value::Null, &e)),
            )
                .into_response();
        }
    };
    let envelope: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return rpc_response(
                &Value::Null,
                Err(RpcError::new(
                    codes::PARSE_ERROR,
                    format!("invalid JSON: {e}"),
                )),
            );
        }
    };
    let id = envelope.get("id").cloned().unwrap_or(Value::Null);
    let id_ok = matches!(id, Value::String(_) | Value::Number(_) | Value::Null);
    let method = envelope
        .get("method")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let (Some(method), true, Some("2.0")) = (
        method,
        id_ok,
        envelope.get("jsonrpc").and_then(Value::as_str),
    ) else {
        // JSON-RPC 2.0 §5: an id that cannot be read (an object, an array, a boolean) is
        // answered as null, never echoed.
        let id = if id_ok { id } else { Value::Null };
        return rpc_response(
            &id,
            Err(RpcError::new(
                codes::INVALID_REQUEST,
                "not a JSON-RPC 2.0 request",
            )),
        );
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal = match s.guard.check_header(authorization).await {
        Ok((token, claims)) => Arc::new(Principal { token, claims }),
        Err(e) => {
            s.agent.refused(&e, &method).await;
            let status = if matches!(e, GuardError::Unavailable) {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::UNAUTHORIZED
            };
            let challenge = format!(
                "Bearer error=\"invalid_token\", error_description=\"{}\"",
                e.to_string().replace('"', "'")
            );
            let mut r = (
                status,
                Json(rpc_error(
                    &id,
                    &RpcError::new(codes::INVALID_REQUEST, format!("unauthorized: {e}")),
                )),
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            return r;
        }
    };
    if !version_ok(&headers) {
        return rpc_response(
            &id,
            Err(RpcError::new(
                codes::VERSION_NOT_SUPPORTED,
                "this agent speaks A2A 1.0",
            )),
        );
    }
    let params = envelope
        .get("params")
        .cloned()
        .unwrap_or(Value::Object(Default::default()));
    let bad_params =
        |e: serde_json::Error| RpcError::new(codes::INVALID_PARAMS, format!("invalid params: {e}"));
    let owner = principal.claims.sub.clone();
    match method.as_str() {
        "SendMessage" | "SendStreamingMessage" => {
            let req: SendMessageRequest = match serde_json::from_value(params) {
                Ok(r) => r,
                Err(e) => return rpc_response(&id, Err(bad_params(e))),
            };
            match start(&s, &principal, req.message) {
                Err(e) => rpc_response(&id, Err(e)),
                Ok((task, rx)) if method == "SendStreamingMessage" => stream(id, task, rx),
                Ok((task, mut rx)) => {
                    let immediate = req
                        .configuration
                        .and_then(|c| c.return_immediately)
                        .unwrap_or(false);
                    if !immediate {
                        // Blocking: until the task ends or waits on the client.
                        loop {
                            match rx.recv().await {
                                Ok(StreamResponse::StatusUpdate(u))
                                    if u.status.state.is_interrupted() =>
                                {
                                    break;
                                }
                                Err(broadcast::error::RecvError::Closed) => break,
                                _ => {}
                            }
                        }
                    }
                    let task = s.tasks.get(&task.id, &owner).unwrap_or(task);
                    rpc_response(&id, Ok(json!({"task": task})))
                }
            }
        }
        "GetTask" => {
            let r = serde_json::from_value::<TaskIdRequest>(params)
                .map_err(bad_params)
                .and_then(|req| {
                    let mut task = s
                        .tasks
                        .get(&req.id, &owner)
                        .ok_or_else(|| RpcError::new(codes::TASK_NOT_FOUND, "task not found"))?;
                    if let Some(n) = req.history_length {
                        let keep = usize::try_from(n.max(0)).unwrap_or(0);
                        let skip = task.history.len().saturating_sub(keep);
                        task.history.drain(..skip);
                    }
                    Ok(serde_json::to_value(task).unwrap_or_default())
                });
            rpc_response(&id, r)
        }
        "CancelTask" => {
            let r = serde_json::from_value::<TaskIdRequest>(params)
                .map_err(bad_params)
                .and_then(|req| s.tasks.cancel(&req.id, &owner))
                .map(|t| serde_json::to_value(t).unwrap_or_default());
            rpc_response(&id, r)
        }
        "ListTasks" => {
            let r = serde_json::from_value::<ListTasksRequest>(params)
                .map_err(bad_params)
                .map(|req| {
                    let all = s.tasks.list(&owner, &req);
                    let size =
                        usize::try_from(req.page_size.unwrap_or(50).clamp(1, 100)).unwrap_or(50);
                    let total = i32::try_from(all.len()).unwrap_or(i32::MAX);
                    let tasks: Vec<Task> = all.into_iter().take(size).collect();
                    serde_json::to_value(ListTasksResponse {
                        page_size: i32::try_from(tasks.len()).unwrap_or(0),
                        tasks,
                        next_page_token: String::new(),
                        total_size: total,
                    })
                    .unwrap_or_default()
                });
            rpc_response(&id, r)
        }
        "SubscribeToTask" => match serde_json::from_value::<TaskIdRequest>(params) {
            Err(e) => rpc_response(&id, Err(bad_params(e))),
            Ok(req) => match s.tasks.subscribe(&req.id, &owner) {
                None => rpc_response(
                    &id,
                    Err(RpcError::new(codes::TASK_NOT_FOUND, "task not found")),
                ),
                Some((task, _)) if task.status.state.is_terminal() => rpc_response(
                    &id,
                    Err(RpcError::new(
                        codes::UNSUPPORTED_OPERATION,
                        "the task has already finished",
                    )),
                ),
                Some((task, rx)) => stream(id, task, rx),
            },
        },
        "CreateTaskPushNotificationConfig"
        | "GetTaskPushNotificationConfig"
        | "ListTaskPushNotificationConfigs"
        | "DeleteTaskPushNotificationConfig" => rpc_response(
            &id,
            Err(RpcError::new(
                codes::PUSH_NOT_SUPPORTED,
                "push notifications are not supported; stream instead",
            )),
        ),
        "GetExtendedAgentCard" => rpc_response(
            &id,
            Err(RpcError::new(
                codes::UNSUPPORTED_OPERATION,
                "there is no extended card",
            )),
        ),
        other => rpc_response(
            &id,
            Err(RpcError::new(
                codes::METHOD_NOT_FOUND,
                format!("unknown method {other}"),
            )),
        ),
    }
}

/// Creates the task and starts the agent on it.
fn start<A: Agent>(
    s: &Arc<Server<A>>,
    principal: &Arc<Principal>,
    message: Message,
) -> Result<(Task, broadcast::Receiver<StreamResponse>), RpcError> {
    if message.task_id.is_some() {
        return Err(RpcError::new(
            codes::UNSUPPORTED_OPERATION,
            "this agent does not take follow-up messages to a task",
        ));
    }
    let call = match (message.find_tool_call(), s.agent.text_skill()) {
        (Some(call), _) => call,
        (None, Some(skill)) if !message.text().trim().is_empty() => ToolCall {
            skill: skill.to_owned(),
            arguments: json!({"text": message.text()}),
        },
        _ => {
            return Err(RpcError::new(
                codes::INVALID_PARAMS,
                "the message needs a data part {\"skill\": ..., \"arguments\": {...}}",
            ));
        }
    };
    if !s
        .agent
        .card(&s.base_url)
        .skills
        .iter()
        .any(|k| k.id == call.skill)
    {
        return Err(RpcError::new(
            codes::INVALID_PARAMS,
            format!("this agent has no skill {}", call.skill),
        ));
    }
    let metadata = Arc::new(message.metadata.clone().unwrap_or(Value::Null));
    let (task, rx) = s.tasks.create(principal, message);
    let handle = TaskHandle {
        id: task.id.clone(),
        principal: principal.clone(),
        store: s.tasks.clone(),
        metadata,
    };
    let agent = s.agent.clone();
    let store = s.tasks.clone();
    let id = task.id.clone();
    let job = tokio::spawn(async move {
        store.set_status(&id, TaskState::Working, None);
        match agent.run(call, handle.clone()).await {
            Ok(reply) => {
                let mut parts = vec![Part::text(reply.text.clone())];
                if let Some(d) = reply.data {
                    parts.push(Part::data(d));
                }
                handle.artifact("result", parts);
                store.set_status(
                    &id,
                    TaskState::Completed,
                    Some(Message::agent_text(reply.text)),
                );
            }
            Err(AgentError::Rejected(m)) => {
                store.set_status(&id, TaskState::Rejected, Some(Message::agent_text(m)))
            }
            Err(AgentError::Failed(m)) => {
                store.set_status(&id, TaskState::Failed, Some(Message::agent_text(m)))
            }
        }
    });
    if let Some(e) = s.tasks.lock().get_mut(&task.id)
        && !e.task.status.state.is_terminal()
    {
        e.abort = Some(job.abort_handle());
    }
    Ok((task, rx))
}

/// An SSE response: the task first, then its updates, closed right after a terminal state.
fn stream(id: Value, task: Task, rx: broadcast::Receiver<StreamResponse>) -> Response {
    let first = rpc_result(&id, StreamResponse::Task(task));
    let updates = futures::stream::unfold((rx, false), |(mut rx, done)| async move {
        if done {
            return None;
        }
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    let terminal = matches!(&ev, StreamResponse::StatusUpdate(u) if u.status.state.is_terminal());
                    return Some((ev, (rx, terminal)));
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    let events = futures::stream::once(async move { first })
        .chain(updates.map(move |ev| rpc_result(&id, ev)))
        .map(|v| Ok::<_, Infallible>(Event::default().data(v.to_string())));
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}
