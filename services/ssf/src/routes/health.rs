//! `GET /health`: the launcher's readiness probe. Ready means the database answers.

use axum::{Json, extract::State};
use serde_json::{Value, json};

use crate::{error::Error, state::AppState};

pub async fn health(State(state): State<AppState>) -> Result<Json<Value>, Error> {
    let db = state.pool.get().await?;
    db.query_one("SELECT 1", &[]).await?;
    Ok(Json(
        json!({"status": "ok", "service": crate::state::SERVICE}),
    ))
}
