//! Graph's one error type, mapped to HTTP in exactly one place ([`IntoResponse`]), in Microsoft
//! Graph's error shape:
//!
//! ```json
//! {"error": {"code": "Authorization_RequestDenied", "message": "...",
//!            "innerError": {"date": "2026-11-02T10:00:00", "request-id": "...", "client-request-id": "..."}}}
//! ```
//!
//! Codes are Graph's own, so Graph SDKs and scripts that branch on them behave as they would
//! against a real tenant. Messages start with Graph's wording where Graph has one (clients match
//! on "Another object with the same value for property userPrincipalName already exists.") and
//! add why. A 5xx body says nothing; its cause is logged once.

use axum::{
    Json,
    extract::rejection::{BytesRejection, PathRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::request;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 401 `InvalidAuthenticationToken`: no bearer token, or one the guard refused.
    #[error("{message}")]
    InvalidToken {
        /// No token at all: the challenge then carries no `error` (RFC 6750 §3.1).
        missing: bool,
        message: String,
    },
    /// 403 `Authorization_RequestDenied`: a genuine token that does not allow this operation.
    #[error("{0}")]
    Denied(String),
    /// 400 `Request_BadRequest`.
    #[error("{0}")]
    BadRequest(String),
    /// 404 `Request_ResourceNotFound`.
    #[error("{0}")]
    NotFound(String),
    /// 405, in Graph's `Request_BadRequest` shape.
    #[error("Specified HTTP method is not allowed for the request target.")]
    MethodNotAllowed,
    /// 413, in Graph's `Request_BadRequest` shape.
    #[error("{0}")]
    TooLarge(String),
    /// 503: the idp could not be asked whether the token's session is alive. Fails closed.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    pub fn denied(why: impl std::fmt::Display) -> Self {
        Self::Denied(format!(
            "Insufficient privileges to complete the operation: {why}."
        ))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    /// Graph's wording for an unknown user (or any unknown resource).
    pub fn user_not_found(key: &str) -> Self {
        let key: String = key.chars().filter(|c| !c.is_control()).take(200).collect();
        Self::NotFound(format!(
            "Resource '{key}' does not exist or one of its queried reference-property objects are not present."
        ))
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Error::InvalidToken { .. } => (StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken"),
            Error::Denied(_) => (StatusCode::FORBIDDEN, "Authorization_RequestDenied"),
            Error::BadRequest(_) => (StatusCode::BAD_REQUEST, "Request_BadRequest"),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, "Request_ResourceNotFound"),
            Error::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "Request_BadRequest"),
            Error::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "Request_BadRequest"),
            Error::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "ServiceNotAvailable"),
            Error::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError"),
        }
    }
}

/// `innerError.date`: Graph's format, UTC, whole seconds, no offset.
fn graph_date() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            Error::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "internal error");
                "An internal server error occurred.".to_owned()
            }
            Error::Unavailable(why) => {
                tracing::warn!(reason = %why, "refusing: the idp is unavailable");
                why.clone()
            }
            other => other.to_string(),
        };
        let ids = request::current();
        let mut inner = json!({"date": graph_date(), "request-id": ids.request_id});
        if let Some(c) = ids.client_request_id {
            inner["client-request-id"] = json!(c);
        }
        let body = json!({"error": {"code": code, "message": message, "innerError": inner}});
        let mut resp = (status, Json(body)).into_response();
        if let Error::InvalidToken { missing, .. } = self {
            let challenge = if missing {
                "Bearer realm=\"graph\""
            } else {
                "Bearer realm=\"graph\", error=\"invalid_token\""
            };
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Self::Internal(e.into())
    }
}

impl From<BytesRejection> for Error {
    fn from(r: BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::TooLarge(format!(
                "The request body is larger than the {} bytes this API accepts.",
                crate::routes::MAX_BODY_BYTES
            ))
        } else {
            Error::bad_request(r.body_text())
        }
    }
}

impl From<PathRejection> for Error {
    fn from(r: PathRejection) -> Self {
        Error::bad_request(format!("Invalid object identifier: {}.", r.body_text()))
    }
}

/// A path parameter whose rejections answer in Graph's shape.
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Error))]
pub struct PathParam<T>(pub T);

/// The raw request body, bounded by the router's body limit; its rejections answer in Graph's
/// shape. Handlers parse it themselves, after the caller is authorized: who you are is checked
/// before what you sent.
#[derive(Debug)]
pub struct Body(pub axum::body::Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for Body {
    type Rejection = Error;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Error> {
        Ok(Self(axum::body::Bytes::from_request(req, state).await?))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_look_like_graphs() {
        let d = graph_date();
        assert_eq!(d.len(), 19, "{d}");
        assert_eq!(&d[10..11], "T");
    }
}
