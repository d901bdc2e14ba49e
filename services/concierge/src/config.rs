//! The concierge's configuration, from `CONCIERGE_*` and shared variables. The only file that
//! reads the environment.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context as _;

#[derive(Debug, Clone)]
pub struct Config {
    /// `CONCIERGE_BIND` (default `127.0.0.1:8090`).
    pub bind: SocketAddr,
    /// `CONCIERGE_URL`: where the card says we are (default `http://localhost:8090`).
    pub public_url: Option<String>,
    /// `IDP_ISSUER`.
    pub issuer: String,
    /// `KEYS_DIR`: the concierge's key is `<dir>/concierge.key` (default `.data/keys`).
    pub keys_dir: PathBuf,
    /// `DATABASE_URL`: the concierge keeps its security events in schema `concierge`.
    pub database_url: String,
    /// `BANKING_URL`, `IAM_URL`, `ENTRA_URL`: the specialists' base URLs (their cards are there).
    pub banking_url: String,
    pub iam_url: String,
    pub entra_url: String,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Ok(Self {
            bind: var("CONCIERGE_BIND")
                .unwrap_or_else(|| "127.0.0.1:8090".into())
                .parse()
                .context("CONCIERGE_BIND must be host:port")?,
            public_url: var("CONCIERGE_URL"),
            issuer: var("IDP_ISSUER").unwrap_or_else(|| "http://localhost:8081".into()),
            keys_dir: var("KEYS_DIR")
                .unwrap_or_else(|| ".data/keys".into())
                .into(),
            database_url: var("DATABASE_URL").context("DATABASE_URL is required")?,
            banking_url: var("BANKING_URL").unwrap_or_else(|| "http://localhost:8091".into()),
            iam_url: var("IAM_URL").unwrap_or_else(|| "http://localhost:8092".into()),
            entra_url: var("ENTRA_URL").unwrap_or_else(|| "http://localhost:8093".into()),
        })
    }
}
