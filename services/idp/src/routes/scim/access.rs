//! Who may make a SCIM call: the delegated bearer token, the acting agent, and the
//! `authorization_details` grant for each operation, recorded as the call's one security event.

use std::time::Instant;

use axum::{
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};
use kit::{
    claims::AccessClaims,
    events::{Outcome, SecurityEvent},
    guard::granted,
    rar::{self, AuthorizationDetail, IAM},
};
use serde_json::json;

use super::{
    AUDIENCE,
    refusal::{Failure, Refusal, forbidden, invalid, not_granted, refuse, unauthorized},
};
use crate::{
    error::{Error, ScimError},
    registry,
    state::AppState,
    store::{replay, scim::ADMINS},
};

/// One SCIM call: the security event it writes, filled in as the checks learn who is asking
/// and for what.
pub(super) struct Call<'a> {
    state: &'a AppState,
    pub(super) event: SecurityEvent,
    started: Instant,
    recorded: bool,
}

impl<'a> Call<'a> {
    pub(super) fn new(state: &'a AppState, action: &'static str) -> Self {
        let mut call = Self {
            state,
            event: state.event("scim", Outcome::Denied),
            started: Instant::now(),
            recorded: false,
        };
        call.set_action(action);
        call
    }

    fn set_action(&mut self, action: &'static str) {
        self.event.kind = format!("scim_{action}");
        self.event.tool = Some(action.to_owned());
    }

    fn token(&mut self, c: &AccessClaims) {
        self.event.user = Some(c.email.clone().unwrap_or_else(|| c.sub.clone()));
        self.event.session = c.sid.clone();
        self.event.actor_chain = c.chain_names();
        self.event.jti = Some(c.jti.clone());
        self.event.approval_id = c.approval_id.clone();
        if !c.rar().is_empty() {
            self.event.fingerprint = Some(rar::fingerprint(c.rar()));
        }
    }

    /// Refuses unless the token was granted `action` at all; checked before a target is
    /// looked up, so a token without it learns nothing about what exists.
    pub(super) fn require(
        &mut self,
        claims: &AccessClaims,
        action: &'static str,
    ) -> Result<(), Refusal> {
        self.set_action(action);
        granted(claims, IAM, action)
            .map(|_| ())
            .ok_or_else(|| not_granted(action))
    }

    /// Every operation must be granted by an entry with its action naming its target. Returns
    /// the entry granting the first.
    pub(super) fn authorize<'c>(
        &mut self,
        claims: &'c AccessClaims,
        ops: &[Op],
    ) -> Result<&'c AuthorizationDetail, Refusal> {
        let Some(first) = ops.first() else {
            return Err(invalid("invalidValue", "the request names no operation"));
        };
        self.set_action(first.action);
        if self.event.rar_summary.is_none() {
            let summaries: Vec<String> = ops.iter().map(Op::summary).collect();
            self.event.rar_summary = Some(summaries.join("; "));
        }
        let mut granting = None;
        for op in ops {
            granted(claims, IAM, op.action).ok_or_else(|| not_granted(op.action))?;
            let entry = claims
                .rar()
                .iter()
                .filter(|d| d.kind == IAM && d.action() == Some(op.action))
                .find(|d| op.names_same_target(d))
                .ok_or_else(|| {
                    let other = if op.group.is_some() {
                        "user or group"
                    } else {
                        "user"
                    };
                    let detail = format!("this token is granted {} for another {other}", op.action);
                    forbidden("target_mismatch", detail)
                })?;
            granting.get_or_insert(entry);
        }
        granting.ok_or_else(|| not_granted(first.action))
    }

    /// Looking one user (or group) up by its name reads only that one target, and any
    /// operation on a user by id needs that id first. So a lookup is granted by `list_users`,
    /// or by any iam entry naming the same `field` value: a token for "deactivate bob" may find
    /// bob, and nobody else.
    pub(super) fn authorize_lookup(
        &mut self,
        claims: &AccessClaims,
        field: &str,
        value: &str,
    ) -> Result<(), Refusal> {
        self.event.rar_summary = Some(format!("Look up {value}"));
        if granted(claims, IAM, "list_users").is_some() {
            return Ok(());
        }
        let named = claims.rar().iter().any(|d| {
            d.kind == IAM
                && d.field(field)
                    .is_some_and(|v| v.eq_ignore_ascii_case(value))
        });
        if named {
            Ok(())
        } else {
            Err(forbidden(
                "target_mismatch",
                format!("this token names no operation on {value}"),
            ))
        }
    }

    /// Records the allowed decision; called before the change is made.
    pub(super) async fn allow(&mut self) -> anyhow::Result<()> {
        self.event.outcome = Outcome::Allowed;
        self.event.reason = None;
        self.state
            .emit(self.event.clone().timed(self.started))
            .await?;
        self.recorded = true;
        Ok(())
    }

    /// Writes the call's event (unless the allowed one is already written) and answers.
    pub(super) async fn finish(mut self, result: Result<Response, Failure>) -> Response {
        match result {
            Ok(resp) => {
                if !self.recorded
                    && let Err(e) = self.allow().await
                {
                    tracing::error!(error = %format!("{e:#}"), "could not record a security event");
                    return Error::Scim(ScimError::internal()).into_response();
                }
                resp
            }
            Err(Failure::Refused(r)) => {
                self.event.outcome = Outcome::Denied;
                self.event.reason = Some(format!("{}: {}", r.rule, r.error.detail));
                self.state
                    .emit_best_effort(self.event.timed(self.started))
                    .await;
                Error::Scim(r.error).into_response()
            }
            Err(Failure::Internal(e)) => {
                tracing::error!(error = %format!("{e:#}"), "internal error");
                self.event.outcome = Outcome::Error;
                self.event.reason = Some("internal error".into());
                self.state
                    .emit_best_effort(self.event.timed(self.started))
                    .await;
                Error::Scim(ScimError::internal()).into_response()
            }
        }
    }
}

/// An operation in the terms of a grant: its action and the target fields an entry must name.
#[derive(Debug, Clone)]
pub(super) struct Op {
    action: &'static str,
    email: Option<String>,
    group: Option<String>,
}

impl Op {
    pub(super) fn any(action: &'static str) -> Self {
        Self {
            action,
            email: None,
            group: None,
        }
    }

    pub(super) fn user(action: &'static str, email: &str) -> Self {
        Self {
            email: Some(email.to_owned()),
            ..Self::any(action)
        }
    }

    /// Adding `email` (any member, when `None`) to `group`. Membership of `admins` is the admin
    /// role, so it takes `grant_admin_role`, never `add_user_to_group`.
    pub(super) fn membership(group: &str, email: Option<&str>) -> Self {
        if group == ADMINS {
            Self {
                email: email.map(str::to_owned),
                ..Self::any("grant_admin_role")
            }
        } else {
            Self {
                action: "add_user_to_group",
                email: email.map(str::to_owned),
                group: Some(group.to_owned()),
            }
        }
    }

    fn names_same_target(&self, d: &AuthorizationDetail) -> bool {
        let same = |field: &str, wanted: &Option<String>| match wanted {
            None => true,
            Some(w) => d.field(field).is_some_and(|g| g.eq_ignore_ascii_case(w)),
        };
        same("email", &self.email) && same("group", &self.group)
    }

    /// The operation in plain words, as the approval on the phone said it.
    fn summary(&self) -> String {
        let mut fields = vec![];
        if let Some(e) = &self.email {
            fields.push(("email", json!(e)));
        }
        if let Some(g) = &self.group {
            fields.push(("group", json!(g)));
        }
        AuthorizationDetail::operation(IAM, self.action, fields).summary()
    }
}

// ---- the token -----------------------------------------------------------------------------

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    Some(token.trim()).filter(|t| scheme.eq_ignore_ascii_case("bearer") && !t.is_empty())
}

/// Rules 1 and 2: a live delegated token of ours for this API, presented by a registered agent.
pub(super) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    call: &mut Call<'_>,
) -> Result<AccessClaims, Failure> {
    let token = bearer(headers).ok_or_else(|| {
        refuse(
            "token_missing",
            ScimError::token_missing("a bearer token is required"),
        )
    })?;
    let claims = state
        .issuer
        .verify_access(token)
        .map_err(|e| unauthorized("token_invalid", format!("the token is not valid: {e}")))?;
    call.token(&claims);
    if !claims.aud.contains(AUDIENCE) {
        return Err(unauthorized("audience_mismatch", "the token is not for the SCIM API").into());
    }
    let db = state.pool.get().await?;
    if !replay::token_is_live(&db, &claims.jti, claims.sid.as_deref()).await? {
        return Err(unauthorized(
            "session_revoked",
            "the token was revoked or its session has ended",
        )
        .into());
    }
    let Some(act) = &claims.act else {
        return Err(forbidden(
            "not_delegated",
            "the SCIM API takes only delegated tokens: an agent acting for the user",
        )
        .into());
    };
    let agent = registry::by_spiffe_id(&db, &act.sub).await?;
    if !agent.is_some_and(|a| {
        a.status == registry::Status::Active && a.audiences.iter().any(|x| x == AUDIENCE)
    }) {
        return Err(forbidden(
            "actor_not_allowed",
            format!(
                "{} is not an active agent allowed to call the SCIM API",
                act.sub
            ),
        )
        .into());
    }
    Ok(claims)
}
