//! Poll delivery (RFC 8936) at `POST /ssf/poll/{stream_id}`, the `endpoint_url` of a poll
//! stream. One request settles what the receiver reports (`ack` ⇒ delivered, `setErrs` ⇒
//! failed), then answers up to `maxEvents` pending SETs, oldest first, with `moreAvailable`.
//! Unless `returnImmediately`, an empty queue is waited on (long poll) up to
//! `SSF_POLL_MAX_WAIT_SECS`. An unacknowledged SET is offered again on the next poll
//! (at-least-once). A paused stream answers no SETs (they are held); `maxEvents: 0` only
//! acknowledges.

use std::time::Duration;

use axum::{
    Json,
    extract::{Path, State},
    http::HeaderMap,
};
use kit::{
    events::{Outcome, SecurityEvent},
    ssf::{POLL, PollRequest, PollResponse},
};

use crate::{
    auth,
    error::{Body, Error},
    state::{AppState, SERVICE},
    store,
};

/// SETs answered when the receiver does not say how many.
const DEFAULT_MAX: u32 = 100;
/// The most one answer carries.
const CAP: u32 = 1000;
/// How often a long poll looks again without being woken (SETs queued by another replica).
const RECHECK: Duration = Duration::from_millis(500);

pub async fn poll(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(stream_id): Path<String>,
    body: Body,
) -> Result<Json<PollResponse>, Error> {
    let caller = auth::receiver(&state, &headers)?;
    let conn = state.pool.get().await?;
    let stream = store::streams::get(&**conn, &caller.receiver, &stream_id, false)
        .await?
        .ok_or(Error::StreamNotFound(stream_id.clone()))?;
    if stream.delivery_method != POLL {
        return Err(Error::bad_request(
            "this stream is delivered by push, not poll",
        ));
    }
    let req: PollRequest = if body.0.is_empty() {
        PollRequest::default()
    } else {
        serde_json::from_slice(&body.0)
            .map_err(|e| Error::bad_request(format!("invalid poll request: {e}")))?
    };
    if !req.ack.is_empty() {
        store::sets::ack(&**conn, &stream_id, &req.ack).await?;
    }
    for (jti, err) in &req.set_errs {
        let why: String = format!("{}: {}", err.err, err.description)
            .chars()
            .take(500)
            .collect();
        if store::sets::refused(&**conn, &stream_id, jti, &why).await? {
            let mut e = SecurityEvent::new(SERVICE, "ssf_set_rejected", Outcome::Denied);
            e.jti = Some(jti.clone());
            e.reason = Some(format!(
                "receiver refused the SET of stream {stream_id}: {why}"
            ));
            state.emit_best_effort(&e).await;
        }
    }
    let max = req.max_events.unwrap_or(DEFAULT_MAX).min(CAP);
    if max == 0 {
        return Ok(Json(PollResponse {
            sets: Default::default(),
            more_available: None,
        }));
    }
    let wait = !req.return_immediately.unwrap_or(false);
    let deadline = tokio::time::Instant::now() + state.config.poll_max_wait;
    let mut stopping = state.stopping.subscribe();
    let mut first = Some(conn);
    loop {
        // Registered before the query, so a SET queued in between still wakes us.
        let woken = state.wake.notified();
        // A waiting poll holds no connection: many receivers may long-poll at once.
        let conn = match first.take() {
            Some(c) => c,
            None => state.pool.get().await?,
        };
        let mut rows = store::sets::pending(&**conn, &stream_id, i64::from(max) + 1).await?;
        drop(conn);
        let more = rows.len() > usize::try_from(max).unwrap_or(usize::MAX);
        rows.truncate(usize::try_from(max).unwrap_or(usize::MAX));
        let now = tokio::time::Instant::now();
        if !rows.is_empty() || !wait || now >= deadline || *stopping.borrow() {
            return Ok(Json(PollResponse {
                sets: rows.into_iter().collect(),
                more_available: Some(more),
            }));
        }
        tokio::select! {
            () = woken => {}
            () = tokio::time::sleep(RECHECK.min(deadline - now)) => {}
            _ = stopping.changed() => {}
        }
    }
}
