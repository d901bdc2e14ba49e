//! ES256 signing keys and token verification with a pinned algorithm.
//!
//! Verification never trusts the token's header to choose the algorithm: the header's `alg` must
//! be exactly `ES256` before any key is looked at, which is what refuses `alg: none` and the
//! HS256-keyed-with-the-public-key confusion.

use std::path::Path;

use aws_lc_rs::{rand::SystemRandom, signature::EcdsaKeyPair};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, jwk::Jwk};
use serde::{Serialize, de::DeserializeOwned};

/// The only signature algorithm the platform issues and accepts for its tokens.
pub const ALG: Algorithm = Algorithm::ES256;

/// Clock skew tolerated on `exp`, `nbf` and `iat` checks.
pub const LEEWAY_SECS: u64 = 30;

/// Why a token was refused. The messages are what lands in error descriptions and security
/// events, so they name the rule, not the library.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum TokenError {
    #[error("token is not a well-formed JWT")]
    Malformed,
    #[error("token algorithm {0} is not allowed (only ES256)")]
    AlgorithmNotAllowed(String),
    #[error("token key id is missing")]
    MissingKid,
    #[error("token signed with an unknown key {0}")]
    UnknownKey(String),
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not yet valid")]
    NotYetValid,
    #[error("token audience does not match {0}")]
    WrongAudience(String),
    #[error("token issuer does not match {0}")]
    WrongIssuer(String),
    #[error("token claims are invalid: {0}")]
    InvalidClaims(String),
    #[error("key set could not be fetched")]
    KeySetUnavailable,
}

/// An ES256 private key with its key id, able to sign tokens and publish its public half.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    public: Jwk,
    pkcs8_der: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    // The private key never appears in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a fresh P-256 key.
    pub fn generate(kid: impl Into<String>) -> anyhow::Result<Self> {
        let doc = EcdsaKeyPair::generate_pkcs8(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &SystemRandom::new(),
        )
        .map_err(|_| anyhow::anyhow!("could not generate a P-256 key"))?;
        Self::from_pkcs8_der(kid, doc.as_ref())
    }

    /// Loads a key from its PKCS#8 DER bytes.
    pub fn from_pkcs8_der(kid: impl Into<String>, der: &[u8]) -> anyhow::Result<Self> {
        let kid = kid.into();
        let encoding = EncodingKey::from_ec_der(der);
        let mut public = Jwk::from_encoding_key(&encoding, ALG)?;
        public.common.key_id = Some(kid.clone());
        public.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
        Ok(Self {
            kid,
            encoding,
            public,
            pkcs8_der: der.to_vec(),
        })
    }

    /// Loads `<dir>/<name>.key` (PEM PKCS#8), generating and saving it on first use.
    /// The key id is derived from the public key, so it is stable across restarts.
    pub fn load_or_generate(dir: &Path, name: &str) -> anyhow::Result<Self> {
        let path = dir.join(format!("{name}.key"));
        let der = if path.exists() {
            let pem = std::fs::read_to_string(&path)?;
            pem_to_der(&pem)?
        } else {
            std::fs::create_dir_all(dir)?;
            let key = Self::generate("tmp")?;
            write_private(&path, &der_to_pem(&key.pkcs8_der))?;
            key.pkcs8_der
        };
        let provisional = Self::from_pkcs8_der("tmp", &der)?;
        let kid = thumbprint(&provisional.public);
        Self::from_pkcs8_der(kid, &der)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK (with `kid`, `alg`, `use`).
    pub fn public_jwk(&self) -> &Jwk {
        &self.public
    }

    /// A key to verify what this key signs.
    pub fn decoding_key(&self) -> anyhow::Result<DecodingKey> {
        Ok(DecodingKey::from_jwk(&self.public)?)
    }

    /// Signs `claims` with header `{alg: ES256, typ, kid}`.
    pub fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> anyhow::Result<String> {
        let mut header = Header::new(ALG);
        header.typ = Some(typ.to_owned());
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }

    /// The same key under another `kid` (a forged token in an attack toggle).
    pub fn with_kid(&self, kid: impl Into<String>) -> Self {
        Self {
            kid: kid.into(),
            ..self.clone()
        }
    }

    /// PEM text of the private key (what the stack writes to `.data/keys`).
    pub fn to_pem(&self) -> String {
        der_to_pem(&self.pkcs8_der)
    }
}

/// RFC 7638 JWK thumbprint of an EC public key, used as a stable `kid`.
pub fn thumbprint(jwk: &Jwk) -> String {
    use sha2::Digest as _;
    let (x, y) = match &jwk.algorithm {
        jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(ec) => (ec.x.clone(), ec.y.clone()),
        _ => (String::new(), String::new()),
    };
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical))
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())?;
    Ok(())
}

fn der_to_pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END PRIVATE KEY-----\n");
    out
}

fn pem_to_der(pem: &str) -> anyhow::Result<Vec<u8>> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    Ok(base64::engine::general_purpose::STANDARD.decode(body.trim())?)
}

/// The parts of a JWT header we look at before verifying.
#[derive(Debug, Clone)]
pub struct PeekedHeader {
    pub alg: String,
    pub kid: Option<String>,
    pub typ: Option<String>,
}

/// Reads the header without trusting it: the algorithm is checked against [`ALG`] here, so a
/// token naming any other algorithm is refused before a key is chosen.
pub fn peek_header(token: &str) -> Result<PeekedHeader, TokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(h)
        .map_err(|_| TokenError::Malformed)?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
    let alg = value
        .get("alg")
        .and_then(|v| v.as_str())
        .ok_or(TokenError::Malformed)?
        .to_owned();
    let kid = value.get("kid").and_then(|v| v.as_str()).map(str::to_owned);
    let typ = value.get("typ").and_then(|v| v.as_str()).map(str::to_owned);
    if alg != "ES256" {
        return Err(TokenError::AlgorithmNotAllowed(alg));
    }
    Ok(PeekedHeader { alg, kid, typ })
}

/// What a verifier expects of a token besides a good signature.
#[derive(Debug, Clone)]
pub struct Expect<'a> {
    pub issuer: Option<&'a str>,
    /// `None` skips the audience check (the caller checks it against a set it knows).
    pub audience: Option<&'a str>,
}

/// Verifies signature, algorithm, `exp`/`nbf` (with [`LEEWAY_SECS`]), issuer and audience, and
/// decodes the claims.
pub fn verify<T: DeserializeOwned>(
    token: &str,
    key: &DecodingKey,
    expect: &Expect<'_>,
) -> Result<T, TokenError> {
    let mut v = Validation::new(ALG);
    v.leeway = LEEWAY_SECS;
    v.validate_nbf = true;
    v.set_required_spec_claims(&["exp", "iat", "sub"]);
    match expect.audience {
        Some(aud) => v.set_audience(&[aud]),
        None => v.validate_aud = false,
    }
    if let Some(iss) = expect.issuer {
        v.set_issuer(&[iss]);
    }
    jsonwebtoken::decode::<T>(token, key, &v)
        .map(|d| d.claims)
        .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::InvalidSignature => TokenError::BadSignature,
                K::ExpiredSignature => TokenError::Expired,
                K::ImmatureSignature => TokenError::NotYetValid,
                K::InvalidAudience => {
                    TokenError::WrongAudience(expect.audience.unwrap_or("").to_owned())
                }
                K::InvalidIssuer => TokenError::WrongIssuer(expect.issuer.unwrap_or("").to_owned()),
                K::InvalidAlgorithm => TokenError::AlgorithmNotAllowed("mismatch".into()),
                K::MissingRequiredClaim(c) => TokenError::InvalidClaims(format!("missing {c}")),
                K::Json(e) => TokenError::InvalidClaims(e.to_string()),
                _ => TokenError::Malformed,
            }
        })
}

/// Decodes the claims of a token without verifying it. Only for display (the token inspector)
/// and for choosing which key to verify with; never for a decision.
pub fn decode_unverified(
    token: &str,
) -> Result<(serde_json::Value, serde_json::Value), TokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(c)) = (parts.next(), parts.next()) else {
        return Err(TokenError::Malformed);
    };
    let dec = |s: &str| -> Result<serde_json::Value, TokenError> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| TokenError::Malformed)?;
        serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
    };
    Ok((dec(h)?, dec(c)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(exp_offset: i64) -> serde_json::Value {
        let now = crate::now_secs();
        json!({"iss":"https://idp","sub":"alice","aud":"svc","iat":now,"exp":now+exp_offset})
    }

    #[test]
    fn signs_and_verifies_es256() {
        let key = SigningKey::generate("k1").unwrap();
        let token = key.sign("at+jwt", &claims(60)).unwrap();
        let header = peek_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some("k1"));
        let got: serde_json::Value = verify(
            &token,
            &key.decoding_key().unwrap(),
            &Expect {
                issuer: Some("https://idp"),
                audience: Some("svc"),
            },
        )
        .unwrap();
        assert_eq!(got["sub"], "alice");
    }

    #[test]
    fn refuses_alg_none_and_hs256_before_any_key() {
        let b = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let none = format!("{}.{}.", b(json!({"alg":"none"})), b(claims(60)));
        assert_eq!(
            peek_header(&none).unwrap_err(),
            TokenError::AlgorithmNotAllowed("none".into())
        );
        let hs = format!(
            "{}.{}.sig",
            b(json!({"alg":"HS256","kid":"k1"})),
            b(claims(60))
        );
        assert_eq!(
            peek_header(&hs).unwrap_err(),
            TokenError::AlgorithmNotAllowed("HS256".into())
        );
    }

    #[test]
    fn refuses_expired_wrong_audience_and_other_key() {
        let key = SigningKey::generate("k1").unwrap();
        let other = SigningKey::generate("k2").unwrap();
        let dk = key.decoding_key().unwrap();
        let expect = Expect {
            issuer: Some("https://idp"),
            audience: Some("svc"),
        };
        let expired = key.sign("at+jwt", &claims(-120)).unwrap();
        assert_eq!(
            verify::<serde_json::Value>(&expired, &dk, &expect).unwrap_err(),
            TokenError::Expired
        );
        let good = key.sign("at+jwt", &claims(60)).unwrap();
        let wrong_aud = Expect {
            issuer: Some("https://idp"),
            audience: Some("other"),
        };
        assert!(matches!(
            verify::<serde_json::Value>(&good, &dk, &wrong_aud).unwrap_err(),
            TokenError::WrongAudience(_)
        ));
        let forged = other.sign("at+jwt", &claims(60)).unwrap();
        assert_eq!(
            verify::<serde_json::Value>(&forged, &dk, &expect).unwrap_err(),
            TokenError::BadSignature
        );
    }

    #[test]
    fn key_round_trips_through_pem_with_a_stable_kid() {
        let dir = std::env::temp_dir().join(format!("kit-key-{}", crate::random_id(6)));
        let a = SigningKey::load_or_generate(&dir, "agent").unwrap();
        let b = SigningKey::load_or_generate(&dir, "agent").unwrap();
        assert_eq!(a.kid(), b.kid());
        let token = a.sign("JWT", &claims(60)).unwrap();
        let expect = Expect {
            issuer: None,
            audience: Some("svc"),
        };
        verify::<serde_json::Value>(&token, &b.decoding_key().unwrap(), &expect).unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }
}
