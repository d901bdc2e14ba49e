//! `/token`: one endpoint, four grants. Authorization code (with PKCE) and refresh for the web
//! app; token exchange for agents ([`crate::exchange`]); CIBA polling for approvals
//! ([`crate::routes::ciba`]). Every answer is `Cache-Control: no-store`.

use axum::{Json, extract::State, http::HeaderMap, response::IntoResponse};
use base64::Engine as _;
use kit::{
    claims::{AccessClaims, Audience, MayAct},
    events::Outcome,
};
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::{
    auth::{self, Caller},
    clients::Client,
    error::{Error, OAuthError},
    exchange,
    routes::{ciba, form::Params},
    state::AppState,
    store::{
        codes::{self, Refresh, RefreshGrant},
        outbox::RevokedBy,
        sessions::{self, Session},
        users,
    },
};

pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    p: Params,
) -> Result<impl IntoResponse, Error> {
    let grant = p.require("grant_type")?;
    let caller = auth::client(&state, &headers, &p).await?;
    let body = match grant {
        "authorization_code" => authorization_code(&state, &p, caller).await?,
        "refresh_token" => refresh(&state, &p, caller).await?,
        exchange::GRANT_TYPE => exchange::exchange(&state, &p, caller).await?,
        ciba::GRANT_TYPE => ciba::poll(&state, &p, caller).await?,
        other => {
            return Err(OAuthError::new(
                "unsupported_grant_type",
                format!("grant_type {other} is not supported"),
            )
            .into());
        }
    };
    Ok((
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Json(body),
    ))
}

/// A configured client allowed to use `grant`, or the matching OAuth error.
fn client_for(caller: Option<Caller>, grant: &str) -> Result<Client, OAuthError> {
    match caller {
        Some(Caller::Client(c)) if c.allows_grant(grant) => Ok(c),
        Some(_) => Err(OAuthError::new(
            "unauthorized_client",
            format!("this client may not use {grant}"),
        )),
        None => Err(OAuthError::new(
            "invalid_client",
            "client authentication is required",
        )),
    }
}

async fn authorization_code(
    state: &AppState,
    p: &Params,
    caller: Option<Caller>,
) -> Result<Value, Error> {
    let client = client_for(caller, "authorization_code")?;
    let code = p.require("code")?;
    let verifier = p.require("code_verifier")?;
    let redirect_uri = p.require("redirect_uri")?;
    let db = state.pool.get().await?;
    let invalid = |d: &str| Error::from(OAuthError::new("invalid_grant", d));
    let grant = codes::redeem_code(&db, code)
        .await?
        .ok_or_else(|| invalid("the code is unknown, expired or already used"))?;
    if grant.client_id != client.id || grant.redirect_uri != redirect_uri {
        return Err(invalid(
            "the code was issued to another client or redirect_uri",
        ));
    }
    if !pkce_matches(verifier, &grant.code_challenge) {
        return Err(invalid("code_verifier does not match the code_challenge"));
    }
    let session = live_session(&db, &grant.session_id).await?;
    let user = users::find(&db, &grant.user_id)
        .await?
        .ok_or_else(|| invalid("the user no longer exists"))?;
    let aud = client
        .audiences
        .first()
        .cloned()
        .unwrap_or_else(|| state.issuer.url.clone());
    let (access, claims) = mint_user_token(state, &client, &session, &grant.scope, &aud)?;
    let refresh = codes::create_refresh(
        &db,
        &RefreshGrant {
            session_id: session.id.clone(),
            client_id: client.id.clone(),
            user_id: user.id.clone(),
            scope: grant.scope.clone(),
        },
        state.config.session_ttl,
    )
    .await?;
    let mut body = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": state.config.access_token_ttl.as_secs(),
        "refresh_token": refresh,
        "scope": grant.scope,
    });
    if grant.scope.split(' ').any(|s| s == "openid") {
        let id_token = state.issuer.sign_jwt(&json!({
            "iss": state.issuer.url, "sub": user.id, "aud": client.id, "iat": claims.iat, "exp": claims.exp,
            "auth_time": session.auth_time, "nonce": grant.nonce, "sid": session.id, "acr": session.acr,
            "email": user.email, "name": user.display_name,
        }))?;
        body["id_token"] = json!(id_token);
    }
    let mut event = state.event("token_issued", Outcome::Allowed);
    event.token = Some(state.issuer.decoded(&claims));
    event.user = Some(user.email);
    event.session = Some(session.id);
    event.jti = Some(claims.jti);
    event.actor_chain = vec![client.id];
    state.emit(event).await?;
    Ok(body)
}

/// RFC 7636: BASE64URL(SHA256(verifier)) == challenge; the verifier is 43 to 128 unreserved
/// characters.
fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let ok_chars = verifier
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !(43..=128).contains(&verifier.len()) || !ok_chars {
        return false;
    }
    let digest = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    subtle::ConstantTimeEq::ct_eq(digest.as_bytes(), challenge.as_bytes()).into()
}

async fn live_session(db: &tokio_postgres::Client, id: &str) -> Result<Session, Error> {
    match sessions::get(db, id).await? {
        Some(s) if s.revoked_at.is_none() && s.expires_at > kit::now_secs() => Ok(s),
        _ => Err(OAuthError::new("invalid_grant", "the session has ended").into()),
    }
}

/// Refresh with rotation: each refresh token works once. Presenting a rotated one means it was
/// copied, so the whole session is revoked. `resource` (RFC 8707) picks one of the client's
/// audiences, which is how the web app gets the user's own token for the idp's APIs.
async fn refresh(state: &AppState, p: &Params, caller: Option<Caller>) -> Result<Value, Error> {
    let client = client_for(caller, "refresh_token")?;
    let presented = p.require("refresh_token")?;
    let mut db = state.pool.get().await?;
    let invalid = |d: &str| Error::from(OAuthError::new("invalid_grant", d));
    let grant = match codes::rotate_refresh(&db, presented).await? {
        Refresh::Rotated(g) => g,
        Refresh::Reused(g) => {
            sessions::revoke(
                &mut db,
                &g.session_id,
                "refresh token reused",
                RevokedBy::System,
            )
            .await?;
            let mut event = state.event("session_revoked", Outcome::Denied);
            event.session = Some(g.session_id);
            event.reason =
                Some("refresh_token_reused: a rotated refresh token was presented again".into());
            state.emit_best_effort(event).await;
            return Err(invalid(
                "the refresh token was already used; the session has been revoked",
            ));
        }
        Refresh::Unknown => return Err(invalid("the refresh token is unknown or expired")),
    };
    if grant.client_id != client.id {
        return Err(invalid("the refresh token belongs to another client"));
    }
    let aud = match p.get("resource").or(p.get("audience")) {
        Some(r) if client.audiences.iter().any(|a| a == r) => r.to_owned(),
        Some(r) => {
            return Err(OAuthError::new(
                "invalid_target",
                format!("this client cannot get tokens for {r}"),
            )
            .into());
        }
        None => client
            .audiences
            .first()
            .cloned()
            .unwrap_or_else(|| state.issuer.url.clone()),
    };
    let session = live_session(&db, &grant.session_id).await?;
    let (access, claims) = mint_user_token(state, &client, &session, &grant.scope, &aud)?;
    let next = codes::create_refresh(&db, &grant, state.config.session_ttl).await?;
    let mut event = state.event("token_issued", Outcome::Allowed);
    event.token = Some(state.issuer.decoded(&claims));
    event.user = Some(session.email.clone());
    event.session = Some(session.id.clone());
    event.jti = Some(claims.jti.clone());
    event.actor_chain = vec![client.id.clone()];
    state.emit(event).await?;
    Ok(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": state.config.access_token_ttl.as_secs(),
        "refresh_token": next,
        "scope": grant.scope,
    }))
}

/// A user's own access token. When it is for the client's delegate (the concierge), it names
/// that delegate in `may_act`: only the declared actor may exchange it.
fn mint_user_token(
    state: &AppState,
    client: &Client,
    session: &Session,
    scope: &str,
    aud: &str,
) -> anyhow::Result<(String, AccessClaims)> {
    let now = kit::now_secs();
    let claims = AccessClaims {
        iss: state.issuer.url.clone(),
        sub: session.user_id.clone(),
        aud: Audience::one(aud),
        iat: now,
        exp: (now + state.config.access_token_ttl.as_secs() as i64).min(session.expires_at),
        jti: kit::random_id(16),
        sid: Some(session.id.clone()),
        client_id: Some(client.id.clone()),
        scope: Some(scope.to_owned()),
        email: Some(session.email.clone()),
        acr: Some(session.acr.clone()),
        auth_time: Some(session.auth_time),
        act: None,
        may_act: client
            .may_act
            .as_ref()
            .filter(|m| *m == aud)
            .map(|m| MayAct { sub: m.clone() }),
        authorization_details: None,
        approval_id: None,
    };
    Ok((state.issuer.sign_access(&claims)?, claims))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(pkce_matches(
            verifier,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!pkce_matches(
            verifier,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"
        ));
        assert!(!pkce_matches(
            "short",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
    }
}
