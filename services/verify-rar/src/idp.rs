//! What the issuer asks of the identity provider: is this delegated token genuine (JWKS,
//! pinned ES256, `typ: at+jwt`, issuer, audience, expiry), and is its session still alive
//! (RFC 7662 introspection with our client credentials).

use kit::{
    claims::{AccessClaims, TYP_ACCESS},
    jwt::{self, Expect},
    rar::{self, AuthorizationDetail},
};

use crate::{config::MOUNT, error::Error, state::AppState};

/// A verified delegated token and what it allows here.
#[derive(Debug, Clone)]
pub struct Delegated {
    pub claims: AccessClaims,
    /// The normalized `authorization_details`.
    pub rar: Vec<AuthorizationDetail>,
    /// The `verify-rar/creds/<role>` paths its `vault:path_access` entries allow reading.
    pub paths: Vec<String>,
}

/// Verifies `token`; `Err` is the reason for the refusal, in words.
pub async fn verify(state: &AppState, token: &str) -> Result<Delegated, String> {
    let header = jwt::peek_header(token).map_err(|e| e.to_string())?;
    if header.typ.as_deref() != Some(TYP_ACCESS) {
        return Err(format!("token typ must be {TYP_ACCESS}"));
    }
    let expect = Expect {
        issuer: Some(&state.config.idp_issuer),
        audience: Some(&state.config.audience),
    };
    let claims: AccessClaims = state
        .jwks
        .verify(token, &expect)
        .await
        .map_err(|e| e.to_string())?;
    let rar = claims
        .rar()
        .iter()
        .map(AuthorizationDetail::validated)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("authorization_details: {e}"))?;
    let prefix = format!("{MOUNT}/creds/");
    let paths: Vec<String> = rar
        .iter()
        .filter(|d| d.kind == rar::VAULT_PATH_ACCESS)
        .flat_map(|d| d.locations.clone().unwrap_or_default())
        .filter(|l| l.starts_with(&prefix))
        .collect();
    if paths.is_empty() {
        return Err(format!(
            "token has no vault:path_access entry for {prefix}<role>"
        ));
    }
    Ok(Delegated { claims, rar, paths })
}

/// Asks the idp whether the token's session is still alive. Fails closed: an idp that cannot
/// answer is `Unavailable`, never "active".
pub async fn session_active(state: &AppState, token: &str) -> Result<bool, Error> {
    let c = &state.config;
    let resp = state
        .http
        .post(format!("{}/introspect", c.idp_issuer))
        .basic_auth(&c.idp_client_id, Some(&c.idp_client_secret))
        .form(&[("token", token)])
        .send()
        .await
        .map_err(|e| Error::Unavailable(format!("introspection failed: {e}")))?;
    if !resp.status().is_success() {
        return Err(Error::Unavailable(format!(
            "introspection answered {}",
            resp.status()
        )));
    }
    let body: serde_json::Value = resp
        .json()
        .await
        .map_err(|e| Error::Unavailable(format!("introspection answer unreadable: {e}")))?;
    Ok(body.get("active").and_then(serde_json::Value::as_bool) == Some(true))
}
