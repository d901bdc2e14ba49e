//! `verification_endpoint` (SSF §8.1.4): 204 now, the verification SET asynchronously, with the
//! request's `state` echoed and `sub_id` = the stream. Asked again within
//! `min_verification_interval` ⇒ 429. A disabled stream gets nothing (it would drop it).

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
};
use kit::ssf::{EventClaims, EventType, StreamStatus};

use super::stream_id_of;
use crate::{
    auth,
    error::{Body, Error},
    signal,
    state::AppState,
    store,
};

pub async fn verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, Error> {
    let caller = auth::receiver(&state, &headers)?;
    let body = body.object()?;
    let id = stream_id_of(&body)?;
    let verification_state = match body.get("state") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) if s.len() <= 256 => Some(s.clone()),
        Some(_) => {
            return Err(Error::bad_request(
                "state must be a string of at most 256 bytes",
            ));
        }
    };
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let stream = store::streams::get(&*tx, &caller.receiver, &id, true)
        .await?
        .ok_or(Error::StreamNotFound(id.clone()))?;
    if !store::streams::try_verification(&*tx, &id, state.config.min_verification_interval).await? {
        return Err(Error::TooMany(format!(
            "verification may be requested once every {} seconds",
            state.config.min_verification_interval
        )));
    }
    if stream.status != StreamStatus::Disabled {
        let claims = EventClaims {
            state: verification_state,
            ..EventClaims::default()
        };
        signal::queue_stream_event(&state, &*tx, &stream, EventType::Verification, &claims).await?;
    }
    tx.commit().await?;
    state.wake.notify_waiters();
    Ok(StatusCode::NO_CONTENT)
}
