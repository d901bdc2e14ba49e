//! Who is calling: a receiver (management API and poll, each with its own bearer token) or the
//! source (the internal `POST /events`, with `SSF_SOURCE_TOKEN`). Tokens travel only in the
//! `Authorization` header, never in the query (CAEP interoperability profile).

use axum::http::{HeaderMap, header};
use subtle::ConstantTimeEq as _;

use crate::{error::Error, state::AppState};

/// An authenticated receiver: its configured name, which owns its streams and is their `aud`.
#[derive(Debug, Clone)]
pub struct Caller {
    pub receiver: String,
}

fn bearer(headers: &HeaderMap) -> Result<&str, Error> {
    let missing = || Error::Unauthorized {
        missing: true,
        message: "a bearer token is required".into(),
    };
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(missing)?
        .to_str()
        .map_err(|_| missing())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(missing());
    }
    Ok(token.trim())
}

fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The receiver whose token this is.
pub fn receiver(state: &AppState, headers: &HeaderMap) -> Result<Caller, Error> {
    let token = bearer(headers)?;
    // Every configured token is compared, so the time taken does not say which one was close.
    let mut found = None;
    for r in &state.config.receivers {
        if same(token, &r.token) {
            found = Some(r.name.clone());
        }
    }
    found
        .map(|receiver| Caller { receiver })
        .ok_or_else(|| Error::Unauthorized {
            missing: false,
            message: "the bearer token is not a receiver's".into(),
        })
}

/// Checks the source's token.
pub fn source(state: &AppState, headers: &HeaderMap) -> Result<(), Error> {
    let token = bearer(headers)?;
    match &state.config.source_token {
        Some(expected) if same(token, expected) => Ok(()),
        _ => Err(Error::Unauthorized {
            missing: false,
            message: "the bearer token is not the event source's".into(),
        }),
    }
}
