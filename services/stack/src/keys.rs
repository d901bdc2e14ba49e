//! Dev signing keys: each agent's and service's ES256 key in `.data/keys`, generated on first
//! run and never committed. A real deployment replaces these with SPIRE-issued identities.

use std::path::Path;

use kit::jwt::SigningKey;

/// Loads (or creates) the key of `name`, and writes its public JWK beside it as
/// `<name>.jwk.json` so the idp's agent registry can pick it up.
pub fn ensure(dir: &Path, name: &str) -> anyhow::Result<SigningKey> {
    let key = SigningKey::load_or_generate(dir, name)?;
    let public = serde_json::to_string_pretty(key.public_jwk())?;
    std::fs::write(dir.join(format!("{name}.jwk.json")), public)?;
    Ok(key)
}
