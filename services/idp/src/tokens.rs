//! Our own tokens: signing them, and verifying the ones presented back to us (as subject
//! tokens, at introspection, revocation and our user APIs).

use jsonwebtoken::DecodingKey;
use kit::{
    claims::{AccessClaims, TYP_ACCESS},
    jwt::{self, Expect, SigningKey, TokenError},
};
use serde::Serialize;

/// The idp's signing identity: its issuer URL and its ES256 key.
pub struct Issuer {
    pub url: String,
    key: SigningKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("url", &self.url)
            .field("kid", &self.key.kid())
            .finish()
    }
}

impl Issuer {
    pub fn new(url: String, key: SigningKey) -> anyhow::Result<Self> {
        let decoding = key.decoding_key()?;
        Ok(Self { url, key, decoding })
    }

    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    pub fn sign_access(&self, claims: &AccessClaims) -> anyhow::Result<String> {
        self.key.sign(TYP_ACCESS, claims)
    }

    /// What the security event of an issuance records of the token: its header and claims,
    /// without the signature.
    pub fn decoded(&self, claims: &AccessClaims) -> serde_json::Value {
        serde_json::json!({
            "header": {"alg": "ES256", "typ": TYP_ACCESS, "kid": self.key.kid()},
            "claims": claims,
        })
    }

    pub fn sign_jwt<T: Serialize>(&self, claims: &T) -> anyhow::Result<String> {
        self.key.sign("JWT", claims)
    }

    /// Verifies an access token we issued: pinned ES256, our key, our issuer, not expired,
    /// typed `at+jwt` (so an ID token cannot pass for an access token). The audience is the
    /// caller's to check. Session liveness and revocation are checked against the store.
    pub fn verify_access(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let header = jwt::peek_header(token)?;
        if header.kid.as_deref() != Some(self.key.kid()) {
            return Err(TokenError::UnknownKey(header.kid.unwrap_or_default()));
        }
        if header.typ.as_deref() != Some(TYP_ACCESS) {
            return Err(TokenError::InvalidClaims("not an access token".into()));
        }
        jwt::verify(
            token,
            &self.decoding,
            &Expect {
                issuer: Some(&self.url),
                audience: None,
            },
        )
    }
}
