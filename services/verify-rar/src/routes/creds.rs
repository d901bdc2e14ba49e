//! `GET /v1/verify-rar/creds/<role>`: the token's business RAR, through the role's mapping, to a
//! Postgres role that exists for this one transaction.

use std::time::Instant;

use axum::{
    extract::{Path, State},
    http::HeaderMap,
};
use kit::{
    events::{Outcome, SecurityEvent},
    rar,
};
use serde_json::json;

use super::{Caller, caller};
use crate::{
    config::MOUNT,
    error::{Error, Result},
    idp, leases,
    state::AppState,
    store::TokenRecord,
    vault::Envelope,
};

fn event_for(state: &AppState, token: &TokenRecord, path: &str, outcome: Outcome) -> SecurityEvent {
    // The audit vocabulary of the issue: `cred_issued` when granted, `cred_denied` otherwise.
    let kind = if outcome == Outcome::Allowed {
        "cred_issued"
    } else {
        "cred_denied"
    };
    let mut e = state.event(kind, outcome);
    e.user = Some(token.user());
    e.session = token.sid.clone();
    e.jti = Some(token.jti.clone());
    e.approval_id = token.approval_id.clone();
    e.actor_chain = token.actor_chain.clone();
    e.tool = Some(path.to_owned());
    e.rar_summary = Some(rar::summarize(&token.rar));
    e.fingerprint = Some(rar::fingerprint(&token.rar));
    e
}

pub async fn creds(
    State(state): State<AppState>,
    Path(role_name): Path<String>,
    headers: HeaderMap,
) -> Result<Envelope> {
    let started = Instant::now();
    let Caller::Token(token) = caller(&state, &headers).await? else {
        return Err(Error::PermissionDenied(
            "credentials are issued only to delegated tokens".into(),
        ));
    };
    let path = format!("{MOUNT}/creds/{role_name}");
    let deny = |reason: String| {
        let mut e = event_for(&state, &token, &path, Outcome::Denied);
        e.reason = Some(reason);
        e.timed(started)
    };
    if !token.paths.contains(&path) {
        let e = deny(format!("vault:path_access does not include {path}"));
        state.record_denial(&e).await;
        return Err(Error::PermissionDenied(format!(
            "token may not read {path}"
        )));
    }
    // Two independent questions, asked at once: the role's configuration (our store) and
    // whether the session is alive (the idp). Both answers are checked, in this order, before
    // anything is created.
    let (role, active) = tokio::join!(
        crate::store::get_role(&state.pool, &role_name),
        idp::session_active(&state, &token.jwt)
    );
    let role = match role? {
        Some(r) => r,
        None => {
            state
                .record_denial(&deny(format!("unknown role {role_name}")))
                .await;
            return Err(Error::BadRequest(format!("unknown role: {role_name}")));
        }
    };
    if !active? {
        state
            .record_denial(&deny("session is no longer active".into()))
            .await;
        return Err(Error::PermissionDenied(
            "session is no longer active".into(),
        ));
    }
    let business: Vec<&rar::AuthorizationDetail> = token
        .rar
        .iter()
        .filter(|d| !d.is_resource_access())
        .collect();
    let Some((mapping, detail)) = business.iter().find_map(|d| {
        role.mapping(&d.kind, d.action().unwrap_or_default())
            .map(|m| (m, *d))
    }) else {
        let tried: Vec<String> = business
            .iter()
            .map(|d| format!("{}|{}", d.kind, d.action().unwrap_or("?")))
            .collect();
        let tried = if tried.is_empty() {
            "no business authorization_details".to_owned()
        } else {
            tried.join(", ")
        };
        state
            .record_denial(&deny(format!(
                "no rar_mapping of role {role_name} matches {tried}"
            )))
            .await;
        return Err(Error::PermissionDenied(format!(
            "no rar_mapping of role {role_name} matches {tried}"
        )));
    };

    let issued = match leases::issue(&state, &role, mapping, &token, detail).await {
        Ok(i) => i,
        Err(err) => {
            let mut e = event_for(&state, &token, &path, Outcome::Error);
            e.reason = Some(err.to_string());
            state.record_denial(&e.timed(started)).await;
            return Err(err);
        }
    };
    let mut e = event_for(&state, &token, &path, Outcome::Allowed);
    e.lease = Some(issued.lease_id.clone());
    e.pg_user = Some(issued.username.clone());
    e.rar_summary = Some(detail.summary());
    e.reason = Some(format!("grant {} bound in the ledger", issued.grant_id));
    if let Err(err) = state.record(&e.timed(started)).await {
        // No credential leaves without its audit line.
        leases::revoke(
            &state,
            &issued.lease_id,
            leases::Actor::Admin,
            "audit record failed",
        )
        .await?;
        return Err(Error::Internal(err));
    }
    Ok(Envelope {
        lease_id: issued.lease_id,
        renewable: true,
        lease_duration: issued.ttl,
        mount_type: "database".into(),
        ..Envelope::data(json!({"username": issued.username, "password": issued.password}))
    })
}
