//! The idp's own security events, for forensics (by `jti`) and for the UI's history.

use axum::{Json, extract::State};
use serde_json::Value;

use crate::{
    auth::Admin,
    error::{ApiQuery, Error},
    state::AppState,
};

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    jti: Option<String>,
    session: Option<String>,
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    100
}

/// Newest first.
pub async fn list(
    State(state): State<AppState>,
    _: Admin,
    ApiQuery(f): ApiQuery<Filter>,
) -> Result<Json<Vec<Value>>, Error> {
    let db = state.pool.get().await?;
    let rows = db
        .query(
            "SELECT body FROM events WHERE ($1::text IS NULL OR jti = $1) AND ($2::text IS NULL OR session = $2)
             ORDER BY at DESC LIMIT $3",
            &[&f.jti, &f.session, &f.limit.clamp(1, 1000)],
        )
        .await?;
    Ok(Json(rows.iter().map(|r| r.get(0)).collect()))
}
