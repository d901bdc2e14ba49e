//! The iam agent's configuration: defaults, overridden by environment variables. This is the only
//! file that reads the environment.

use std::{net::SocketAddr, path::PathBuf, str::FromStr as _};

use anyhow::Context as _;

/// Everything the agent needs to start; validated once, then passed explicitly.
#[derive(Clone)]
pub struct Config {
    /// Where to listen (`IAM_BIND`, default `127.0.0.1:8092`).
    pub bind: SocketAddr,
    /// The base URL callers reach us at, written into the agent card (`IAM_URL`, default
    /// `http://localhost:<port of IAM_BIND>`). `None` derives `http://<bound address>` once the
    /// listener is bound, which is what tests on port 0 want.
    pub public_url: Option<String>,
    /// The idp: issuer of the tokens we accept, the token endpoint of our own hop, and the host
    /// of the SCIM API we administer (`IDP_ISSUER`, default `http://localhost:8081`).
    pub idp_issuer: String,
    /// Our key is `<keys_dir>/iam.key` (`KEYS_DIR`, default `.data/keys`).
    pub keys_dir: PathBuf,
    /// Postgres (`DATABASE_URL`, required): the agent's security events live in schema `iam`.
    pub database_url: String,
    /// The S6 attack toggles (`ATTACK_TOGGLES=on` lets a message switch its run;
    /// `IAM_ATTACK=<id>` switches every run): off by default.
    pub attacks: kit::agent::attack::Toggles,
}

impl std::fmt::Debug for Config {
    // The database URL carries a password: it never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("public_url", &self.public_url)
            .field("idp_issuer", &self.idp_issuer)
            .field("keys_dir", &self.keys_dir)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Defaults for a database URL; everything else as in `just up`.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8092)),
            public_url: None,
            idp_issuer: "http://localhost:8081".into(),
            keys_dir: ".data/keys".into(),
            database_url: database_url.into(),
            attacks: kit::agent::attack::Toggles::off("iam"),
        }
    }

    /// Defaults overridden by the environment; `DATABASE_URL` is required.
    pub fn from_env() -> anyhow::Result<Self> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let mut c = Self::new(var("DATABASE_URL").context("DATABASE_URL is required")?);
        if let Some(v) = var("IAM_BIND") {
            c.bind = v
                .parse()
                .with_context(|| format!("IAM_BIND={v} is not host:port"))?;
        }
        c.public_url =
            Some(var("IAM_URL").unwrap_or_else(|| format!("http://localhost:{}", c.bind.port())));
        if let Some(v) = var("IDP_ISSUER") {
            c.idp_issuer = v;
        }
        if let Some(v) = var("KEYS_DIR") {
            c.keys_dir = v.into();
        }
        c.attacks = kit::agent::attack::Toggles::parse(
            "iam",
            var("ATTACK_TOGGLES").as_deref(),
            var("IAM_ATTACK").as_deref(),
        )?;
        c.validate()?;
        Ok(c)
    }

    /// The SCIM 2.0 API's base URL: the idp serves it under `/scim/v2`.
    pub fn scim_url(&self) -> String {
        format!("{}/scim/v2", self.idp_issuer.trim_end_matches('/'))
    }

    /// Checks what would otherwise fail later and less clearly.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (name, value) in [
            ("IDP_ISSUER", Some(&self.idp_issuer)),
            ("IAM_URL", self.public_url.as_ref()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_database_password() {
        let c = Config::new("postgres://iam:hunter2-password@localhost/db");
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn the_scim_api_lives_under_the_issuer() {
        let mut c = Config::new("postgres://localhost/db");
        c.idp_issuer = "http://127.0.0.1:9000/".into();
        assert_eq!(c.scim_url(), "http://127.0.0.1:9000/scim/v2");
    }

    #[test]
    fn validation_refuses_bad_urls() {
        let mut c = Config::new("postgres://localhost/db");
        assert!(c.validate().is_ok());
        c.idp_issuer = "ftp://idp".into();
        assert!(c.validate().is_err());
        let mut c = Config::new("not a database url");
        c.public_url = Some("http://localhost:8092".into());
        assert!(c.validate().is_err());
    }
}
