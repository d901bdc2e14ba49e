//! The HTTP surface: Vault's paths, routes next to their handlers, and who is calling.

use axum::{
    Router,
    http::HeaderMap,
    routing::{get, post},
};
use subtle::ConstantTimeEq as _;

use crate::{
    error::{Error, Result},
    state::AppState,
    store::{self, TokenRecord},
    vault,
};

mod audit;
mod auth;
mod creds;
mod leases;
mod roles;
mod sys;

/// Every route of the issuer. PUT and POST are synonyms, as in Vault; `get` also answers HEAD.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/auth/jwt/login", post(auth::login).put(auth::login))
        .route("/v1/auth/token/lookup-self", get(auth::lookup_self))
        .route("/v1/verify-rar/creds/{role}", get(creds::creds))
        .route("/v1/verify-rar/roles", get(roles::list))
        .route(
            "/v1/verify-rar/roles/{name}",
            get(roles::read)
                .post(roles::write)
                .put(roles::write)
                .delete(roles::delete),
        )
        .route(
            "/v1/sys/leases/lookup",
            post(leases::lookup).put(leases::lookup),
        )
        .route(
            "/v1/sys/leases/renew",
            post(leases::renew).put(leases::renew),
        )
        .route(
            "/v1/sys/leases/renew/{*lease_id}",
            post(leases::renew_path).put(leases::renew_path),
        )
        .route(
            "/v1/sys/leases/revoke",
            post(leases::revoke).put(leases::revoke),
        )
        .route(
            "/v1/sys/leases/revoke/{*lease_id}",
            post(leases::revoke_path).put(leases::revoke_path),
        )
        .route("/v1/sys/health", get(sys::health))
        .route("/v1/sys/audit-log", get(audit::lines))
        .fallback(|| async { Error::NotFound })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .with_state(state)
}

/// Who sent a request, from its Vault token.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The holder of `VR_ADMIN_TOKEN`.
    Admin,
    Token(Box<TokenRecord>),
}

impl Caller {
    fn actor(&self) -> crate::leases::Actor<'_> {
        match self {
            Self::Admin => crate::leases::Actor::Admin,
            Self::Token(t) => crate::leases::Actor::Token(&t.accessor),
        }
    }
}

/// The caller of a request; a missing, unknown or expired token is 403, as in Vault.
pub async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller> {
    let token = vault::token_of(headers)
        .ok_or_else(|| Error::PermissionDenied("missing client token".into()))?;
    if let Some(admin) = &state.config.admin_token
        && bool::from(admin.as_bytes().ct_eq(token.as_bytes()))
    {
        return Ok(Caller::Admin);
    }
    match store::find_token(&state.pool, token).await? {
        Some(t) => Ok(Caller::Token(Box::new(t))),
        None => Err(Error::PermissionDenied("invalid or expired token".into())),
    }
}
