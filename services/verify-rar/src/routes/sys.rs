//! `sys/health` (GET and HEAD, unauthenticated): 200 while the database answers, 503 ("sealed")
//! when it does not, so a load balancer stops sending us work we cannot do.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};

use crate::{state::AppState, vault};

pub async fn health(State(state): State<AppState>) -> Response {
    let db_ok = match state.pool.get().await {
        Ok(c) => c.simple_query("SELECT 1").await.is_ok(),
        Err(_) => false,
    };
    let status = if db_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(vault::health_body(!db_ok))).into_response()
}
