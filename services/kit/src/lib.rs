//! Shared library of the platform: the contracts every service agrees on.
//!
//! A short tour, in the order a request meets them:
//!
//! - [`a2a`]: A2A 1.0 over JSON-RPC: types, the server a specialist plugs into, the client.
//! - [`agent`]: what every agent shares: identity, guard, delegation with step-up, its events.
//! - [`jwt`]: ES256 signing keys, and verification with a pinned algorithm. Every token in the
//!   platform (user access tokens, delegated tokens, agents' actor tokens) is an ES256 JWT.
//! - [`jwks`]: publishing a JSON Web Key Set, and a caching client that refetches on an unknown `kid`.
//! - [`claims`]: the token claim types: `sub`, the nested `act` chain, `may_act`, `sid`, `jti`,
//!   `authorization_details`, `acr`.
//! - [`rar`]: RFC 9396 authorization details: the catalogue of types and actions this platform
//!   knows, strict validation, the canonical fingerprint, the plain-words summary, and the
//!   "authority only narrows" coverage rule.
//! - [`guard`]: the resource-server check of a delegated token (signature, audience, live session).
//! - [`events`]: the structured security event every decision writes, and the sink that stores it
//!   and publishes it with Postgres `NOTIFY`.
//! - [`pg`]: connection pools and per-service schema migrations.
//! - [`ssf`]: Shared Signals (SSF 1.0 / CAEP): subjects, SETs, the RS256 SET key, and the
//!   receiver every service embeds to act on a revoked session.
//! - [`telemetry`]: logging set-up shared by every binary.
//!
//! This crate is an API boundary: a new `pub` item here is a change to a cross-service contract.

pub mod a2a;
pub mod agent;
pub mod claims;
pub mod events;
pub mod exchange;
pub mod guard;
pub mod jwks;
pub mod jwt;
pub mod pg;
pub mod rar;
pub mod sse;
pub mod ssf;
pub mod telemetry;

/// Seconds since the Unix epoch, the unit of every JWT time claim.
pub fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A random URL-safe identifier with `bytes` bytes of entropy (for `jti`s, codes, ids).
pub fn random_id(bytes: usize) -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// Whether `id` is a URL-safe word of at most 128 bytes, the shape of every id and name the
/// platform issues ([`random_id`], `ses_…`, `apr_…`). Anything else in a path or a query names
/// nothing we have, and never reaches a store (which cannot hold some of what a URL can carry,
/// like NUL).
pub fn plain_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Lower-case hex SHA-256 of `data` (how secrets such as codes and refresh tokens are stored:
/// never the secret itself).
pub fn sha256_hex(data: impl AsRef<[u8]>) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(data.as_ref())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Resolves on Ctrl-C or SIGTERM: every binary's shutdown trigger.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}
