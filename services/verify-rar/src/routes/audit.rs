//! `GET /v1/sys/audit-log?jti=<jti>` (admin only): this instance's audit lines about one token,
//! with the whole hash chain verified, for forensics (the UI's jti join).
//!
//! Not a Vault path (Vault's `sys/audit` configures audit devices); it lives under `sys/`
//! because it is about the issuer itself, not a secrets engine.

use std::collections::HashMap;

use axum::{
    Json,
    extract::{Query, State},
    http::HeaderMap,
};
use serde_json::{Value, json};

use super::{Caller, caller};
use crate::{
    audit,
    error::{Error, Result},
    state::AppState,
};

pub async fn lines(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>> {
    if !matches!(caller(&state, &headers).await?, Caller::Admin) {
        return Err(Error::PermissionDenied(
            "the audit log is the admin's".into(),
        ));
    }
    let jti = q
        .get("jti")
        .filter(|j| !j.is_empty() && j.len() <= 128)
        .ok_or_else(|| Error::BadRequest("jti: a token id is required".into()))?
        .clone();
    let path = state.config.audit_log.clone();
    let answer = tokio::task::spawn_blocking(move || -> anyhow::Result<Value> {
        let chain = match audit::verify(&path)? {
            Ok(lines) => json!({"intact": true, "lines": lines}),
            Err(b) => json!({"intact": false, "broken_at": b.line, "reason": b.reason}),
        };
        let matching = audit::lines_about(&path, &jti)?;
        Ok(json!({"instance_log": path.display().to_string(), "chain": chain, "lines": matching}))
    })
    .await
    .map_err(anyhow::Error::from)??;
    Ok(Json(answer))
}
