//! `auth/jwt/login`: a delegated token in, a Vault token out; and `auth/token/lookup-self`.

use std::time::Instant;

use axum::{extract::State, http::HeaderMap};
use kit::{events::Outcome, rar};
use serde::Deserialize;
use serde_json::json;

use super::{Caller, caller};
use crate::{
    config::JWT_MOUNT,
    error::{Error, Result},
    idp,
    state::AppState,
    store::{self, TokenRecord, random_alnum},
    vault::{Body, Envelope},
};

#[derive(Debug, Deserialize)]
pub struct LoginRequest {
    #[serde(default)]
    jwt: Option<String>,
    #[serde(default)]
    role: Option<String>,
}

/// Validates the delegated JWT (signature, `typ`, issuer, audience, expiry, RAR, a
/// `vault:path_access` entry for this mount) and that its session is alive, then mints a
/// Vault token that carries the token's RAR. Refusals are 400, as Vault's JWT plugin answers.
pub async fn login(
    State(state): State<AppState>,
    Body(req): Body<LoginRequest>,
) -> Result<Envelope> {
    let started = Instant::now();
    let jwt = req
        .jwt
        .filter(|j| !j.is_empty())
        .ok_or_else(|| Error::BadRequest("missing jwt".into()))?;
    let refuse = |reason: String, claims: Option<&kit::claims::AccessClaims>| {
        let mut e = state.event("login_denied", Outcome::Denied);
        e.reason = Some(reason.clone());
        if let Some(c) = claims {
            e.user = Some(c.email.clone().unwrap_or_else(|| c.sub.clone()));
            e.session = c.sid.clone();
            e.jti = Some(c.jti.clone());
            e.actor_chain = c.chain_names();
        }
        (e.timed(started), reason)
    };
    let delegated = match idp::verify(&state, &jwt).await {
        Ok(d) => d,
        Err(why) => {
            let (e, reason) = refuse(why, None);
            state.record_denial(&e).await;
            return Err(Error::BadRequest(format!("login refused: {reason}")));
        }
    };
    let c = &delegated.claims;
    if !idp::session_active(&state, &jwt).await? {
        let (e, reason) = refuse("session is not active".into(), Some(c));
        state.record_denial(&e).await;
        return Err(Error::BadRequest(format!("login refused: {reason}")));
    }
    let now = kit::now_secs();
    let expires_at = c.exp.min(now + state.config.token_ttl_secs);
    let token = format!("hvs.{}", random_alnum(24));
    let record = TokenRecord {
        accessor: random_alnum(24),
        jti: c.jti.clone(),
        sid: c.sid.clone(),
        sub: c.sub.clone(),
        email: c.email.clone(),
        approval_id: c.approval_id.clone(),
        actor_chain: c.chain_names(),
        login_role: req.role.clone(),
        jwt,
        rar: delegated.rar.clone(),
        paths: delegated.paths.clone(),
        issued_at: now,
        expires_at,
    };
    store::insert_token(&state.pool, &token, &record).await?;

    let mut e = state.event("login", Outcome::Allowed);
    e.user = Some(record.user());
    e.session = record.sid.clone();
    e.jti = Some(record.jti.clone());
    e.approval_id = record.approval_id.clone();
    e.actor_chain = record.actor_chain.clone();
    e.rar_summary = Some(rar::summarize(&record.rar));
    e.fingerprint = Some(rar::fingerprint(&record.rar));
    state.record(&e.timed(started)).await?;

    let mut metadata = serde_json::Map::new();
    metadata.insert("role".into(), json!(req.role.unwrap_or_default()));
    metadata.insert("sub".into(), json!(record.sub));
    metadata.insert("jti".into(), json!(record.jti));
    if let Some(sid) = &record.sid {
        metadata.insert("sid".into(), json!(sid));
    }
    if let Some(email) = &record.email {
        metadata.insert("email".into(), json!(email));
    }
    let policies: Vec<String> = record.paths.iter().map(|p| format!("read:{p}")).collect();
    Ok(Envelope::auth(json!({
        "client_token": token,
        "accessor": record.accessor,
        "policies": policies,
        "token_policies": policies,
        "metadata": metadata,
        "lease_duration": expires_at - now,
        "renewable": false,
        "entity_id": "",
        "token_type": "service",
        "orphan": true,
        "mfa_requirement": null,
        "num_uses": 0,
    })))
}

/// `auth/token/lookup-self`, with every field `vaultrs` requires.
pub async fn lookup_self(State(state): State<AppState>, headers: HeaderMap) -> Result<Envelope> {
    let now = kit::now_secs();
    let data = match caller(&state, &headers).await? {
        Caller::Admin => json!({
            "accessor": "", "creation_time": now, "creation_ttl": 0, "display_name": "admin",
            "entity_id": "", "expire_time": null, "explicit_max_ttl": 0, "id": "", "meta": null,
            "num_uses": 0, "orphan": true, "path": "admin", "policies": ["root"], "ttl": 0, "type": "service",
        }),
        Caller::Token(t) => {
            let name = t.email.clone().unwrap_or_else(|| t.sub.clone());
            json!({
                "accessor": t.accessor,
                "creation_time": t.issued_at,
                "creation_ttl": t.expires_at - t.issued_at,
                "display_name": format!("{JWT_MOUNT}-{name}"),
                "entity_id": "",
                "expire_time": crate::vault::rfc3339(t.expires_at),
                "explicit_max_ttl": 0,
                "id": "",
                "issue_time": crate::vault::rfc3339(t.issued_at),
                "meta": {"sub": t.sub, "jti": t.jti},
                "num_uses": 0,
                "orphan": true,
                "path": format!("auth/{JWT_MOUNT}/login"),
                "policies": t.paths.iter().map(|p| format!("read:{p}")).collect::<Vec<_>>(),
                "renewable": false,
                "ttl": (t.expires_at - now).max(0),
                "type": "service",
            })
        }
    };
    Ok(Envelope::data(data))
}
