//! Vault wire shapes: the response envelope every client parses (with every field `vaultrs`
//! requires), the `auth` block of a login, and a body extractor that turns malformed input into
//! the same `{"errors": [...]}` shape.

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

use crate::error::Error;

/// The standard response envelope (`HTTPResponse`).
#[derive(Debug, Serialize)]
pub struct Envelope {
    pub request_id: String,
    pub lease_id: String,
    pub renewable: bool,
    pub lease_duration: u64,
    pub data: Option<Value>,
    pub wrap_info: Option<Value>,
    pub warnings: Option<Vec<String>>,
    pub auth: Option<Value>,
    pub mount_type: String,
}

impl Envelope {
    pub fn data(data: Value) -> Self {
        Self {
            request_id: uuid::Uuid::new_v4().to_string(),
            lease_id: String::new(),
            renewable: false,
            lease_duration: 0,
            data: Some(data),
            wrap_info: None,
            warnings: None,
            auth: None,
            mount_type: String::new(),
        }
    }

    pub fn auth(auth: Value) -> Self {
        Self {
            data: None,
            auth: Some(auth),
            ..Self::data(Value::Null)
        }
    }
}

impl IntoResponse for Envelope {
    fn into_response(self) -> Response {
        (StatusCode::OK, axum::Json(self)).into_response()
    }
}

/// `204 No Content`, Vault's answer when there is nothing to say (revoke, delete, write).
pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// A JSON request body. An empty body reads as `{}`; the `Content-Type` is not insisted on
/// (clients differ), but the body must be JSON of the expected shape or the answer is 400.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| Error::BadRequest("request body could not be read".into()))?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(text)
            .map(Body)
            .map_err(|e| Error::BadRequest(format!("failed to parse JSON input: {e}")))
    }
}

/// The Vault token of a request: `X-Vault-Token`, or `Authorization: Bearer`.
pub fn token_of(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("x-vault-token")
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get("authorization")?
                .to_str()
                .ok()?
                .strip_prefix("Bearer ")
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// RFC 3339 text of a Unix time, the way Vault prints times.
pub fn rfc3339(unix: i64) -> Value {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .map_or(Value::Null, Value::String)
}

/// The health body (`sys/health`), with every field `vaultrs` requires.
pub fn health_body(sealed: bool) -> Value {
    json!({
        "initialized": true,
        "sealed": sealed,
        "standby": false,
        "performance_standby": false,
        "replication_performance_mode": "disabled",
        "replication_dr_mode": "disabled",
        "server_time_utc": kit::now_secs(),
        "version": concat!("verify-rar-", env!("CARGO_PKG_VERSION")),
        "cluster_name": "verify-rar",
        "cluster_id": "verify-rar",
    })
}
