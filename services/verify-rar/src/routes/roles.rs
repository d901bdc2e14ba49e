//! The role admin API under `/v1/verify-rar/roles`, for the holder of `VR_ADMIN_TOKEN` only.

use axum::{
    extract::{Path, Query, State},
    http::HeaderMap,
    response::Response,
};
use kit::events::Outcome;
use serde_json::json;

use super::{Caller, caller};
use crate::{
    error::{Error, Result},
    roles::{RoleConfig, valid_role_name},
    state::AppState,
    store,
    vault::{self, Body, Envelope},
};

async fn admin(state: &AppState, headers: &HeaderMap) -> Result<()> {
    match caller(state, headers).await? {
        Caller::Admin => Ok(()),
        Caller::Token(_) => Err(Error::PermissionDenied(
            "role administration needs the admin token".into(),
        )),
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    list: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Envelope> {
    admin(&state, &headers).await?;
    if q.list.as_deref() != Some("true") {
        return Err(Error::MethodNotAllowed);
    }
    let keys = store::list_roles(&state.pool).await?;
    if keys.is_empty() {
        return Err(Error::NotFound);
    }
    Ok(Envelope::data(json!({ "keys": keys })))
}

pub async fn read(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Envelope> {
    admin(&state, &headers).await?;
    let role = store::get_role(&state.pool, &name)
        .await?
        .ok_or(Error::NotFound)?;
    Ok(Envelope::data(
        serde_json::to_value(role).map_err(anyhow::Error::from)?,
    ))
}

pub async fn write(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Body(mut role): Body<RoleConfig>,
) -> Result<Response> {
    admin(&state, &headers).await?;
    role.name = name;
    role.validate()
        .map_err(|e| Error::BadRequest(format!("{e:#}")))?;
    store::put_role(&state.pool, &role, "api").await?;
    let mut e = state.event("role_written", Outcome::Info);
    e.tool = Some(format!("verify-rar/roles/{}", role.name));
    state.record(&e).await?;
    Ok(vault::no_content())
}

pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response> {
    admin(&state, &headers).await?;
    if !valid_role_name(&name) {
        return Err(Error::NotFound);
    }
    store::delete_role(&state.pool, &name).await?;
    let mut e = state.event("role_deleted", Outcome::Info);
    e.tool = Some(format!("verify-rar/roles/{name}"));
    state.record(&e).await?;
    Ok(vault::no_content())
}
