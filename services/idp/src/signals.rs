//! The idp in shared signals, both ways.
//!
//! **Source.** Every session revocation (the sessions API, a reused refresh token, SCIM
//! deactivate / delete / revoke-sessions, the anomaly rule) queues a CAEP `session-revoked` in
//! `signal_outbox` inside the revoking transaction ([`crate::store::sessions::revoke`]); SCIM
//! deactivation also queues a `credential-change`. [`deliver`] sends each row to the
//! transmitter's `POST {SSF_URL}/events`: woken at once by `NOTIFY idp_signals`, rows claimed
//! `FOR UPDATE SKIP LOCKED` (replica-safe), each failure retried with doubling backoff (250 ms up
//! to 10 s) for as long as it takes. A transmitter that is down gets every event once it is back.
//!
//! **Receiver.** The idp also holds a push stream (`/ssf/events`): a `session-revoked` from the
//! transmitter that names a session still alive here (another source reported it) ends that
//! session, without reporting it back. Each SET received is one `signal_received` event.
//!
//! Subject of what we send: `complex {user: email (or iss_sub), session: opaque sid}`.

use std::time::Duration;

use axum::Router;
use kit::{
    events::Outcome,
    ssf::{self, EventType, Receiver, ReceiverSettings, SetEvent, SubjectId},
};
use serde_json::{Value, json};

use crate::{
    config::Source,
    state::AppState,
    store::{
        outbox::{self, Pending, RevokedBy},
        sessions,
    },
};

/// Where the idp receives pushed SETs.
pub const PUSH_PATH: &str = "/ssf/events";
/// How many outbox rows one pass sends.
const BATCH: i64 = 20;
const RETRY_BASE: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(10);
/// How long the worker sleeps with nothing queued (a `NOTIFY` wakes it sooner).
const IDLE: Duration = Duration::from_secs(30);

/// Starts what the configuration asks for: the outbox worker (with a source token) and the
/// receiver (with a receiver token). Returns the router of the push endpoint (empty without a
/// receiver), to merge into the idp's.
pub async fn start(state: &AppState) -> anyhow::Result<Router> {
    let signals = &state.config.signals;
    match &signals.source {
        Some(source) => {
            let wake = kit::pg::listen(&state.config.database_url, outbox::CHANNEL)?;
            tokio::spawn(deliver(state.clone(), source.clone(), wake.subscribe()));
        }
        None => tracing::info!(
            "SSF_URL / SSF_SOURCE_TOKEN not set: session revocations are queued, not sent"
        ),
    }
    let Some(settings) = &signals.receiver else {
        return Ok(Router::new());
    };
    let receiver = receiver(state, settings);
    ssf::start_receiver(&receiver, Duration::from_secs(10)).await;
    Ok(receiver.router(PUSH_PATH))
}

/// The outbox worker: runs until the process ends.
pub async fn deliver(
    state: AppState,
    source: Source,
    mut wake: tokio::sync::broadcast::Receiver<String>,
) {
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(2))
        .build()
    {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "the signals worker could not build its HTTP client");
            return;
        }
    };
    let mut passes: u64 = 0;
    loop {
        let wait = match deliver_due(&state, &source, &http).await {
            Ok(sent) if sent > 0 => Duration::ZERO,
            Ok(_) => match state.pool.get().await {
                // Rows another replica holds are due "now": look again shortly, not in a loop.
                Ok(db) => outbox::next_due_in(&db)
                    .await
                    .ok()
                    .flatten()
                    .map_or(IDLE, |d| d.clamp(Duration::from_millis(100), IDLE)),
                Err(_) => Duration::from_secs(1),
            },
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "signals outbox pass failed");
                Duration::from_secs(1)
            }
        };
        passes += 1;
        if passes.is_multiple_of(1000)
            && let Ok(db) = state.pool.get().await
        {
            let _ = outbox::prune(&db).await;
        }
        if wait.is_zero() {
            continue;
        }
        tokio::select! {
            r = wake.recv() => if let Err(tokio::sync::broadcast::error::RecvError::Closed) = r {
                tokio::time::sleep(wait).await;
            },
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// One pass: claims the due rows and sends each. Returns how many rows it handled.
async fn deliver_due(
    state: &AppState,
    source: &Source,
    http: &reqwest::Client,
) -> anyhow::Result<usize> {
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let rows = outbox::claim_due(&*tx, BATCH).await?;
    for row in &rows {
        let body = body_of(&state.issuer.url, row);
        match send(http, source, &body).await {
            Ok(txn) => {
                outbox::mark_delivered(&*tx, row.id, txn.as_deref()).await?;
                tracing::debug!(id = row.id, kind = %row.kind, "signal delivered to the transmitter");
            }
            Err(why) => {
                let retry_in = backoff(row.attempts);
                tracing::warn!(id = row.id, attempts = row.attempts + 1, retry_in_ms = retry_in.as_millis() as u64, error = %why, "signal not delivered; will retry");
                outbox::mark_failed(&*tx, row.id, &why, retry_in).await?;
            }
        }
    }
    tx.commit().await?;
    Ok(rows.len())
}

fn backoff(attempts: i32) -> Duration {
    let factor = 1u32 << attempts.clamp(0, 10);
    (RETRY_BASE * factor).min(RETRY_MAX)
}

/// The transmitter's source request for one row.
fn body_of(issuer: &str, row: &Pending) -> Value {
    let user = match row.email.as_deref().filter(|e| !e.is_empty()) {
        Some(email) => SubjectId::email(email),
        None => SubjectId::iss_sub(issuer, &row.user_id),
    };
    let subject = match &row.session_id {
        Some(sid) => SubjectId::session_of(user, sid),
        None => user,
    };
    let mut body = json!({
        "type": row.kind,
        "subject": subject,
        "txn": format!("idp-signal-{}", row.id),
        "reason_admin": {"en": row.reason_admin},
        "initiating_entity": row.initiating_entity,
        "event_timestamp": row.occurred_at,
    });
    if let (Value::Object(b), Value::Object(extra)) = (&mut body, &row.extra) {
        b.extend(extra.clone());
    }
    body
}

/// POSTs one event; `Ok(txn)` on 202, otherwise why not.
async fn send(
    http: &reqwest::Client,
    source: &Source,
    body: &Value,
) -> Result<Option<String>, String> {
    let resp = http
        .post(format!("{}/events", source.transmitter))
        .bearer_auth(&source.token)
        .json(body)
        .send()
        .await
        .map_err(|e| format!("the transmitter is unreachable: {e}"))?;
    let status = resp.status();
    if status.is_success() {
        let answer: Value = resp.json().await.unwrap_or_default();
        return Ok(answer.get("txn").and_then(Value::as_str).map(str::to_owned));
    }
    let text: String = resp
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    if status.is_client_error() {
        tracing::error!(%status, body = %text, "the transmitter refused a signal (a configuration error?)");
    }
    Err(format!("the transmitter answered {status}: {text}"))
}

/// The idp's receiver: ends a session the transmitter reports revoked, if it is still alive.
pub fn receiver(state: &AppState, settings: &ReceiverSettings) -> Receiver {
    let state = state.clone();
    let endpoint_url = format!("{}{PUSH_PATH}", state.issuer.url);
    Receiver::new(
        reqwest::Client::new(),
        settings.session_revoked_push(crate::state::SERVICE, endpoint_url),
        move |event: SetEvent| {
            let state = state.clone();
            async move { on_signal(&state, &event).await }
        },
    )
}

async fn on_signal(state: &AppState, event: &SetEvent) -> anyhow::Result<()> {
    if event.kind != EventType::SessionRevoked {
        return Ok(());
    }
    let Some(sid) = event.sub_id.session_id() else {
        return Ok(());
    };
    let mut db = state.pool.get().await?;
    let did = match sessions::get(&db, sid).await? {
        None => "no such session here",
        Some(s) if s.revoked_at.is_some() => "the session had already ended",
        Some(s) => {
            let reason = format!(
                "revoked by a shared signal{}",
                event
                    .claims
                    .reason_admin_text()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            );
            if sessions::revoke(&mut db, sid, &reason, RevokedBy::Transmitter).await? {
                let mut e = state.event("session_revoked", Outcome::Info);
                e.user = Some(s.email);
                e.session = Some(sid.to_owned());
                e.reason = Some(format!("signal: {reason}"));
                state.emit_best_effort(e).await;
            }
            "ended the session"
        }
    };
    state
        .emit_best_effort(ssf::received_event(crate::state::SERVICE, event, did))
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_names_the_user_and_the_session() {
        let row = Pending {
            id: 7,
            kind: "session-revoked".into(),
            user_id: "usr_1".into(),
            email: Some("alice@example.com".into()),
            session_id: Some("ses_1".into()),
            initiating_entity: "policy".into(),
            reason_admin: "anomaly".into(),
            extra: json!({}),
            occurred_at: 1_767_225_600,
            attempts: 0,
        };
        let body = body_of("http://idp", &row);
        assert_eq!(
            body["subject"],
            json!({"format": "complex",
                   "user": {"format": "email", "email": "alice@example.com"},
                   "session": {"format": "opaque", "id": "ses_1"}})
        );
        assert_eq!(body["initiating_entity"], "policy");
        assert_eq!(body["reason_admin"]["en"], "anomaly");
        assert_eq!(body["event_timestamp"], 1_767_225_600);

        let no_email = Pending {
            email: None,
            session_id: None,
            kind: "credential-change".into(),
            extra: json!({"credential_type": "password", "change_type": "revoke"}),
            ..row
        };
        let body = body_of("http://idp", &no_email);
        assert_eq!(
            body["subject"],
            json!({"format": "iss_sub", "iss": "http://idp", "sub": "usr_1"})
        );
        assert_eq!(body["change_type"], "revoke");
    }

    #[test]
    fn backoff_doubles_to_a_ceiling() {
        assert_eq!(backoff(0), Duration::from_millis(250));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(30), RETRY_MAX);
    }
}
