//! Who is calling: OAuth client authentication at the token-family endpoints (client secrets
//! for configured clients, `private_key_jwt` for agents), the agents' actor tokens, and bearer
//! tokens at our own APIs (the user's own token, or the admin token).

use axum::{extract::FromRequestParts, http::request::Parts};
use base64::Engine as _;
use kit::{
    claims::{ACTOR_TOKEN_MAX_LIFETIME_SECS, AccessClaims, ActorClaims},
    jwt::{self, Expect, TokenError},
};
use subtle::ConstantTimeEq as _;

use crate::{
    clients::Client,
    error::{Error, OAuthError},
    registry::{self, Agent},
    routes::form::Params,
    state::AppState,
    store::replay,
};

/// An authenticated OAuth client.
#[derive(Debug, Clone)]
pub enum Caller {
    Client(Client),
    Agent(Agent),
}

impl Caller {
    /// The id polls and tokens are bound to: the client id, or the agent's SPIFFE id.
    pub fn id(&self) -> &str {
        match self {
            Caller::Client(c) => &c.id,
            Caller::Agent(a) => &a.spiffe_id,
        }
    }
}

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Authenticates the client by whichever single method it used: HTTP Basic, `client_secret`
/// in the form, or a signed `client_assertion`. `Ok(None)` when it presented none.
pub async fn client(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    p: &Params,
) -> Result<Option<Caller>, OAuthError> {
    let basic = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "));
    let methods = [
        basic.is_some(),
        p.get("client_secret").is_some(),
        p.get("client_assertion").is_some(),
    ];
    if methods.iter().filter(|m| **m).count() > 1 {
        return Err(OAuthError::invalid_request(
            "use exactly one client authentication method",
        ));
    }
    let bad_client = || OAuthError::new("invalid_client", "client authentication failed");
    if let Some(b64) = basic {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| bad_client())?;
        let raw = String::from_utf8(raw).map_err(|_| bad_client())?;
        let (id, secret) = raw.split_once(':').ok_or_else(bad_client)?;
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
        };
        let (id, secret) = (
            decode(id).ok_or_else(bad_client)?,
            decode(secret).ok_or_else(bad_client)?,
        );
        return secret_client(state, &id, &secret).map(Some);
    }
    if let Some(secret) = p.get("client_secret") {
        let id = p.get("client_id").ok_or_else(bad_client)?;
        return secret_client(state, id, secret).map(Some);
    }
    if let Some(assertion) = p.get("client_assertion") {
        if p.get("client_assertion_type") != Some(ASSERTION_TYPE) {
            return Err(OAuthError::invalid_request(
                "client_assertion_type must be jwt-bearer",
            ));
        }
        let (agent, _) = agent_assertion(state, assertion).await.map_err(|r| {
            if r.rule == "internal" {
                // The store failed (Postgres restarting): not the client's fault. A 503 the
                // client may retry (a CIBA poll keeps polling), its cause logged, not sent.
                tracing::error!(error = %r.description, "client assertion could not be checked");
                OAuthError {
                    status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    ..OAuthError::new(
                        "temporarily_unavailable",
                        "client authentication is unavailable; try again",
                    )
                }
            } else {
                OAuthError::new("invalid_client", r.description)
            }
        })?;
        if p.get("client_id").is_some_and(|id| id != agent.spiffe_id) {
            return Err(bad_client());
        }
        return Ok(Some(Caller::Agent(agent)));
    }
    Ok(None)
}

fn secret_client(state: &AppState, id: &str, secret: &str) -> Result<Caller, OAuthError> {
    match state.clients.get(id) {
        Some(c) if c.secret_matches(secret) => Ok(Caller::Client(c.clone())),
        _ => Err(OAuthError::new(
            "invalid_client",
            "client authentication failed",
        )),
    }
}

/// Why an agent's assertion was refused, with the rule it broke (for the security event).
#[derive(Debug, Clone)]
pub struct AssertionRefusal {
    pub rule: &'static str,
    pub description: String,
}

/// Verifies an agent's own signed assertion (an actor token, or a client assertion): the `sub`
/// names a registered agent, the signature is that agent's key (ES256 only), the audience is
/// us, it lives at most five minutes, and its `jti` was never seen before.
pub async fn agent_assertion(
    state: &AppState,
    token: &str,
) -> Result<(Agent, ActorClaims), AssertionRefusal> {
    let db = state.pool.get().await.map_err(|e| internal(e.into()))?;
    agent_assertion_on(state, &db, token, None)
        .await
        .map(|(agent, claims, _)| (agent, claims))
}

fn internal(e: anyhow::Error) -> AssertionRefusal {
    AssertionRefusal {
        rule: "internal",
        description: e.to_string(),
    }
}

/// [`agent_assertion`] on a connection the caller holds. With `hop`, the same round trip that
/// consumes the `jti` also answers what a token exchange asks of the store (see
/// [`replay::consume`]): one statement per hop instead of four.
///
/// The agent and its parsed key come from [`crate::registry::Cache`]; the statement returns the
/// row's current version and status, and a changed row is re-read and the signature checked
/// again with its current key, so the cache never decides on its own.
pub async fn agent_assertion_on(
    state: &AppState,
    db: &deadpool_postgres::Client,
    token: &str,
    hop: Option<replay::HopFacts<'_>>,
) -> Result<(Agent, ActorClaims, replay::Consumed), AssertionRefusal> {
    let refuse = |rule: &'static str, description: String| AssertionRefusal { rule, description };
    let invalid = |e: TokenError| refuse("token_invalid", format!("actor_token: {e}"));
    jwt::peek_header(token).map_err(invalid)?;
    let (_, unverified) = jwt::decode_unverified(token).map_err(invalid)?;
    let sub = unverified
        .get("sub")
        .and_then(|s| s.as_str())
        .ok_or_else(|| invalid(TokenError::InvalidClaims("missing sub".into())))?;
    let unregistered = || {
        refuse(
            "actor_unregistered",
            format!("actor {sub} is not a registered agent"),
        )
    };
    let mut known = match state.agents.get(sub) {
        Some(k) => k,
        None => state
            .agents
            .load(db, sub)
            .await
            .map_err(internal)?
            .ok_or_else(unregistered)?,
    };
    let claims = check_assertion(state, token, &known.key).map_err(invalid)?;
    let consumed = replay::consume(db, &known.agent.spiffe_id, &claims.jti, claims.exp, hop)
        .await
        .map_err(internal)?;
    let Some((active, version)) = consumed.agent else {
        return Err(unregistered());
    };
    if version != known.version {
        // Changed since we cached it (a suspension, a new key): decide on what is stored now.
        known = state
            .agents
            .load(db, sub)
            .await
            .map_err(internal)?
            .ok_or_else(unregistered)?;
        check_assertion(state, token, &known.key).map_err(invalid)?;
    }
    if !consumed.fresh {
        return Err(refuse(
            "actor_jti_replayed",
            format!("actor token jti {} was already used", claims.jti),
        ));
    }
    let mut agent = known.agent.clone();
    agent.status = if active {
        registry::Status::Active
    } else {
        registry::Status::Suspended
    };
    Ok((agent, claims, consumed))
}

/// Signature (pinned ES256, the agent's key), audience (us), `iss` = `sub`, at most five minutes.
fn check_assertion(
    state: &AppState,
    token: &str,
    key: &jsonwebtoken::DecodingKey,
) -> Result<ActorClaims, TokenError> {
    let claims: ActorClaims = jwt::verify(
        token,
        key,
        &Expect {
            issuer: None,
            audience: Some(&state.issuer.url),
        },
    )?;
    if claims.iss.as_deref().is_some_and(|i| i != claims.sub) {
        return Err(TokenError::InvalidClaims(
            "an actor token's iss must be its sub".into(),
        ));
    }
    if claims.exp - claims.iat > ACTOR_TOKEN_MAX_LIFETIME_SECS {
        return Err(TokenError::InvalidClaims(
            "actor tokens may live at most 5 minutes".into(),
        ));
    }
    Ok(claims)
}

/// The caller of our own APIs (approvals, sessions, events, the agent registry).
#[derive(Debug, Clone)]
pub enum Principal {
    /// A signed-in user's own token for the idp (audience = the issuer, no `act`): what their
    /// devices hold. A delegated token never passes, so no agent can approve its own request.
    User(AccessClaims),
    Admin,
}

impl Principal {
    pub fn user(&self) -> Option<&AccessClaims> {
        match self {
            Principal::User(c) => Some(c),
            Principal::Admin => None,
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| Error::unauthorized("a bearer token is required"))?
            .trim();
        if let Some(admin) = &state.config.admin_token
            && bool::from(admin.as_bytes().ct_eq(token.as_bytes()))
        {
            return Ok(Principal::Admin);
        }
        let claims = state
            .issuer
            .verify_access(token)
            .map_err(|e| Error::unauthorized(e.to_string()))?;
        if !claims.aud.contains(&state.issuer.url) || claims.act.is_some() {
            return Err(Error::forbidden(
                "this API takes the user's own token for the idp, not a delegated one",
            ));
        }
        let db = state.pool.get().await?;
        if !replay::token_is_live(&db, &claims.jti, claims.sid.as_deref()).await? {
            return Err(Error::unauthorized("token revoked or session ended"));
        }
        Ok(Principal::User(claims))
    }
}

/// Only the admin token passes.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        match Principal::from_request_parts(parts, state).await {
            Ok(Principal::Admin) => Ok(Admin),
            Ok(Principal::User(_)) => Err(Error::forbidden("the admin API takes the admin token")),
            Err(e) => Err(e),
        }
    }
}
