//! Refused SCIM calls: the error a client sees paired with the rule its security event names.

use axum::http::StatusCode;

use crate::error::ScimError;

/// A refused call: the SCIM error the client sees and the rule its security event names.
pub(super) struct Refusal {
    pub(super) error: ScimError,
    pub(super) rule: &'static str,
}

pub(super) fn refuse(rule: &'static str, error: ScimError) -> Refusal {
    Refusal { error, rule }
}

/// A malformed request; the rule is the `scimType`.
pub(super) fn invalid(scim_type: &'static str, detail: impl Into<String>) -> Refusal {
    refuse(scim_type, ScimError::bad_request(scim_type, detail))
}

/// A token that is missing, forged, expired, revoked or not for this API.
pub(super) fn unauthorized(rule: &'static str, detail: impl Into<String>) -> Refusal {
    refuse(rule, ScimError::invalid_token(detail))
}

/// A good token that may not do this.
pub(super) fn forbidden(rule: &'static str, detail: impl Into<String>) -> Refusal {
    refuse(rule, ScimError::forbidden(detail))
}

pub(super) fn conflict(detail: String) -> Refusal {
    refuse(
        "uniqueness",
        ScimError::new(StatusCode::CONFLICT, Some("uniqueness"), detail),
    )
}

pub(super) fn not_delegable(what: impl std::fmt::Display) -> Refusal {
    refuse(
        "not_delegable",
        ScimError::forbidden(format!(
            "{what} is not an operation an agent can be granted"
        )),
    )
}

pub(super) enum Failure {
    Refused(Refusal),
    Internal(anyhow::Error),
}

impl From<Refusal> for Failure {
    fn from(r: Refusal) -> Self {
        Failure::Refused(r)
    }
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Internal(e.into())
    }
}

pub(super) fn not_granted(action: &str) -> Refusal {
    forbidden("not_granted", format!("this token is not granted {action}"))
}
