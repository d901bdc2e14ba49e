//! Step-by-step runs (presenter mode, S7): in step mode an agent pauses before each hop, shows
//! what it is about to do and the artifact it concerns (the RAR, the decoded token, the SQL),
//! and goes on when the user says "next". Any agent can pause: the supervisor before its own
//! hops, a specialist before its hops, relayed by its caller.
//!
//! The protocol, end to end:
//! - a caller asks a specialist for step mode with `metadata: {"step_mode": true}` on the A2A
//!   message ([`requested`] reads it from the task);
//! - each pause is announced on the task with a `TASK_STATE_WORKING` line for people, then an
//!   artifact named [`PAUSE_ARTIFACT`] whose data part is `{"pause": {seq, hop, narration,
//!   artifact}}` ([`announced`] reads it back; a caller relays it with [`Stepper::relay`]);
//! - `GET /steps/{task_id}` shows `{"pending": Pause|null, "done": [Pause]}` and
//!   `POST /steps/{task_id}/next` continues (with `?seq=N`: only if the run is paused at pause
//!   N, so a late "next" never skips the pause after it); [`routes`] serves both, [`next_at`]
//!   is the caller's side;
//! - only the run's owner sees or advances it: the agent's own guard checks the bearer token and
//!   its `sub` must be the user who started the run (at the supervisor the user's token, at a
//!   specialist the delegated token its caller holds for that call);
//! - a pause nobody answers ends by itself after [`MAX_PAUSE`].

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::{
    a2a::{Artifact, Part, server::TaskHandle},
    guard::Guard,
};

/// A paused run continues by itself after this long, so a forgotten demo never hangs forever.
pub const MAX_PAUSE: Duration = Duration::from_secs(600);

/// The name of the artifact that announces a pause on an A2A task.
pub const PAUSE_ARTIFACT: &str = "pause";

/// One pause: the hop about to happen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pause {
    /// 1, 2, ... within the run.
    pub seq: u32,
    /// `plan`, `exchange`, `dispatch`, `approval`, `issuance`, `sql`, `revocation`.
    pub hop: String,
    pub narration: String,
    pub artifact: Value,
}

#[derive(Default)]
struct Run {
    owner: String,
    pending: Option<(Pause, oneshot::Sender<()>)>,
    done: Vec<Pause>,
    seq: u32,
}

/// What `next` found.
#[derive(Debug, PartialEq, Eq)]
enum Advanced {
    Continued,
    /// No run with this id for this owner, or it is not paused.
    NotFound,
    /// Paused, but not at the pause the caller answered.
    Elsewhere,
}

/// An agent's runs in step mode, by task id.
#[derive(Default)]
pub struct Steps {
    runs: Mutex<HashMap<String, Run>>,
}

impl std::fmt::Debug for Steps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Steps").finish_non_exhaustive()
    }
}

impl Steps {
    fn runs(&self) -> MutexGuard<'_, HashMap<String, Run>> {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes `hop` the run's pending pause; the receiver fires on "next".
    fn begin(
        &self,
        run: &str,
        owner: &str,
        hop: &str,
        narration: String,
        artifact: Value,
    ) -> (Pause, oneshot::Receiver<()>) {
        let mut runs = self.runs();
        let r = runs.entry(run.to_owned()).or_insert_with(|| Run {
            owner: owner.to_owned(),
            ..Run::default()
        });
        r.seq += 1;
        let pause = Pause {
            seq: r.seq,
            hop: hop.to_owned(),
            narration,
            artifact,
        };
        let (tx, rx) = oneshot::channel();
        if let Some((earlier, _)) = r.pending.replace((pause.clone(), tx)) {
            r.done.push(earlier);
        }
        (pause, rx)
    }

    /// Waits for "next" (or [`MAX_PAUSE`]), then files the pause as done.
    async fn wait(&self, run: &str, seq: u32, next: oneshot::Receiver<()>) {
        let _ = tokio::time::timeout(MAX_PAUSE, next).await;
        let mut runs = self.runs();
        if let Some(r) = runs.get_mut(run)
            && r.pending.as_ref().is_some_and(|(p, _)| p.seq == seq)
            && let Some((p, _)) = r.pending.take()
        {
            r.done.push(p);
        }
    }

    /// The run is over: forget it.
    fn finish(&self, run: &str) {
        self.runs().remove(run);
    }

    fn view(&self, run: &str, owner: &str) -> Option<Value> {
        let runs = self.runs();
        let r = runs.get(run).filter(|r| r.owner == owner)?;
        Some(json!({"pending": r.pending.as_ref().map(|(p, _)| p), "done": r.done}))
    }

    fn next(&self, run: &str, owner: &str, seq: Option<u32>) -> Advanced {
        let mut runs = self.runs();
        let Some(r) = runs.get_mut(run).filter(|r| r.owner == owner) else {
            return Advanced::NotFound;
        };
        match &r.pending {
            None => Advanced::NotFound,
            Some((p, _)) if seq.is_some_and(|s| s != p.seq) => Advanced::Elsewhere,
            Some(_) => {
                if let Some((p, tx)) = r.pending.take() {
                    r.done.push(p);
                    let _ = tx.send(());
                }
                Advanced::Continued
            }
        }
    }
}

/// Whether the message that started `task` asked for step mode (`metadata.step_mode: true`).
pub fn requested(task: &TaskHandle) -> bool {
    task.metadata()["step_mode"] == true
}

/// One task's step-by-step run. Made once per run: it pauses only when step mode is on, and the
/// run is forgotten when it is dropped (the task ended, or was canceled half-way).
pub struct Stepper {
    run: Option<(Arc<Steps>, TaskHandle)>,
}

impl std::fmt::Debug for Stepper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stepper")
            .field("on", &self.is_on())
            .finish_non_exhaustive()
    }
}

impl Stepper {
    /// `task`'s run, pausing if `on`.
    pub fn new(steps: &Arc<Steps>, task: &TaskHandle, on: bool) -> Self {
        Self {
            run: on.then(|| (steps.clone(), task.clone())),
        }
    }

    /// A run that never pauses.
    pub fn off() -> Self {
        Self { run: None }
    }

    pub fn is_on(&self) -> bool {
        self.run.is_some()
    }

    /// In step mode: announces the pause on the task and waits for the owner's "next" (at most
    /// [`MAX_PAUSE`]). Otherwise returns at once.
    pub async fn pause(&self, hop: &str, narration: impl Into<String>, artifact: Value) {
        self.hold(hop, narration.into(), artifact, true).await;
    }

    /// Makes a pause another agent announced (see [`announced`]) this run's own, for a caller
    /// that relays it: the same hop, narration and artifact, and "next" here is the user's answer
    /// there. The other agent's status line reached this task already, so only the pause is
    /// announced.
    pub async fn relay(&self, pause: &Pause) {
        self.hold(
            &pause.hop,
            pause.narration.clone(),
            pause.artifact.clone(),
            false,
        )
        .await;
    }

    async fn hold(&self, hop: &str, narration: String, artifact: Value, status_line: bool) {
        let Some((steps, task)) = &self.run else {
            return;
        };
        let owner = &task.principal().claims.sub;
        let (pause, next) = steps.begin(task.id(), owner, hop, narration, artifact);
        let line = format!("Paused before {hop}: {}", pause.narration);
        if status_line {
            task.working(line.clone());
        }
        task.artifact(
            PAUSE_ARTIFACT,
            vec![Part::text(line), Part::data(json!({ "pause": pause }))],
        );
        steps.wait(task.id(), pause.seq, next).await;
    }
}

impl Drop for Stepper {
    fn drop(&mut self) {
        if let Some((steps, task)) = &self.run {
            steps.finish(task.id());
        }
    }
}

/// The pause an artifact announces, if it is a pause announcement.
pub fn announced(artifact: &Artifact) -> Option<Pause> {
    if artifact.name.as_deref() != Some(PAUSE_ARTIFACT) {
        return None;
    }
    artifact
        .parts
        .iter()
        .filter_map(|p| p.data.as_ref()?.get("pause"))
        .find_map(|p| serde_json::from_value(p.clone()).ok())
}

/// The caller's side of "next": continues the run of `task_id` at the agent at `base_url` if it
/// is still paused at pause `seq`, with the token the caller called it with.
pub async fn next_at(
    http: &reqwest::Client,
    base_url: &str,
    task_id: &str,
    seq: u32,
    token: &str,
) -> Result<(), String> {
    let mut url = url::Url::parse(base_url).map_err(|e| format!("bad agent address: {e}"))?;
    url.path_segments_mut()
        .map_err(|()| "bad agent address".to_owned())?
        .pop_if_empty()
        .extend(["steps", task_id, "next"]);
    url.query_pairs_mut().append_pair("seq", &seq.to_string());
    let resp = http
        .post(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    match resp.status() {
        StatusCode::OK => Ok(()),
        status => Err(format!(
            "HTTP {status}: {}",
            resp.text().await.unwrap_or_default()
        )),
    }
}

#[derive(Clone)]
struct Api {
    steps: Arc<Steps>,
    guard: Guard,
}

#[derive(Debug, Deserialize)]
struct NextQuery {
    seq: Option<u32>,
}

/// `GET /steps/{task_id}` (what the run is paused before) and `POST /steps/{task_id}/next`,
/// for the owner of the run only; `guard` is the agent's own.
pub fn routes(steps: Arc<Steps>, guard: Guard) -> Router {
    Router::new()
        .route("/steps/{id}", get(view))
        .route("/steps/{id}/next", post(next))
        .with_state(Api { steps, guard })
}

async fn owner(api: &Api, headers: &HeaderMap) -> Result<String, Response> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match api.guard.check_header(auth).await {
        Ok((_, claims)) => Ok(claims.sub),
        Err(e) => Err(error(StatusCode::UNAUTHORIZED, e.rule(), &e.to_string())),
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        "no step-by-step run with this id for you",
    )
}

async fn view(State(api): State<Api>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    match owner(&api, &headers).await {
        Err(r) => r,
        Ok(o) => api
            .steps
            .view(&id, &o)
            .map(|v| Json(v).into_response())
            .unwrap_or_else(not_found),
    }
}

async fn next(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<NextQuery>,
) -> Response {
    let owner = match owner(&api, &headers).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    match api.steps.next(&id, &owner, q.seq) {
        Advanced::Continued => Json(json!({"continued": true})).into_response(),
        Advanced::NotFound => not_found(),
        Advanced::Elsewhere => error(
            StatusCode::CONFLICT,
            "not_paused_there",
            "the run is no longer paused at that step",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_the_owner_continues_and_a_late_next_skips_nothing() {
        let steps = Arc::new(Steps::default());
        let (first, rx) = steps.begin("t", "alice", "exchange", "one".into(), json!([]));
        assert_eq!(first.seq, 1);
        assert_eq!(steps.next("t", "bob", None), Advanced::NotFound);
        assert!(steps.view("t", "bob").is_none());
        assert_eq!(
            steps.view("t", "alice").unwrap()["pending"]["hop"],
            "exchange"
        );
        assert_eq!(steps.next("t", "alice", Some(1)), Advanced::Continued);
        steps.wait("t", 1, rx).await;

        let (second, _rx) = steps.begin("t", "alice", "sql", "two".into(), json!({}));
        assert_eq!(second.seq, 2);
        // "next" meant for pause 1 arrives late: pause 2 stays.
        assert_eq!(steps.next("t", "alice", Some(1)), Advanced::Elsewhere);
        let view = steps.view("t", "alice").unwrap();
        assert_eq!(view["pending"]["seq"], 2);
        assert_eq!(view["done"][0]["hop"], "exchange");
        assert_eq!(steps.next("t", "alice", None), Advanced::Continued);
        assert_eq!(steps.next("t", "alice", None), Advanced::NotFound);

        steps.finish("t");
        assert!(steps.view("t", "alice").is_none());
    }

    #[tokio::test]
    async fn a_pause_that_ended_otherwise_leaves_the_next_one_alone() {
        let steps = Arc::new(Steps::default());
        let (first, rx) = steps.begin("t", "alice", "plan", "n".into(), Value::Null);
        // A second pause replaces the first (its waiter wakes as its sender is dropped).
        let (second, _rx) = steps.begin("t", "alice", "exchange", "m".into(), Value::Null);
        steps.wait("t", first.seq, rx).await;
        let view = steps.view("t", "alice").unwrap();
        assert_eq!(view["pending"]["seq"], second.seq);
        assert_eq!(view["done"][0]["seq"], first.seq);
    }

    #[test]
    fn a_pause_travels_as_an_artifact() {
        let pause = Pause {
            seq: 3,
            hop: "sql".into(),
            narration: "n".into(),
            artifact: json!({"statements": []}),
        };
        let artifact = Artifact {
            artifact_id: "a".into(),
            name: Some(PAUSE_ARTIFACT.into()),
            parts: vec![Part::text("t"), Part::data(json!({ "pause": pause }))],
        };
        assert_eq!(announced(&artifact), Some(pause));
        let result = Artifact {
            name: Some("result".into()),
            ..artifact
        };
        assert_eq!(announced(&result), None);
    }
}
