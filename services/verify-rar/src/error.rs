//! The one error type of the issuer, and its mapping to Vault's error envelope
//! (`{"errors": [...]}`, `Content-Type: application/json`) in exactly one place.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 400: what Vault answers for a malformed request or a refused JWT login.
    #[error("{0}")]
    BadRequest(String),
    /// 400 `invalid lease`, as Vault words it.
    #[error("invalid lease")]
    InvalidLease,
    /// 403: a missing, unknown or expired Vault token, or a token not allowed to do this.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// 404 with an empty `errors` list, like Vault for an unknown path.
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 503: a dependency (the idp, the database) could not be reached.
    #[error("{0}")]
    Unavailable(String),
    /// 500: logged once here; the body says nothing more.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Self::Unavailable(format!("database unavailable: {e}"))
    }
}

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::InvalidLease => StatusCode::BAD_REQUEST,
            Self::PermissionDenied(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let errors: Vec<String> = match &self {
            Self::NotFound => vec![],
            Self::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "internal error");
                vec!["internal error".into()]
            }
            Self::Unavailable(why) => {
                tracing::warn!(reason = %why, "dependency unavailable");
                vec!["service unavailable".into()]
            }
            other => vec![other.to_string()],
        };
        (
            self.status(),
            axum::Json(serde_json::json!({ "errors": errors })),
        )
            .into_response()
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
