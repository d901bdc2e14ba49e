//! Step-by-step runs (the mechanism behind presenter mode): in step mode the run pauses before
//! each hop, publishes what it is about to do and the artifact it concerns (the RAR, the
//! token, ...), and continues when told to. Only the user who started the run can see or
//! advance it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use kit::guard::Guard;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// One pause: the hop about to happen.
#[derive(Debug, Clone, Serialize)]
pub struct Pause {
    pub seq: u32,
    /// `plan`, `exchange`, `dispatch`, ...
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

/// Runs in step mode, by task id.
#[derive(Default)]
pub struct Steps {
    runs: Mutex<HashMap<String, Run>>,
}

impl std::fmt::Debug for Steps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Steps").finish_non_exhaustive()
    }
}

/// A paused run continues by itself after this long, so a forgotten demo never hangs forever.
const MAX_PAUSE: Duration = Duration::from_secs(600);

impl Steps {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Run>> {
        self.runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until the owner says "next".
    pub async fn pause(
        &self,
        run: &str,
        owner: &str,
        hop: &str,
        narration: String,
        artifact: Value,
    ) {
        let rx = {
            let mut runs = self.lock();
            let r = runs.entry(run.to_owned()).or_insert_with(|| Run {
                owner: owner.to_owned(),
                ..Run::default()
            });
            r.seq += 1;
            let (tx, rx) = oneshot::channel();
            r.pending = Some((
                Pause {
                    seq: r.seq,
                    hop: hop.into(),
                    narration,
                    artifact,
                },
                tx,
            ));
            rx
        };
        let _ = tokio::time::timeout(MAX_PAUSE, rx).await;
        let mut runs = self.lock();
        if let Some(r) = runs.get_mut(run)
            && let Some((p, _)) = r.pending.take()
        {
            r.done.push(p);
        }
    }

    /// The run is over: forget it.
    pub fn finish(&self, run: &str) {
        self.lock().remove(run);
    }

    fn view(&self, run: &str, owner: &str) -> Option<Value> {
        let runs = self.lock();
        let r = runs.get(run).filter(|r| r.owner == owner)?;
        Some(json!({"pending": r.pending.as_ref().map(|(p, _)| p), "done": r.done}))
    }

    fn next(&self, run: &str, owner: &str) -> bool {
        let mut runs = self.lock();
        let Some(r) = runs.get_mut(run).filter(|r| r.owner == owner) else {
            return false;
        };
        match r.pending.take() {
            Some((p, tx)) => {
                r.done.push(p);
                let _ = tx.send(());
                true
            }
            None => false,
        }
    }
}

#[derive(Clone)]
struct Api {
    steps: Arc<Steps>,
    guard: Guard,
}

/// `GET /steps/{task_id}` (what the run is paused before) and `POST /steps/{task_id}/next`,
/// with the same bearer token the run was started with.
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
        Err(e) => Err((
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"code": e.rule(), "message": e.to_string()}})),
        )
            .into_response()),
    }
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"error": {"code": "not_found", "message": "no step-by-step run with this id for you"}}))).into_response()
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

async fn next(State(api): State<Api>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    match owner(&api, &headers).await {
        Err(r) => r,
        Ok(o) if api.steps.next(&id, &o) => Json(json!({"continued": true})).into_response(),
        Ok(_) => not_found(),
    }
}
