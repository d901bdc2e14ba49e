//! `status_endpoint` (SSF §8.1.2): read and update a stream's status. `paused` holds events (they
//! are queued and go out, in order, once enabled); `disabled` drops them, including those held.
//! A change of status is announced to the stream with a `stream-updated` event (held like any
//! other while paused; none is sent to a disabled stream, which would drop it).

use axum::{
    Json,
    extract::{Query, State},
    http::HeaderMap,
};
use kit::{
    events::{Outcome, SecurityEvent},
    ssf::{EventClaims, EventType, wire::StatusBody},
};

use super::{StreamQuery, stream_id_of};
use crate::{
    auth,
    error::{Body, Error},
    signal,
    state::{AppState, SERVICE},
    store,
};

pub async fn read(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<StreamQuery>,
) -> Result<Json<StatusBody>, Error> {
    let caller = auth::receiver(&state, &headers)?;
    let id = q
        .stream_id
        .ok_or_else(|| Error::bad_request("stream_id is required"))?;
    let db = state.pool.get().await?;
    let stream = store::streams::get(&**db, &caller.receiver, &id, false)
        .await?
        .ok_or(Error::StreamNotFound(id))?;
    Ok(Json(StatusBody {
        stream_id: stream.stream_id,
        status: stream.status,
        reason: stream.status_reason,
    }))
}

pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<StatusBody>, Error> {
    let caller = auth::receiver(&state, &headers)?;
    let body = body.object()?;
    let id = stream_id_of(&body)?;
    let wanted: StatusBody = serde_json::from_value(serde_json::Value::Object(body))
        .map_err(|_| Error::bad_request("status must be enabled, paused or disabled"))?;
    if wanted.reason.as_ref().is_some_and(|r| r.len() > 512) {
        return Err(Error::bad_request("reason is too long"));
    }
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let stream = store::streams::get(&*tx, &caller.receiver, &id, true)
        .await?
        .ok_or(Error::StreamNotFound(id.clone()))?;
    store::streams::set_status(&*tx, &id, wanted.status, wanted.reason.as_deref()).await?;
    let changed = stream.status != wanted.status;
    if wanted.status == kit::ssf::StreamStatus::Disabled {
        store::sets::drop_pending(&*tx, &id).await?;
    } else if changed {
        let claims = EventClaims {
            status: Some(wanted.status.as_str().into()),
            reason: wanted.reason.clone(),
            ..EventClaims::default()
        };
        signal::queue_stream_event(&state, &*tx, &stream, EventType::StreamUpdated, &claims)
            .await?;
    }
    if changed {
        let mut event = SecurityEvent::new(SERVICE, "ssf_stream_status", Outcome::Info);
        event.reason = Some(format!(
            "stream {id} of {}: {} → {}{}",
            caller.receiver,
            stream.status.as_str(),
            wanted.status.as_str(),
            wanted
                .reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ));
        kit::events::emit(tx.client(), &event).await?;
    }
    tx.commit().await?;
    state.wake.notify_waiters();
    Ok(Json(StatusBody {
        stream_id: id,
        status: wanted.status,
        reason: wanted.reason,
    }))
}
