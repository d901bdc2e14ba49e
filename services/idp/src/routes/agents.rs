//! The agent registry's admin API: list, read, register or update, suspend and reactivate.

use axum::{
    Json,
    extract::{Path, State},
};
use kit::events::Outcome;
use serde_json::{Value, json};

use crate::{
    auth::Admin,
    error::{ApiJson, Error},
    registry::{self, Agent, Status},
    state::AppState,
};

pub async fn list(State(state): State<AppState>, _: Admin) -> Result<Json<Vec<Agent>>, Error> {
    let db = state.pool.get().await?;
    Ok(Json(registry::list(&db).await?))
}

pub async fn get(
    State(state): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
) -> Result<Json<Agent>, Error> {
    if !super::plain_id(&name) {
        return Err(Error::not_found("no such agent"));
    }
    let db = state.pool.get().await?;
    registry::by_name(&db, &name)
        .await?
        .map(Json)
        .ok_or_else(|| Error::not_found("no such agent"))
}

pub async fn put(
    State(state): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Agent>, Error> {
    let agent: Agent = serde_json::from_value(body)
        .map_err(|e| Error::bad_request(format!("invalid agent: {e}")))?;
    if agent.name != name {
        return Err(Error::bad_request("the body's name must match the path"));
    }
    let db = state.pool.get().await?;
    registry::upsert(&db, &agent, true)
        .await
        .map_err(|e| Error::bad_request(format!("{e:#}")))?;
    let mut event = state.event("agent_registered", Outcome::Info);
    event.actor_chain = vec![agent.name.clone()];
    state.emit(event).await?;
    Ok(Json(agent))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    status: Status,
}

pub async fn set_status(
    State(state): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<StatusBody>,
) -> Result<Json<Value>, Error> {
    if !super::plain_id(&name) {
        return Err(Error::not_found("no such agent"));
    }
    let db = state.pool.get().await?;
    if !registry::set_status(&db, &name, body.status).await? {
        return Err(Error::not_found("no such agent"));
    }
    let mut event = state.event(
        if body.status == Status::Active {
            "agent_activated"
        } else {
            "agent_suspended"
        },
        Outcome::Info,
    );
    event.actor_chain = vec![name.clone()];
    state.emit(event).await?;
    Ok(Json(json!({"name": name, "status": body.status})))
}
