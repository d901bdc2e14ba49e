//! `add_subject_endpoint` (200, empty body) and `remove_subject_endpoint` (204) (SSF §8.1.3).
//! With `default_subjects = ALL` a stream receives events about every subject except those
//! removed; with `NONE`, only about those added. Matching follows SSF §8.1.3.1 (see
//! `kit::ssf::SubjectId::matches`).

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
};
use kit::ssf::SubjectId;

use super::stream_id_of;
use crate::{
    auth,
    error::{Body, Error},
    state::AppState,
    store::{self, streams::SubjectMode},
};

pub async fn add(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, Error> {
    put(state, headers, body, SubjectMode::Added).await?;
    Ok(StatusCode::OK)
}

pub async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, Error> {
    put(state, headers, body, SubjectMode::Removed).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn put(
    state: AppState,
    headers: HeaderMap,
    body: Body,
    mode: SubjectMode,
) -> Result<(), Error> {
    let caller = auth::receiver(&state, &headers)?;
    let body = body.object()?;
    let id = stream_id_of(&body)?;
    let subject: SubjectId = body
        .get("subject")
        .cloned()
        .ok_or_else(|| Error::bad_request("subject is required"))
        .and_then(|v| {
            serde_json::from_value(v)
                .map_err(|e| Error::bad_request(format!("subject is invalid: {e}")))
        })?;
    subject.validate().map_err(Error::BadRequest)?;
    let verified = match body.get("verified") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Bool(b)) => Some(*b),
        Some(_) => return Err(Error::bad_request("verified must be a boolean")),
    };
    let db = state.pool.get().await?;
    store::streams::get(&**db, &caller.receiver, &id, false)
        .await?
        .ok_or(Error::StreamNotFound(id.clone()))?;
    store::streams::put_subject(&**db, &id, &subject, mode, verified).await?;
    Ok(())
}
