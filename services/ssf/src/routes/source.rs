//! `POST /events`: the internal source of CAEP events (the idp when a session is revoked, a
//! credential changes...), authenticated with `SSF_SOURCE_TOKEN`. Body:
//!
//! ```json
//! {"type": "session-revoked",
//!  "subject": {"format": "complex", "user": {"format": "email", "email": "alice@example.com"},
//!              "session": {"format": "opaque", "id": "<sid>"}},
//!  "reason_admin": {"en": "revoked from the console"}, "initiating_entity": "admin",
//!  "event_timestamp": 1767225600}
//! ```
//!
//! plus the type's own members (`credential_type` and `change_type`, `claims`, `namespace` and
//! `current_level`...). The event is signed once per stream that should get it, all queued in
//! one transaction with its security event, then pushed. 202 `{"txn", "sets"}`.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use kit::{
    events::{Outcome, SecurityEvent},
    ssf::{EventClaims, EventType, SubjectId},
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    auth,
    error::{Body, Error},
    signal,
    state::{AppState, SERVICE},
};

#[derive(Debug, Deserialize)]
struct SourceEvent {
    #[serde(rename = "type")]
    kind: String,
    subject: SubjectId,
    #[serde(default)]
    txn: Option<String>,
    #[serde(flatten)]
    claims: EventClaims,
}

pub async fn event(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), Error> {
    auth::source(&state, &headers)?;
    let mut ev: SourceEvent = serde_json::from_slice(&body.0)
        .map_err(|e| Error::bad_request(format!("invalid event: {e}")))?;
    let kind = EventType::parse(&ev.kind)
        .filter(|k| !k.is_stream_event())
        .ok_or_else(|| {
            Error::bad_request(format!(
                "type must be one of {}",
                EventType::CAEP.map(EventType::name).join(", ")
            ))
        })?;
    if let Some(unknown) = ev.claims.other.keys().next() {
        return Err(Error::bad_request(format!("unknown member {unknown}")));
    }
    ev.subject.validate().map_err(Error::BadRequest)?;
    ev.claims.validate(kind).map_err(Error::BadRequest)?;
    if ev.claims.event_timestamp.is_none() {
        ev.claims.event_timestamp = Some(kit::now_secs());
    }
    let txn = match ev.txn {
        Some(t) if !t.is_empty() && t.len() <= 128 => t,
        Some(_) => return Err(Error::bad_request("txn must be 1 to 128 characters")),
        None => kit::random_id(16),
    };
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let queued = signal::fan_out(&state, &*tx, kind, &ev.subject, &ev.claims, &txn).await?;
    let mut event = SecurityEvent::new(
        SERVICE,
        &format!("ssf_{}", kind.name().replace('-', "_")),
        Outcome::Info,
    );
    event.user = ev.subject.email_address().map(str::to_owned);
    event.session = ev.subject.session_id().map(str::to_owned);
    event.reason = Some(format!(
        "{} sent to {} stream(s){}",
        kind.name(),
        queued.len(),
        ev.claims
            .reason_admin_text()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    ));
    kit::events::emit(tx.client(), &event).await?;
    tx.commit().await?;
    state.wake.notify_waiters();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"txn": txn, "sets": queued.len()})),
    ))
}
