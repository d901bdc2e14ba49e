//! The push worker (RFC 8935): claims due SETs, POSTs each to its stream's receiver, and
//! settles it by the answer.
//!
//! | answer | outcome |
//! |---|---|
//! | 2xx (202 per RFC 8935) | `delivered` |
//! | 400 `{"err", "description"}` | `failed`, not retried: the receiver judged the SET |
//! | network error, timeout, any other status | retried after a doubling backoff with jitter; `failed` after `SSF_PUSH_MAX_ATTEMPTS` |
//!
//! Delivery is at-least-once: a receiver may see a SET again (a lost 202), never lose one that
//! was queued. The worker starts with the service, so SETs left pending by a previous run (or a
//! crashed replica, once its lease ends) go out first. Within one stream, SETs go out in order.

use std::time::Duration;

use axum::http::header;
use kit::events::{Outcome, SecurityEvent};
use rand::Rng as _;
use tokio::sync::watch;

use crate::{
    state::{AppState, SERVICE},
    store::{self, sets::Claimed},
};

/// How many SETs one claim takes.
const BATCH: i64 = 32;
/// How often the worker looks for due SETs when nothing woke it (retries, other replicas).
const TICK: Duration = Duration::from_millis(250);
/// Settled SETs are kept this long.
const KEEP: Duration = Duration::from_secs(7 * 24 * 3600);

/// Runs until `stopping` turns true; the batch in hand is finished first.
pub async fn run(state: AppState, mut stopping: watch::Receiver<bool>) {
    let mut purged = std::time::Instant::now();
    loop {
        if *stopping.borrow() {
            break;
        }
        let wake = state.wake.notified();
        loop {
            match deliver_batch(&state).await {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "push delivery round failed");
                    break;
                }
            }
            if *stopping.borrow() {
                return;
            }
        }
        if purged.elapsed() > Duration::from_secs(3600) {
            purged = std::time::Instant::now();
            if let Ok(db) = state.pool.get().await {
                let _ = store::sets::purge(&**db, KEEP).await;
            }
        }
        tokio::select! {
            () = wake => {}
            () = tokio::time::sleep(TICK) => {}
            _ = stopping.changed() => {}
        }
    }
}

/// One claim: delivers each stream's SETs in order, streams side by side. Returns how many
/// SETs were claimed.
async fn deliver_batch(state: &AppState) -> anyhow::Result<usize> {
    let db = state.pool.get().await?;
    // The lease outlasts every attempt in the batch, so no other replica takes these rows.
    let lease =
        state.config.push_timeout * u32::try_from(BATCH).unwrap_or(32) + Duration::from_secs(5);
    let claimed = store::sets::claim_push(&**db, BATCH, lease).await?;
    drop(db);
    let n = claimed.len();
    let mut by_stream: Vec<Vec<Claimed>> = Vec::new();
    for c in claimed {
        match by_stream.iter_mut().find(|g| g[0].stream_id == c.stream_id) {
            Some(g) => g.push(c),
            None => by_stream.push(vec![c]),
        }
    }
    futures::future::join_all(by_stream.into_iter().map(|g| deliver_stream(state, g))).await;
    Ok(n)
}

/// Delivers one stream's claimed SETs in order; after a retryable failure the rest wait with it.
async fn deliver_stream(state: &AppState, sets: Vec<Claimed>) {
    let mut blocked: Option<(Duration, String)> = None;
    for set in sets {
        let result = match &blocked {
            Some((after, why)) => settle_retry(state, &set, *after, why, false).await,
            None => match push(state, &set).await {
                Pushed::Delivered => settle(state, &set, None).await,
                Pushed::Rejected(err) => settle(state, &set, Some(err)).await,
                Pushed::Retry(why) => {
                    let after = backoff(state, set.attempts);
                    let r = settle_retry(state, &set, after, &why, true).await;
                    blocked = Some((after, format!("waiting behind a retry: {why}")));
                    r
                }
            },
        };
        if let Err(e) = result {
            tracing::error!(jti = %set.jti, error = %format!("{e:#}"), "could not record a push outcome");
        }
    }
}

enum Pushed {
    Delivered,
    Rejected(String),
    Retry(String),
}

async fn push(state: &AppState, set: &Claimed) -> Pushed {
    let mut req = state
        .http
        .post(&set.endpoint_url)
        .header(header::CONTENT_TYPE, kit::ssf::SET_MEDIA_TYPE)
        .header(header::ACCEPT, "application/json")
        .timeout(state.config.push_timeout)
        .body(set.token.clone());
    if let Some(h) = &set.authorization_header {
        req = req.header(header::AUTHORIZATION, h);
    }
    match req.send().await {
        Ok(r) if r.status().is_success() => Pushed::Delivered,
        Ok(r) if r.status() == reqwest::StatusCode::BAD_REQUEST => {
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            let err = body["err"].as_str().unwrap_or("invalid_request");
            let description = body["description"].as_str().unwrap_or("");
            let text: String = format!("{err}: {description}").chars().take(500).collect();
            Pushed::Rejected(text)
        }
        Ok(r) => Pushed::Retry(format!("HTTP {}", r.status().as_u16())),
        Err(e) => Pushed::Retry(if e.is_timeout() {
            "timed out".to_owned()
        } else {
            "could not connect".to_owned()
        }),
    }
}

/// `delivered` (`rejected` = None) or `failed` with the receiver's error.
async fn settle(state: &AppState, set: &Claimed, rejected: Option<String>) -> anyhow::Result<()> {
    let db = state.pool.get().await?;
    match rejected {
        None => {
            store::sets::delivered(&**db, &set.jti).await?;
            tracing::debug!(jti = %set.jti, stream = %set.stream_id, "SET delivered");
        }
        Some(err) => {
            store::sets::failed(&**db, &set.jti, &err).await?;
            drop(db);
            let mut e = SecurityEvent::new(SERVICE, "ssf_set_rejected", Outcome::Denied);
            e.jti = Some(set.jti.clone());
            e.reason = Some(format!(
                "receiver refused the SET of stream {}: {err}",
                set.stream_id
            ));
            state.emit_best_effort(&e).await;
        }
    }
    Ok(())
}

async fn settle_retry(
    state: &AppState,
    set: &Claimed,
    after: Duration,
    why: &str,
    attempted: bool,
) -> anyhow::Result<()> {
    let db = state.pool.get().await?;
    if attempted && set.attempts >= state.config.max_attempts {
        let err = format!("gave up after {} attempts: {why}", set.attempts);
        store::sets::failed(&**db, &set.jti, &err).await?;
        drop(db);
        let mut e = SecurityEvent::new(SERVICE, "ssf_set_undeliverable", Outcome::Error);
        e.jti = Some(set.jti.clone());
        e.reason = Some(format!("stream {}: {err}", set.stream_id));
        state.emit_best_effort(&e).await;
        return Ok(());
    }
    tracing::info!(jti = %set.jti, stream = %set.stream_id, attempts = set.attempts, reason = why, "SET push will be retried");
    store::sets::retry(&**db, &set.jti, after, why, attempted).await?;
    Ok(())
}

/// base × 2^(attempts−1), capped, ±20 % so that receivers coming back are not hit in step.
fn backoff(state: &AppState, attempts: i32) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(20);
    let raw = state.config.retry_base.saturating_mul(1 << exp);
    let capped = raw.min(state.config.retry_max);
    let jitter = rand::rng().random_range(0.8..1.2);
    capped.mul_f64(jitter)
}
