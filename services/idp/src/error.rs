//! The idp's one error type, mapped to HTTP in exactly one place ([`IntoResponse`]).
//!
//! OAuth endpoints (token, introspection, revocation, CIBA) answer in the RFC 6749 §5.2 shape,
//! HTTP 400 JSON without `WWW-Authenticate` (so CIBA clients keep polling on
//! `authorization_pending`). Our own APIs answer `{"error": {"code", "message"}}`. The SCIM API
//! answers RFC 7644 §3.12 errors as `application/scim+json`. A 5xx body says nothing; its cause
//! is logged once.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

/// An RFC 6749 error response, with extra members where a profile adds them (CIBA's
/// `auth_req_id`, `expires_in`, `interval` on a pending exchange).
#[derive(Debug, Clone)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
    pub extra: Map<String, Value>,
}

impl OAuthError {
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        let status = if error == "invalid_client" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        Self {
            status,
            error,
            description: description.into(),
            extra: Map::new(),
        }
    }
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new("invalid_request", d)
    }
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.into(), value.into());
        self
    }
}

/// The media type of every SCIM body (RFC 7644 §3.1).
pub const SCIM_MEDIA_TYPE: &str = "application/scim+json";

/// An RFC 7644 §3.12 error: `{"schemas": [...Error], "status": "403", "scimType"?, "detail"}`,
/// with an RFC 6750 bearer challenge on 401 and 403.
#[derive(Debug, Clone)]
pub struct ScimError {
    pub status: StatusCode,
    pub scim_type: Option<&'static str>,
    pub detail: String,
    /// The `WWW-Authenticate` value, when the token is what failed.
    pub challenge: Option<&'static str>,
}

impl ScimError {
    pub fn new(
        status: StatusCode,
        scim_type: Option<&'static str>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            scim_type,
            detail: detail.into(),
            challenge: None,
        }
    }
    /// 401 without a token: a bare challenge (RFC 6750 §3.1 gives no error code then).
    pub fn token_missing(detail: impl Into<String>) -> Self {
        Self {
            challenge: Some(r#"Bearer realm="scim""#),
            ..Self::new(StatusCode::UNAUTHORIZED, None, detail)
        }
    }
    /// 401: the token is malformed, forged, expired, revoked or not for this API.
    pub fn invalid_token(detail: impl Into<String>) -> Self {
        Self {
            challenge: Some(r#"Bearer realm="scim", error="invalid_token""#),
            ..Self::new(StatusCode::UNAUTHORIZED, None, detail)
        }
    }
    /// 403: a good token that was not granted this operation on this target.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self {
            challenge: Some(r#"Bearer realm="scim", error="insufficient_scope""#),
            ..Self::new(StatusCode::FORBIDDEN, None, detail)
        }
    }
    pub fn bad_request(scim_type: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some(scim_type), detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, None, detail)
    }
    /// The opaque 500; the caller logs the cause.
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, None, "internal error")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {}", .0.error, .0.description)]
    OAuth(OAuthError),
    #[error("scim {}: {}", .0.status, .0.detail)]
    Scim(ScimError),
    #[error("{code}: {message}")]
    Api {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    pub fn api(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self::Api {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::api(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::api(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::api(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::api(StatusCode::BAD_REQUEST, "bad_request", message)
    }
}

impl From<OAuthError> for Error {
    fn from(e: OAuthError) -> Self {
        Self::OAuth(e)
    }
}

impl From<ScimError> for Error {
    fn from(e: ScimError) -> Self {
        Self::Scim(e)
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Self::Internal(e.into())
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let mut resp = match self {
            Error::OAuth(e) => {
                let mut body = Map::new();
                body.insert("error".into(), e.error.into());
                body.insert("error_description".into(), e.description.into());
                body.extend(e.extra);
                let mut r = (e.status, Json(Value::Object(body))).into_response();
                if e.status == StatusCode::UNAUTHORIZED {
                    r.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Basic realm=\"idp\""),
                    );
                }
                r
            }
            Error::Scim(e) => {
                let mut body = json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                    "status": e.status.as_u16().to_string(),
                    "detail": e.detail,
                });
                if let Some(t) = e.scim_type {
                    body["scimType"] = json!(t);
                }
                let mut r = (e.status, Json(body)).into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(SCIM_MEDIA_TYPE),
                );
                if let Some(c) = e.challenge {
                    r.headers_mut()
                        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
                }
                r
            }
            Error::Api {
                status,
                code,
                message,
            } => (
                status,
                Json(json!({"error": {"code": code, "message": message}})),
            )
                .into_response(),
            Error::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(json!({"error": {"code": "internal", "message": "internal error"}})),
                )
                    .into_response()
            }
        };
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<axum::extract::rejection::JsonRejection> for Error {
    fn from(r: axum::extract::rejection::JsonRejection) -> Self {
        Error::api(StatusCode::BAD_REQUEST, "invalid_body", r.body_text())
    }
}

impl From<axum::extract::rejection::QueryRejection> for Error {
    fn from(r: axum::extract::rejection::QueryRejection) -> Self {
        Error::api(StatusCode::BAD_REQUEST, "invalid_query", r.body_text())
    }
}

/// `Json` whose rejections answer in our API error shape.
#[derive(Debug, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(Error))]
pub struct ApiJson<T>(pub T);

/// `Query` whose rejections answer in our API error shape.
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Error))]
pub struct ApiQuery<T>(pub T);
