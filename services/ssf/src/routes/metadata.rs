//! `GET /.well-known/ssf-configuration[/<issuer path>]` (SSF §7) and `GET /jwks`.
//!
//! The metadata carries every member the CAEP interoperability profile makes mandatory for a
//! transmitter, plus `events_supported` (not an SSF metadata member; the same list every
//! stream configuration carries) so a receiver can choose before it creates a stream.

use axum::{
    Json,
    extract::{Path, State},
};
use kit::ssf::{POLL, PUSH, SPEC_VERSION, TransmitterMetadata};
use serde_json::{Value, json};

use crate::{error::Error, state::AppState, stream::events_supported};

pub fn document(state: &AppState) -> TransmitterMetadata {
    let base = &state.base_url;
    let mut other = serde_json::Map::new();
    other.insert("events_supported".into(), json!(events_supported()));
    TransmitterMetadata {
        spec_version: Some(SPEC_VERSION.into()),
        issuer: state.issuer.clone(),
        jwks_uri: Some(format!("{base}/jwks")),
        delivery_methods_supported: vec![PUSH.into(), POLL.into()],
        configuration_endpoint: Some(format!("{base}/ssf/streams")),
        status_endpoint: Some(format!("{base}/ssf/status")),
        add_subject_endpoint: Some(format!("{base}/ssf/subjects/add")),
        remove_subject_endpoint: Some(format!("{base}/ssf/subjects/remove")),
        verification_endpoint: Some(format!("{base}/ssf/verify")),
        critical_subject_members: Vec::new(),
        authorization_schemes: vec![json!({"spec_urn": "urn:ietf:rfc:6749"})],
        default_subjects: Some(state.config.default_subjects.as_str().into()),
        other,
    }
}

/// The issuer's path, without the leading and trailing `/` ("" for an issuer at the root).
fn issuer_path(state: &AppState) -> String {
    url::Url::parse(&state.issuer)
        .map(|u| u.path().trim_matches('/').to_owned())
        .unwrap_or_default()
}

pub async fn metadata(State(state): State<AppState>) -> Result<Json<TransmitterMetadata>, Error> {
    if !issuer_path(&state).is_empty() {
        return Err(Error::NoRoute);
    }
    Ok(Json(document(&state)))
}

pub async fn metadata_at_path(
    State(state): State<AppState>,
    Path(path): Path<String>,
) -> Result<Json<TransmitterMetadata>, Error> {
    let want = issuer_path(&state);
    if want.is_empty() || path.trim_matches('/') != want {
        return Err(Error::NoRoute);
    }
    Ok(Json(document(&state)))
}

/// The RS256 key SETs are signed with (`kty: RSA`, 2048-bit modulus, `alg: RS256`).
pub async fn jwks(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"keys": [state.key.public_jwk()]}))
}
