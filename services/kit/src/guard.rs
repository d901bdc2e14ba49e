//! The resource-server side of a delegated token: what every service that accepts our tokens
//! (the issuer, the SCIM and Graph APIs, every agent) checks before it acts.
//!
//! A token passes when it is signed by the idp (JWKS, ES256 only), names the idp as issuer,
//! is addressed to this service, is unexpired, and its session is alive. Liveness is asked of
//! the idp (RFC 7662 introspection) on every request: a revoked session is refused at the very
//! next call, with no cache to wait out. A session the signals transmitter has reported revoked
//! ([`Guard::revoke_session`]) is refused before that, without asking anyone.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    claims::AccessClaims,
    exchange::AgentIdentity,
    jwks::JwksClient,
    jwt::{Expect, TokenError},
};

/// How this service authenticates to the idp's introspection endpoint.
#[derive(Debug, Clone)]
pub enum IntrospectionAuth {
    /// A configured OAuth client (HTTP Basic).
    Secret {
        client_id: String,
        client_secret: String,
    },
    /// An agent, with an assertion signed by its own key (`private_key_jwt`).
    Agent(AgentIdentity),
}

/// Why a bearer token was refused. `Display` is safe to show the caller.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error("a bearer token is required")]
    Missing,
    #[error("{0}")]
    Token(#[from] TokenError),
    #[error("the token's session has ended or the token was revoked")]
    Inactive,
    #[error("the identity provider could not be reached to check the session")]
    Unavailable,
}

impl GuardError {
    /// A stable rule name for security events.
    pub fn rule(&self) -> &'static str {
        match self {
            GuardError::Missing => "token_missing",
            GuardError::Token(TokenError::WrongAudience(_)) => "audience_mismatch",
            GuardError::Token(TokenError::Expired) => "token_expired",
            GuardError::Token(TokenError::AlgorithmNotAllowed(_)) => "algorithm_not_allowed",
            GuardError::Token(_) => "token_invalid",
            GuardError::Inactive => "session_revoked",
            GuardError::Unavailable => "idp_unavailable",
        }
    }
}

/// Verifies the delegated tokens presented to one service.
#[derive(Debug, Clone)]
pub struct Guard {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    issuer: String,
    audience: String,
    jwks: JwksClient,
    http: reqwest::Client,
    auth: IntrospectionAuth,
    /// Sessions the signals transmitter reported revoked, and when we heard. Shared by every
    /// clone of this guard.
    revoked: Mutex<HashMap<String, Instant>>,
}

/// How long a revoked session is remembered: longer than any token of it can live.
const REVOKED_TTL: Duration = Duration::from_secs(24 * 3600);
/// How many revoked sessions are remembered at most (the oldest are forgotten first; the idp's
/// introspection still refuses them).
const REVOKED_MAX: usize = 100_000;

impl Guard {
    /// A guard for tokens from `issuer` addressed to `audience`.
    pub fn new(
        http: reqwest::Client,
        issuer: &str,
        audience: &str,
        auth: IntrospectionAuth,
    ) -> Self {
        let issuer = issuer.trim_end_matches('/').to_owned();
        Self {
            inner: Arc::new(Inner {
                jwks: JwksClient::new(format!("{issuer}/jwks"), http.clone()),
                issuer,
                audience: audience.to_owned(),
                http,
                auth,
                revoked: Mutex::default(),
            }),
        }
    }

    /// Refuses every token of `sid` from now on, before introspection (a CAEP
    /// `session-revoked` signal arrived). Idempotent.
    pub fn revoke_session(&self, sid: &str) {
        let mut revoked = self.revoked();
        revoked.retain(|_, at| at.elapsed() < REVOKED_TTL);
        if revoked.len() >= REVOKED_MAX
            && let Some(oldest) = revoked
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(k, _)| k.clone())
        {
            revoked.remove(&oldest);
        }
        revoked.entry(sid.to_owned()).or_insert_with(Instant::now);
    }

    /// Has a signal reported `sid` revoked?
    pub fn is_session_revoked(&self, sid: &str) -> bool {
        self.revoked()
            .get(sid)
            .is_some_and(|at| at.elapsed() < REVOKED_TTL)
    }

    fn revoked(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.inner
            .revoked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn audience(&self) -> &str {
        &self.inner.audience
    }

    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// Checks an `Authorization` header value (`Bearer <token>`) and returns the token and its claims.
    pub async fn check_header(
        &self,
        authorization: Option<&str>,
    ) -> Result<(String, AccessClaims), GuardError> {
        let token = authorization
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(GuardError::Missing)?;
        let claims = self.check(token).await?;
        Ok((token.to_owned(), claims))
    }

    /// Signature, algorithm, issuer, audience and times locally; then the session at the idp.
    pub async fn check(&self, token: &str) -> Result<AccessClaims, GuardError> {
        let header = crate::jwt::peek_header(token)?;
        if header.typ.as_deref() != Some(crate::claims::TYP_ACCESS) {
            return Err(TokenError::InvalidClaims("not an access token".into()).into());
        }
        let claims: AccessClaims = self
            .inner
            .jwks
            .verify(
                token,
                &Expect {
                    issuer: Some(&self.inner.issuer),
                    audience: Some(&self.inner.audience),
                },
            )
            .await?;
        if claims
            .sid
            .as_deref()
            .is_some_and(|sid| self.is_session_revoked(sid))
        {
            return Err(GuardError::Inactive);
        }
        if !self.introspect(token).await? {
            return Err(GuardError::Inactive);
        }
        Ok(claims)
    }

    /// RFC 7662: is the token active at the idp right now?
    pub async fn introspect(&self, token: &str) -> Result<bool, GuardError> {
        let url = format!("{}/introspect", self.inner.issuer);
        let req = self.inner.http.post(url);
        let req = match &self.inner.auth {
            IntrospectionAuth::Secret {
                client_id,
                client_secret,
            } => req
                .basic_auth(client_id, Some(client_secret))
                .form(&[("token", token)]),
            IntrospectionAuth::Agent(id) => {
                let assertion = id
                    .actor_token(&self.inner.issuer)
                    .map_err(|_| GuardError::Unavailable)?;
                req.form(&[
                    ("token", token),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", assertion.as_str()),
                ])
            }
        };
        let resp = req.send().await.map_err(|_| GuardError::Unavailable)?;
        if !resp.status().is_success() {
            tracing::warn!(status = %resp.status(), "introspection refused our client authentication");
            return Err(GuardError::Unavailable);
        }
        let body: Value = resp.json().await.map_err(|_| GuardError::Unavailable)?;
        Ok(body.get("active").and_then(Value::as_bool).unwrap_or(false))
    }
}

/// Does `claims` carry an `authorization_details` entry of `kind` whose action is `action`?
/// Resource servers call this before performing an operation: the token must have been granted
/// for exactly this kind of operation.
pub fn granted<'a>(
    claims: &'a AccessClaims,
    kind: &str,
    action: &str,
) -> Option<&'a crate::rar::AuthorizationDetail> {
    claims
        .rar()
        .iter()
        .find(|d| d.kind == kind && d.action() == Some(action))
}
