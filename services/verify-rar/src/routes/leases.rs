//! `sys/leases/{lookup,renew,revoke}`: by the token that obtained the lease, or the admin.

use axum::{
    extract::{Path, State},
    http::HeaderMap,
    response::Response,
};
use kit::events::Outcome;
use serde::Deserialize;
use serde_json::json;

use super::caller;
use crate::{
    error::{Error, Result},
    leases,
    state::AppState,
    vault::{self, Body, Envelope},
};

#[derive(Debug, Deserialize)]
pub struct LeaseRequest {
    #[serde(default)]
    lease_id: Option<String>,
    /// Seconds; hvac sends `null` when none is given.
    #[serde(default)]
    increment: Option<i64>,
    /// Accepted; revocation is always synchronous (Vault's default), answered with 204.
    #[serde(default)]
    #[expect(
        dead_code,
        reason = "accepted for Vault compatibility; revocation is always synchronous"
    )]
    sync: Option<bool>,
}

fn lease_id(req: &LeaseRequest) -> Result<&str> {
    req.lease_id
        .as_deref()
        .filter(|l| !l.is_empty())
        .ok_or_else(|| Error::BadRequest("lease_id must be specified".into()))
}

pub async fn lookup(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(req): Body<LeaseRequest>,
) -> Result<Envelope> {
    let who = caller(&state, &headers).await?;
    let lease = leases::lookup(&state, lease_id(&req)?, who.actor()).await?;
    let now = kit::now_secs();
    Ok(Envelope::data(json!({
        "id": lease.lease_id,
        "issue_time": vault::rfc3339(lease.issued_at),
        "expire_time": vault::rfc3339(lease.expires_at),
        "last_renewal": lease.last_renewal.map(vault::rfc3339),
        "renewable": lease.expires_at < lease.max_expires_at,
        "ttl": (lease.expires_at - now).max(0),
    })))
}

async fn do_renew(
    state: AppState,
    headers: HeaderMap,
    id: &str,
    increment: Option<i64>,
) -> Result<Envelope> {
    let who = caller(&state, &headers).await?;
    let lease = leases::renew(&state, id, who.actor(), increment).await?;
    let mut e = state.event("lease_renewed", Outcome::Info);
    e.lease = Some(lease.lease_id.clone());
    e.pg_user = Some(lease.pg_user.clone());
    e.jti = lease.jti.clone();
    e.session = lease.sid.clone();
    state.record(&e).await?;
    Ok(Envelope {
        lease_id: lease.lease_id,
        renewable: lease.expires_at < lease.max_expires_at,
        lease_duration: u64::try_from(lease.expires_at - kit::now_secs()).unwrap_or(0),
        ..Envelope::data(serde_json::Value::Null)
    })
}

pub async fn renew(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(req): Body<LeaseRequest>,
) -> Result<Envelope> {
    let id = lease_id(&req)?.to_owned();
    do_renew(state, headers, &id, req.increment).await
}

pub async fn renew_path(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(req): Body<LeaseRequest>,
) -> Result<Envelope> {
    do_renew(state, headers, &id, req.increment).await
}

async fn do_revoke(state: AppState, headers: HeaderMap, id: &str) -> Result<Response> {
    let who = caller(&state, &headers).await?;
    // `leases::revoke` records the revocation (`lease_revoked`) before it commits it.
    leases::revoke(&state, id, who.actor(), "revoked by client").await?;
    Ok(vault::no_content())
}

pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(req): Body<LeaseRequest>,
) -> Result<Response> {
    let id = lease_id(&req)?.to_owned();
    do_revoke(state, headers, &id).await
}

pub async fn revoke_path(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    do_revoke(state, headers, &id).await
}
