//! `configuration_endpoint` (SSF §8.1.1): create 201, read one or all, update (PATCH) and
//! replace (PUT) 200, delete 204. Each receiver sees and changes only its own streams; another
//! receiver's stream id answers 404, exactly like one that does not exist.
//!
//! A receiver may hold several streams (SSF allows a 409 here; we do not need it): the kit
//! receiver finds its own again by `description`.

use axum::{
    Json,
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use kit::{
    events::{Outcome, SecurityEvent},
    ssf::{StreamConfig, StreamStatus},
};

use super::{StreamQuery, stream_id_of};
use crate::{
    auth,
    error::{Body, Error},
    state::{AppState, SERVICE},
    store,
    stream::{ReceiverFields, Stream, check_transmitter_fields, events_delivered},
};

/// `GET ?stream_id=X` → that stream; without `stream_id` → a JSON array of all of the
/// receiver's streams (`[]` if none).
pub async fn read(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<StreamQuery>,
) -> Result<Response, Error> {
    let caller = auth::receiver(&state, &headers)?;
    let db = state.pool.get().await?;
    match q.stream_id {
        Some(id) => {
            let stream = store::streams::get(&**db, &caller.receiver, &id, false)
                .await?
                .ok_or(Error::StreamNotFound(id))?;
            Ok(Json(stream.to_config(&state)).into_response())
        }
        None => {
            let all: Vec<StreamConfig> = store::streams::list(&**db, &caller.receiver)
                .await?
                .iter()
                .map(|s| s.to_config(&state))
                .collect();
            Ok(Json(all).into_response())
        }
    }
}

/// `POST`: a new stream, enabled, `aud` = the receiver's name. No `delivery` ⇒ poll.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Error> {
    let caller = auth::receiver(&state, &headers)?;
    let fields = ReceiverFields::from_body(&body.object()?)?;
    let mut stream = Stream {
        stream_id: kit::random_id(16),
        receiver: caller.receiver.clone(),
        aud: vec![caller.receiver.clone()],
        events_requested: Vec::new(),
        events_delivered: Vec::new(),
        delivery_method: String::new(),
        endpoint_url: None,
        authorization_header: None,
        description: None,
        status: StreamStatus::Enabled,
        status_reason: None,
    };
    stream.apply(fields);
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    store::streams::insert(&*tx, &stream).await?;
    let mut event = SecurityEvent::new(SERVICE, "ssf_stream_created", Outcome::Info);
    event.reason = Some(format!(
        "receiver {} created stream {} ({}, {} events)",
        stream.receiver,
        stream.stream_id,
        stream.delivery_method,
        stream.events_delivered.len()
    ));
    kit::events::emit(tx.client(), &event).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(stream.to_config(&state))).into_response())
}

/// `PATCH`: `stream_id` plus the receiver-supplied fields to change.
pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<StreamConfig>, Error> {
    change(state, headers, body, false).await
}

/// `PUT`: `stream_id` plus every receiver-supplied field; a missing one is reset.
pub async fn replace(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<StreamConfig>, Error> {
    change(state, headers, body, true).await
}

async fn change(
    state: AppState,
    headers: HeaderMap,
    body: Body,
    replace: bool,
) -> Result<Json<StreamConfig>, Error> {
    let caller = auth::receiver(&state, &headers)?;
    let body = body.object()?;
    let id = stream_id_of(&body)?;
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let mut stream = store::streams::get(&*tx, &caller.receiver, &id, true)
        .await?
        .ok_or(Error::StreamNotFound(id))?;
    check_transmitter_fields(&state, &stream, &body)?;
    let fields = if replace {
        ReceiverFields::from_body(&body)?
    } else {
        ReceiverFields::patched(&stream, &body)?
    };
    stream.apply(fields);
    debug_assert_eq!(
        stream.events_delivered,
        events_delivered(&stream.events_requested)
    );
    store::streams::update_fields(&*tx, &stream).await?;
    tx.commit().await?;
    Ok(Json(stream.to_config(&state)))
}

/// `DELETE ?stream_id=X` → 204. Its queued SETs go with it.
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<StreamQuery>,
) -> Result<StatusCode, Error> {
    let caller = auth::receiver(&state, &headers)?;
    let id = q
        .stream_id
        .ok_or_else(|| Error::bad_request("stream_id is required"))?;
    let db = state.pool.get().await?;
    if !store::streams::delete(&**db, &caller.receiver, &id).await? {
        return Err(Error::StreamNotFound(id));
    }
    drop(db);
    let mut event = SecurityEvent::new(SERVICE, "ssf_stream_deleted", Outcome::Info);
    event.reason = Some(format!("receiver {} deleted stream {id}", caller.receiver));
    state.emit_best_effort(&event).await;
    Ok(StatusCode::NO_CONTENT)
}
