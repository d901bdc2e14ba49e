//! Discovery: OpenID Connect and RFC 8414 metadata, the JWKS, and health.

use axum::{Json, extract::State, response::IntoResponse};
use serde_json::{Value, json};

use crate::{exchange, state::AppState};

/// The same document answers both discovery paths; `issuer` is exactly the URL clients use.
pub async fn metadata(State(state): State<AppState>) -> Json<Value> {
    let iss = &state.issuer.url;
    Json(json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/authorize"),
        "token_endpoint": format!("{iss}/token"),
        "jwks_uri": format!("{iss}/jwks"),
        "userinfo_endpoint": format!("{iss}/userinfo"),
        "introspection_endpoint": format!("{iss}/introspect"),
        "revocation_endpoint": format!("{iss}/revoke"),
        "backchannel_authentication_endpoint": format!("{iss}/bc-authorize"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", exchange::GRANT_TYPE, crate::routes::ciba::GRANT_TYPE],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "subject_types_supported": ["public"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "sid", "email", "name"],
        "acr_values_supported": [exchange::ACR_PASSWORD, exchange::ACR_PUSH],
        "authorization_details_types_supported": kit::rar::supported_types(),
        "backchannel_token_delivery_modes_supported": ["poll"],
        "backchannel_user_code_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
    }))
}

pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(axum::http::header::CACHE_CONTROL, "public, max-age=300")],
        Json(kit::jwks::publish([state.issuer.key()])),
    )
}

/// Ready when the database answers.
pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let ok = match state.pool.get().await {
        Ok(c) => c.query_one("SELECT 1", &[]).await.is_ok(),
        Err(_) => false,
    };
    let status = if ok {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"status": if ok { "ok" } else { "database unavailable" }, "service": "idp"})),
    )
}
