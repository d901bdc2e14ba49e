//! Who may call the users API. Every request to `/v1.0/users` passes these rules, in this
//! order, and every decision (allowed, refused, not found) writes exactly one security event,
//! whose `reason` names the rule that refused. A failure of ours (the database is down) is a 5xx
//! logged once, not a decision:
//!
//! 1. the guard ([`kit::guard`]): a bearer token signed by the idp (ES256 only), naming it as
//!    issuer, addressed to `graph`, unexpired, whose session is alive at the idp at this very
//!    request. Else 401 `InvalidAuthenticationToken` (`token_missing`, `token_invalid`,
//!    `audience_mismatch`, `token_expired`, `algorithm_not_allowed`, `session_revoked`), or 503
//!    when the idp cannot be asked (`idp_unavailable`: fail closed).
//! 2. `not_delegated`: the token carries an `act` chain. This API trusts only delegated tokens:
//!    an agent acting for a user, never a standing credential or a person's own token.
//! 3. `rar_not_granted`: an `authorization_details` entry of type `urn:smt:agent:entra` whose
//!    action is exactly this operation (`graph_user_list`, `graph_user_get`, `graph_user_create`).
//! 4. `rar_target_mismatch`: for get and create, that entry's `email` is the target user's UPN.
//!
//! Rules 2–4 answer 403 `Authorization_RequestDenied`. [`Call`] is consumed by the method that
//! writes the event, so a handler cannot finish a request without one, or write two.

use std::time::Instant;

use axum::http::{HeaderMap, header};
use kit::{
    claims::AccessClaims,
    events::{Outcome, SecurityEvent},
    guard::GuardError,
    jwt::TokenError,
    rar,
};

use crate::{
    error::Error,
    state::{AppState, SERVICE},
};

/// The operations of this API, named as the RAR catalogue names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    List,
    Get,
    Create,
}

impl Operation {
    /// The `operationDetails.action` a token must carry; also the event's `type` and `tool`.
    pub fn action(self) -> &'static str {
        match self {
            Operation::List => "graph_user_list",
            Operation::Get => "graph_user_get",
            Operation::Create => "graph_user_create",
        }
    }
}

/// A request whose token passed rules 1–3; rule 4 and the outcome remain.
#[derive(Debug)]
pub struct Call {
    claims: AccessClaims,
    op: Operation,
    started: Instant,
}

/// Rules 1–3. On refusal the event is already written.
pub async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    op: Operation,
) -> Result<Call, Error> {
    let started = Instant::now();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let claims = match state.guard.check_header(authorization).await {
        Ok((_, claims)) => claims,
        Err(e) => {
            let mut event =
                SecurityEvent::new(SERVICE, op.action(), Outcome::Denied).timed(started);
            event.tool = Some(op.action().into());
            event.reason = Some(format!("{}: {e}", e.rule()));
            state.emit_best_effort(&event).await;
            return Err(match e {
                GuardError::Unavailable | GuardError::Token(TokenError::KeySetUnavailable) => {
                    Error::Unavailable(
                        "The identity provider could not be reached to validate the access token."
                            .into(),
                    )
                }
                GuardError::Missing => Error::InvalidToken {
                    missing: true,
                    message: "Access token is empty.".into(),
                },
                other => Error::InvalidToken {
                    missing: false,
                    message: format!("Access token validation failure: {other}."),
                },
            });
        }
    };
    let call = Call {
        claims,
        op,
        started,
    };
    if call.claims.act.is_none() {
        return Err(call
            .refuse(
                state,
                "not_delegated",
                "the token carries no act claim; this API accepts only tokens delegated to an agent acting for a user",
            )
            .await);
    }
    if kit::guard::granted(&call.claims, rar::ENTRA, op.action()).is_none() {
        let why = format!(
            "the token carries no {} authorization_details entry for {}",
            rar::ENTRA,
            op.action()
        );
        return Err(call.refuse(state, "rar_not_granted", &why).await);
    }
    Ok(call)
}

impl Call {
    pub fn claims(&self) -> &AccessClaims {
        &self.claims
    }

    /// Rule 4: one of the token's entries for this operation names `upn` as its `email`.
    pub async fn require_target(self, state: &AppState, upn: &str) -> Result<Self, Error> {
        let action = self.op.action();
        let entries = || {
            self.claims
                .rar()
                .iter()
                .filter(move |d| d.kind == rar::ENTRA && d.action() == Some(action))
        };
        if entries().any(|d| {
            d.field("email")
                .is_some_and(|e| e.eq_ignore_ascii_case(upn))
        }) {
            return Ok(self);
        }
        let granted: Vec<&str> = entries().filter_map(|d| d.field("email")).collect();
        let why = format!(
            "the token grants {action} for {}, not {upn}",
            if granted.is_empty() {
                "no user".to_owned()
            } else {
                granted.join(", ")
            }
        );
        Err(self.refuse(state, "rar_target_mismatch", &why).await)
    }

    /// The event of this request, with everything the token says about it.
    pub fn event(&self, outcome: Outcome) -> SecurityEvent {
        let c = &self.claims;
        let mut e = SecurityEvent::new(SERVICE, self.op.action(), outcome).timed(self.started);
        e.user = Some(c.email.clone().unwrap_or_else(|| c.sub.clone()));
        e.session = c.sid.clone();
        e.actor_chain = c.chain_names();
        e.tool = Some(self.op.action().into());
        e.jti = Some(c.jti.clone());
        e.approval_id = c.approval_id.clone();
        if !c.rar().is_empty() {
            e.rar_summary = Some(rar::summarize(c.rar()));
            e.fingerprint = Some(rar::fingerprint(c.rar()));
        }
        e
    }

    /// Refuses with 403 under `rule`, recording why.
    pub async fn refuse(self, state: &AppState, rule: &str, why: &str) -> Error {
        self.fail(state, rule, Error::denied(why)).await
    }

    /// Ends the request with `error`, recording it as denied under `rule` (bad input counts:
    /// the caller is told no, and the trail says why).
    pub async fn fail(self, state: &AppState, rule: &str, error: Error) -> Error {
        let mut event = self.event(Outcome::Denied);
        event.reason = Some(format!("{rule}: {error}"));
        state.emit_best_effort(&event).await;
        error
    }

    /// Authorized, but there is no such user: recorded as information, answered 404.
    pub async fn not_found(self, state: &AppState, key: &str) -> Error {
        let mut event = self.event(Outcome::Info);
        event.reason = Some("user_not_found".into());
        state.emit_best_effort(&event).await;
        Error::user_not_found(key)
    }

    /// Authorized and done: the event must be written before the answer goes out.
    pub async fn allowed(self, state: &AppState) -> Result<(), Error> {
        state.emit(&self.event(Outcome::Allowed)).await?;
        Ok(())
    }

    /// Authorized and done, for a caller that writes the event itself (inside the transaction
    /// that performs the operation, so the two commit together).
    pub fn into_allowed_event(self) -> SecurityEvent {
        self.event(Outcome::Allowed)
    }
}
