//! The form body of every OAuth endpoint, parsed so that malformed input gets an OAuth error
//! (`invalid_request`), never a framework rejection: wrong content type, bad encoding, and
//! repeated parameters (RFC 6749 §3.2) are all refused the same way.

use std::collections::HashMap;

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::header::CONTENT_TYPE,
};

use crate::error::{Error, OAuthError};

/// Largest form body an OAuth endpoint accepts.
pub const MAX_FORM_BYTES: usize = 64 * 1024;

/// Form parameters, each at most once.
#[derive(Debug, Clone, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn require(&self, key: &str) -> Result<&str, OAuthError> {
        self.get(key)
            .ok_or_else(|| OAuthError::invalid_request(format!("{key} is required")))
    }

    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let mut map = HashMap::new();
        std::str::from_utf8(body)
            .map_err(|_| OAuthError::invalid_request("the body is not UTF-8"))?;
        for (k, v) in url::form_urlencoded::parse(body) {
            // Postgres text cannot hold NUL, and no OAuth parameter needs one.
            if k.contains('\0') || v.contains('\0') {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {} contains a NUL character",
                    k.replace('\0', "")
                )));
            }
            if map.insert(k.to_string(), v.into_owned()).is_some() {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {k} is repeated"
                )));
            }
        }
        Ok(Self(map))
    }
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let is_form = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';').next().is_some_and(|m| {
                    m.trim()
                        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
                })
            });
        if !is_form {
            return Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            )
            .into());
        }
        let body = Bytes::from_request(req, state).await.map_err(|_| {
            OAuthError::invalid_request(format!("the body must be at most {MAX_FORM_BYTES} bytes"))
        })?;
        Ok(Self::parse(&body)?)
    }
}
