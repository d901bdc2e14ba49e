//! Hop 2 of a specialist that calls an HTTP API with its delegated token (iam → SCIM, entra →
//! Graph): the tool call's arguments refused before any hop ([`Runtime::refuse_arguments`]),
//! the token for exactly one operation, decoded ([`Runtime::grant`], with the S6 attack toggles
//! applied first), and the event of each call made with it ([`Runtime::event_for_grant`]).

use crate::{
    a2a::server::{AgentError, TaskHandle},
    claims::AccessClaims,
    events::{Outcome, SecurityEvent},
    rar::{self, AuthorizationDetail},
};

use super::{Runtime, attack::Toggles};

/// T2 and what it grants: everything the API request and its event need.
#[derive(Debug, Clone)]
pub struct Grant {
    pub token: String,
    pub claims: AccessClaims,
    pub detail: AuthorizationDetail,
}

impl Grant {
    /// One `operationDetails` field of the granted operation (`""` when absent).
    pub fn field(&self, name: &str) -> &str {
        self.detail.field(name).unwrap_or_default()
    }
}

impl Runtime {
    /// The tool call's arguments are not an operation of the catalogue: no hop is attempted.
    /// Records `request_refused` (`invalid_arguments`) and returns the task's rejection.
    pub async fn refuse_arguments(
        &self,
        task: &TaskHandle,
        skill: &str,
        why: impl std::fmt::Display,
    ) -> AgentError {
        let mut e = self.event_for("request_refused", Outcome::Denied, &task.principal().claims);
        e.tool = Some(skill.to_owned());
        e.reason = Some(format!("invalid_arguments: {why}"));
        self.emit(e).await;
        AgentError::Rejected(format!("I cannot carry out that request: {why}."))
    }

    /// Hop 2 for one operation: `detail` exchanged for a token addressed to `audience`, with the
    /// user's approval when the policy asks ([`Runtime::delegate`]), decoded. A run switched
    /// into an S6 attack toggle misbehaves instead ([`Runtime::misbehave_at_hop`]) and ends
    /// with the idp's refusal.
    pub async fn grant(
        &self,
        task: &TaskHandle,
        audience: &str,
        detail: AuthorizationDetail,
        attacks: &Toggles,
    ) -> Result<Grant, AgentError> {
        let details = std::slice::from_ref(&detail);
        if let Some(attack) = attacks.for_task(task)?
            && let Some(refused) = self.misbehave_at_hop(task, attack, audience, details).await
        {
            return Err(refused);
        }
        let t2 = self.delegate(task, audience, details).await?;
        let claims = crate::jwt::decode_unverified(&t2.access_token)
            .ok()
            .and_then(|(_, c)| serde_json::from_value::<AccessClaims>(c).ok())
            .ok_or_else(|| {
                AgentError::Failed("the identity provider's token could not be read".into())
            })?;
        Ok(Grant {
            token: t2.access_token,
            claims,
            detail,
        })
    }

    /// An event about one call made with `grant`: its user, session and chain, the operation,
    /// T2's `jti` and approval, the RAR's summary and fingerprint.
    pub fn event_for_grant(&self, kind: &str, outcome: Outcome, grant: &Grant) -> SecurityEvent {
        let mut e = self.event_for(kind, outcome, &grant.claims);
        e.tool = grant.detail.action().map(str::to_owned);
        e.jti = Some(grant.claims.jti.clone());
        e.approval_id = grant.claims.approval_id.clone();
        e.rar_summary = Some(grant.detail.summary());
        e.fingerprint = Some(rar::fingerprint(std::slice::from_ref(&grant.detail)));
        e
    }
}
