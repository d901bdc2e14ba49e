//! RFC 7662 introspection, RFC 7009 revocation, and OIDC userinfo.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, header},
    response::IntoResponse,
};
use kit::events::Outcome;
use serde_json::{Value, json};

use crate::{
    auth::{self, Caller},
    error::{Error, OAuthError},
    routes::form::Params,
    state::AppState,
    store::{codes, replay, users},
};

async fn authenticated(state: &AppState, headers: &HeaderMap, p: &Params) -> Result<Caller, Error> {
    auth::client(state, headers, p).await?.ok_or_else(|| {
        OAuthError::new("invalid_client", "client authentication is required").into()
    })
}

/// `active: true` only for our own unexpired, unrevoked access token whose session is alive;
/// then the claims a resource server decides on: `act`, `authorization_details`, `sid`, `acr`.
pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    p: Params,
) -> Result<impl IntoResponse, Error> {
    authenticated(&state, &headers, &p).await?;
    let token = p.require("token")?;
    let inactive = Json(json!({"active": false}));
    let Ok(claims) = state.issuer.verify_access(token) else {
        return Ok(inactive);
    };
    let db = state.pool.get().await?;
    if !replay::token_is_live(&db, &claims.jti, claims.sid.as_deref()).await? {
        return Ok(inactive);
    }
    let mut body = serde_json::to_value(&claims).map_err(anyhow::Error::from)?;
    body["active"] = json!(true);
    body["token_type"] = json!("Bearer");
    Ok(Json(body))
}

/// Revokes an access token (by its `jti`, until it would have expired) or a refresh token.
/// Always 200, whether or not the token was known (RFC 7009 §2.2).
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    p: Params,
) -> Result<impl IntoResponse, Error> {
    let caller = authenticated(&state, &headers, &p).await?;
    let token = p.require("token")?;
    let db = state.pool.get().await?;
    let mut event = state.event("token_revoked", Outcome::Info);
    if let Ok(claims) = state.issuer.verify_access(token) {
        // A client may revoke the tokens issued to it, and an agent the tokens it holds.
        let owns =
            claims.client_id.as_deref() == Some(caller.id()) || claims.aud.contains(caller.id());
        if !owns {
            return Err(
                OAuthError::new("unauthorized_client", "this token was not issued to you").into(),
            );
        }
        replay::revoke_token(&db, &claims.jti, claims.exp).await?;
        event.jti = Some(claims.jti);
        event.session = claims.sid;
        event.user = claims.email;
        state.emit(event).await?;
    } else if let Some(sid) = codes::revoke_refresh(&db, token).await? {
        event.session = Some(sid);
        event.reason = Some("refresh token revoked".into());
        state.emit(event).await?;
    }
    Ok(Json(json!({})))
}

pub async fn userinfo(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, Error> {
    let challenge = |e: &str| {
        Error::api(
            axum::http::StatusCode::UNAUTHORIZED,
            "invalid_token",
            e.to_owned(),
        )
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| challenge("a bearer token is required"))?;
    let claims = state
        .issuer
        .verify_access(token.trim())
        .map_err(|e| challenge(&e.to_string()))?;
    if claims.act.is_some() {
        return Err(challenge("delegated tokens cannot read userinfo"));
    }
    let db = state.pool.get().await?;
    if !replay::token_is_live(&db, &claims.jti, claims.sid.as_deref()).await? {
        return Err(challenge("token revoked or session ended"));
    }
    let user = users::find(&db, &claims.sub)
        .await?
        .ok_or_else(|| challenge("unknown user"))?;
    Ok(Json(
        json!({"sub": user.id, "email": user.email, "email_verified": true, "name": user.display_name}),
    ))
}
