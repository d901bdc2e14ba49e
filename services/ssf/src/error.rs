//! Antenna's one error type, mapped to HTTP in exactly one place ([`IntoResponse`]).
//!
//! SSF defines status codes for its management API but no error body; ours is the OAuth bearer
//! shape its callers already parse, `{"error": "<code>", "error_description": "..."}`, with
//! `WWW-Authenticate: Bearer` on a 401 (RFC 6750 §3). A 5xx body says nothing; its cause is
//! logged once.

use axum::{
    Json,
    extract::rejection::BytesRejection,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 401: no bearer token, or not one we know.
    #[error("{message}")]
    Unauthorized { missing: bool, message: String },
    /// 404: no such stream for this receiver. Another receiver's stream is answered the same
    /// way, so a receiver cannot learn which stream ids exist.
    #[error("no stream {0} for this receiver")]
    StreamNotFound(String),
    /// 400 `invalid_request`.
    #[error("{0}")]
    BadRequest(String),
    /// 413.
    #[error("the request body is too large")]
    TooLarge,
    /// 429: verification asked for sooner than `min_verification_interval`.
    #[error("{0}")]
    TooMany(String),
    /// 404 for a path we do not serve.
    #[error("no such endpoint")]
    NoRoute,
    /// 405.
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Unauthorized { .. } => (StatusCode::UNAUTHORIZED, "invalid_token"),
            Self::StreamNotFound(_) | Self::NoRoute => (StatusCode::NOT_FOUND, "not_found"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            Self::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "invalid_request"),
            Self::TooMany(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "invalid_request"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let description = match &self {
            Self::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "internal error");
                "an internal error occurred".to_owned()
            }
            other => other.to_string(),
        };
        let mut resp = (
            status,
            Json(json!({"error": code, "error_description": description})),
        )
            .into_response();
        if let Self::Unauthorized { missing, .. } = self {
            let challenge = if missing {
                "Bearer realm=\"ssf\""
            } else {
                "Bearer realm=\"ssf\", error=\"invalid_token\""
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
            Self::TooLarge
        } else {
            Self::bad_request(r.body_text())
        }
    }
}

/// The raw request body, bounded by the router's limit. Handlers parse it after the caller is
/// authenticated: who you are is checked before what you sent.
#[derive(Debug)]
pub struct Body(pub axum::body::Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for Body {
    type Rejection = Error;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Error> {
        Ok(Self(axum::body::Bytes::from_request(req, state).await?))
    }
}

impl Body {
    /// The body as a JSON object; anything else is a 400.
    pub fn object(&self) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
        match serde_json::from_slice(&self.0) {
            Ok(serde_json::Value::Object(m)) => Ok(m),
            Ok(_) => Err(Error::bad_request("the body must be a JSON object")),
            Err(e) => Err(Error::bad_request(format!("the body is not JSON: {e}"))),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
