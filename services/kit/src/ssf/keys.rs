//! The transmitter's RS256 signing key, and the receiver's RS256-pinned check of a SET.
//!
//! Every other token in the platform is ES256 ([`crate::jwt`]); SETs are RS256 because the CAEP
//! interoperability profile requires it, with keys of at least 2048 bits. As in [`crate::jwt`],
//! the algorithm is pinned before any key is chosen: a SET whose header names anything but
//! RS256 is refused unread.

use std::path::Path;

use aws_lc_rs::{encoding::AsDer as _, rsa::KeySize};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, jwk::Jwk};
use serde::Serialize;

use super::SET_TYP;
use crate::jwt::TokenError;

/// The one algorithm SETs are signed and accepted with.
pub const ALG: Algorithm = Algorithm::RS256;

/// The smallest RSA modulus the profile allows.
pub const MIN_RSA_BITS: usize = 2048;

/// A 2048-bit RSA private key with its key id, able to sign SETs and publish its public half.
#[derive(Clone)]
pub struct RsaSigningKey {
    kid: String,
    encoding: EncodingKey,
    public: Jwk,
    pem: String,
    modulus_bits: usize,
}

impl std::fmt::Debug for RsaSigningKey {
    // The private key never appears in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaSigningKey")
            .field("kid", &self.kid)
            .field("modulus_bits", &self.modulus_bits)
            .finish_non_exhaustive()
    }
}

impl RsaSigningKey {
    /// Generates a fresh 2048-bit key (aws-lc-rs), its `kid` the RFC 7638 thumbprint.
    pub fn generate() -> anyhow::Result<Self> {
        let pair = aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| anyhow::anyhow!("could not generate an RSA key"))?;
        let der = pair
            .as_der()
            .map_err(|_| anyhow::anyhow!("could not encode the RSA key"))?;
        Self::from_pem(&der_to_pem(der.as_ref()))
    }

    /// Loads a PKCS#8 PEM private key; refuses keys under [`MIN_RSA_BITS`].
    pub fn from_pem(pem: &str) -> anyhow::Result<Self> {
        let der = pem_to_der(pem)?;
        let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(&der)
            .map_err(|e| anyhow::anyhow!("not an RSA PKCS#8 key: {e}"))?;
        let modulus_bits = pair.public_modulus_len() * 8;
        anyhow::ensure!(
            modulus_bits >= MIN_RSA_BITS,
            "the RSA key has {modulus_bits} bits; SETs need at least {MIN_RSA_BITS}"
        );
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes())?;
        let mut public = Jwk::from_encoding_key(&encoding, ALG)?;
        let kid = thumbprint(&public);
        public.common.key_id = Some(kid.clone());
        public.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
        Ok(Self {
            kid,
            encoding,
            public,
            pem: pem.to_owned(),
            modulus_bits,
        })
    }

    /// Loads `<dir>/<name>.key` (PEM PKCS#8), generating and saving it (mode 0600) on first use,
    /// so the `kid` and the published key survive restarts.
    pub fn load_or_generate(dir: &Path, name: &str) -> anyhow::Result<Self> {
        let path = dir.join(format!("{name}.key"));
        if path.exists() {
            return Self::from_pem(&std::fs::read_to_string(&path)?);
        }
        std::fs::create_dir_all(dir)?;
        let key = Self::generate()?;
        write_private(&path, &key.pem)?;
        Ok(key)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn modulus_bits(&self) -> usize {
        self.modulus_bits
    }

    /// The public key as a JWK (`kty: RSA`, `alg: RS256`, `use: sig`, `kid`).
    pub fn public_jwk(&self) -> &Jwk {
        &self.public
    }

    /// A key to verify what this key signs.
    pub fn decoding_key(&self) -> anyhow::Result<DecodingKey> {
        Ok(DecodingKey::from_jwk(&self.public)?)
    }

    /// Signs `claims` as a SET: header `{alg: RS256, typ: secevent+jwt, kid}`.
    pub fn sign<T: Serialize>(&self, claims: &T) -> anyhow::Result<String> {
        let mut header = Header::new(ALG);
        header.typ = Some(SET_TYP.to_owned());
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }
}

/// RFC 7638 thumbprint of an RSA public key.
fn thumbprint(jwk: &Jwk) -> String {
    use sha2::Digest as _;
    let (n, e) = match &jwk.algorithm {
        jsonwebtoken::jwk::AlgorithmParameters::RSA(rsa) => (rsa.n.clone(), rsa.e.clone()),
        _ => (String::new(), String::new()),
    };
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
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

/// The header of a SET, read before any key is chosen.
#[derive(Debug, Clone)]
pub struct SetHeader {
    pub kid: Option<String>,
    pub typ: Option<String>,
}

/// Reads a SET's header without trusting it: three parts, `alg` exactly RS256.
pub fn peek_set_header(token: &str) -> Result<SetHeader, TokenError> {
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
        .ok_or(TokenError::Malformed)?;
    if alg != "RS256" {
        return Err(TokenError::AlgorithmNotAllowed(alg.to_owned()));
    }
    Ok(SetHeader {
        kid: value.get("kid").and_then(|v| v.as_str()).map(str::to_owned),
        typ: value.get("typ").and_then(|v| v.as_str()).map(str::to_owned),
    })
}

/// Verifies the RS256 signature of `token` with `key` and returns its claims as JSON. Times,
/// issuer and audience are left to the caller: a SET has no `exp` (the profile forbids it), and
/// the receiver maps each failed rule to its own RFC 8935 error code.
pub fn verify_set_signature(
    token: &str,
    key: &DecodingKey,
) -> Result<serde_json::Map<String, serde_json::Value>, TokenError> {
    let mut v = Validation::new(ALG);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(token, key, &v)
        .map(|d| d.claims)
        .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::InvalidSignature => TokenError::BadSignature,
                K::InvalidAlgorithm | K::InvalidKeyFormat | K::InvalidRsaKey(_) => {
                    TokenError::AlgorithmNotAllowed("key does not fit RS256".into())
                }
                K::Json(e) => TokenError::InvalidClaims(e.to_string()),
                _ => TokenError::Malformed,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn signs_rs256_sets_that_verify_only_with_its_key() {
        let key = RsaSigningKey::generate().unwrap();
        assert!(key.modulus_bits() >= 2048);
        let token = key.sign(&json!({"iss":"x","jti":"j"})).unwrap();
        let h = peek_set_header(&token).unwrap();
        assert_eq!(h.typ.as_deref(), Some(SET_TYP));
        assert_eq!(h.kid.as_deref(), Some(key.kid()));
        let claims = verify_set_signature(&token, &key.decoding_key().unwrap()).unwrap();
        assert_eq!(claims["jti"], "j");
        let other = RsaSigningKey::generate().unwrap();
        assert_eq!(
            verify_set_signature(&token, &other.decoding_key().unwrap()).unwrap_err(),
            TokenError::BadSignature
        );
    }

    #[test]
    fn refuses_other_algorithms_before_any_key() {
        let es = crate::jwt::SigningKey::generate("k").unwrap();
        let token = es.sign(SET_TYP, &json!({"iss":"x"})).unwrap();
        assert_eq!(
            peek_set_header(&token).unwrap_err(),
            TokenError::AlgorithmNotAllowed("ES256".into())
        );
    }

    #[test]
    fn keys_persist_with_a_stable_kid() {
        let dir = std::env::temp_dir().join(format!("kit-rsa-{}", crate::random_id(6)));
        let a = RsaSigningKey::load_or_generate(&dir, "ssf").unwrap();
        let b = RsaSigningKey::load_or_generate(&dir, "ssf").unwrap();
        assert_eq!(a.kid(), b.kid());
        let jwk = serde_json::to_value(b.public_jwk()).unwrap();
        assert_eq!(jwk["kty"], "RSA");
        assert_eq!(jwk["alg"], "RS256");
        let _ = std::fs::remove_dir_all(dir);
    }
}
