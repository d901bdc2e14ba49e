//! The banking agent's configuration: defaults, overridden by environment variables. This is the
//! only file that reads the environment.

use std::{net::SocketAddr, path::PathBuf, str::FromStr as _};

use anyhow::Context as _;
use kit::agent::attack::Toggles;

/// Everything the agent needs to start; validated once, then passed explicitly.
#[derive(Clone)]
pub struct Config {
    /// Where to listen (`BANKING_BIND`, default `127.0.0.1:8091`).
    pub bind: SocketAddr,
    /// The base URL callers reach us at, written into the agent card (`BANKING_URL`, default
    /// `http://localhost:<port of BANKING_BIND>`). `None` derives `http://<bound address>` once
    /// the listener is bound, which is what tests on port 0 want.
    pub public_url: Option<String>,
    /// The idp: issuer of the tokens we accept and the token endpoint of our own hop
    /// (`IDP_ISSUER`, default `http://localhost:8081`).
    pub idp_issuer: String,
    /// The credential issuer, verify-rar (`VAULT_ADDR`, default `http://localhost:8200`).
    pub vault_addr: String,
    /// Our key is `<keys_dir>/banking.key` (`KEYS_DIR`, default `.data/keys`).
    pub keys_dir: PathBuf,
    /// Postgres (`DATABASE_URL`, required). The agent's own events live in schema `banking`
    /// under this role; the ledger operations connect to the same host, port and database as
    /// the ephemeral user the issuer creates, never as this role.
    pub database_url: String,
    /// One JSON object a log line (`LOG_FORMAT=json`), for log shippers.
    pub log_json: bool,
    /// The S6 attack toggles (`ATTACK_TOGGLES=on` lets a message switch its run;
    /// `BANKING_ATTACK=<id>` switches every run): off by default.
    pub attacks: Toggles,
}

impl std::fmt::Debug for Config {
    // The database URL carries a password: it never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("public_url", &self.public_url)
            .field("idp_issuer", &self.idp_issuer)
            .field("vault_addr", &self.vault_addr)
            .field("keys_dir", &self.keys_dir)
            .field("attacks", &self.attacks)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Defaults for a database URL; everything else as in `just up`.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8091)),
            public_url: None,
            idp_issuer: "http://localhost:8081".into(),
            vault_addr: "http://localhost:8200".into(),
            keys_dir: ".data/keys".into(),
            database_url: database_url.into(),
            log_json: false,
            attacks: Toggles::off(crate::agent::NAME),
        }
    }

    /// Defaults overridden by the environment; `DATABASE_URL` is required.
    pub fn from_env() -> anyhow::Result<Self> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let mut c = Self::new(var("DATABASE_URL").context("DATABASE_URL is required")?);
        if let Some(v) = var("BANKING_BIND") {
            c.bind = v
                .parse()
                .with_context(|| format!("BANKING_BIND={v} is not host:port"))?;
        }
        c.public_url = Some(
            var("BANKING_URL").unwrap_or_else(|| format!("http://localhost:{}", c.bind.port())),
        );
        if let Some(v) = var("IDP_ISSUER") {
            c.idp_issuer = v;
        }
        if let Some(v) = var("VAULT_ADDR") {
            c.vault_addr = v;
        }
        if let Some(v) = var("KEYS_DIR") {
            c.keys_dir = v.into();
        }
        c.log_json = var("LOG_FORMAT").is_some_and(|f| f == "json");
        c.attacks = Toggles::parse(
            crate::agent::NAME,
            var("ATTACK_TOGGLES").as_deref(),
            var("BANKING_ATTACK").as_deref(),
        )?;
        c.validate()?;
        Ok(c)
    }

    /// Checks what would otherwise fail later and less clearly.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (name, value) in [
            ("IDP_ISSUER", Some(&self.idp_issuer)),
            ("VAULT_ADDR", Some(&self.vault_addr)),
            ("BANKING_URL", self.public_url.as_ref()),
        ] {
            if let Some(v) = value {
                let u = url::Url::parse(v).with_context(|| format!("{name}={v} is not a URL"))?;
                anyhow::ensure!(
                    matches!(u.scheme(), "http" | "https"),
                    "{name} must be an http(s) URL"
                );
            }
        }
        tokio_postgres::Config::from_str(&self.database_url)
            .context("DATABASE_URL is not a Postgres URL")?;
        Ok(())
    }
}
