//! Sessions: a user lists and ends their own; the admin lists and ends anyone's. Ending a
//! session makes every token of it introspect `active: false` and fail to exchange.

use axum::{
    Json,
    extract::{Path, State},
};
use kit::events::Outcome;
use serde_json::{Value, json};

use crate::{
    auth::Principal,
    error::Error,
    state::AppState,
    store::{
        outbox::RevokedBy,
        sessions::{self, Session},
    },
};

pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<Session>>, Error> {
    let db = state.pool.get().await?;
    Ok(Json(match &principal {
        Principal::Admin => sessions::list_all(&db).await?,
        Principal::User(c) => sessions::list_for_user(&db, &c.sub).await?,
    }))
}

#[derive(Debug, serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    #[serde(default)]
    reason: Option<String>,
}

pub async fn revoke(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, Error> {
    if !super::plain_id(&id) {
        return Err(Error::not_found("no such session"));
    }
    let mut db = state.pool.get().await?;
    let session = sessions::get(&db, &id)
        .await?
        .ok_or_else(|| Error::not_found("no such session"))?;
    let (by, initiator) = match &principal {
        Principal::Admin => ("admin", RevokedBy::Admin),
        Principal::User(c) if c.sub == session.user_id => ("user", RevokedBy::User),
        Principal::User(_) => return Err(Error::not_found("no such session")),
    };
    // The body is optional: `{"reason": "..."}` or nothing.
    let given: RevokeBody = if body.is_empty() {
        RevokeBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            Error::api(
                axum::http::StatusCode::BAD_REQUEST,
                "invalid_body",
                e.to_string(),
            )
        })?
    };
    let reason = given
        .reason
        .unwrap_or_else(|| format!("revoked by the {by}"));
    let reason: String = reason
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let changed = sessions::revoke(&mut db, &id, &reason, initiator).await?;
    if changed {
        let mut event = state.event("session_revoked", Outcome::Info);
        event.user = Some(session.email);
        event.session = Some(id.clone());
        event.reason = Some(format!("{by}: {reason}"));
        state.emit(event).await?;
    }
    Ok(Json(json!({"id": id, "revoked": true, "changed": changed})))
}
