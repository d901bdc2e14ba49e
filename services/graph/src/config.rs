//! Graph's configuration: defaults, overridden by environment variables. This is the only file
//! that reads the environment.

use std::net::SocketAddr;

use anyhow::Context as _;

/// The `aud` every token presented here must carry: the name the agent registry uses for this
/// resource (`audiences = ["graph"]` of the entra agent).
pub const AUDIENCE: &str = "graph";

/// Everything graph needs to start; validated once, then passed explicitly.
#[derive(Clone)]
pub struct Config {
    /// Where to listen (`GRAPH_BIND`, default `127.0.0.1:8094`).
    pub bind: SocketAddr,
    /// `DATABASE_URL`; graph keeps its users and events in the schema `graph`.
    pub database_url: String,
    /// `IDP_ISSUER`: the idp's base URL (JWKS at `{issuer}/jwks`, introspection at
    /// `{issuer}/introspect`), and the `iss` every token must name.
    pub idp_issuer: String,
    /// `IDP_CLIENT_ID` / `IDP_CLIENT_SECRET`: our OAuth client at the idp, used only to
    /// introspect (the `graph` entry of `infra/clients.toml`).
    pub idp_client_id: String,
    pub idp_client_secret: String,
    /// `GRAPH_PUBLIC_URL`: the base of the `@odata.context` and `@odata.nextLink` URLs. `None`
    /// derives `http://<bound address>` once the listener is bound, which is what tests want.
    pub public_url: Option<String>,
    /// `LOG_FORMAT=json`: one JSON object a log line.
    pub log_json: bool,
}

impl std::fmt::Debug for Config {
    // The client secret and the database password never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("idp_issuer", &self.idp_issuer)
            .field("idp_client_id", &self.idp_client_id)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Defaults for a database URL; everything else as in `just up`.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8094)),
            database_url: database_url.into(),
            idp_issuer: "http://127.0.0.1:8081".into(),
            idp_client_id: "graph".into(),
            idp_client_secret: "graph-dev-secret".into(),
            public_url: None,
            log_json: false,
        }
    }

    /// Defaults overridden by the environment; `DATABASE_URL` is required.
    pub fn from_env() -> anyhow::Result<Self> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let mut c = Self::new(var("DATABASE_URL").context("DATABASE_URL is required")?);
        if let Some(b) = var("GRAPH_BIND") {
            c.bind = b
                .parse()
                .with_context(|| format!("GRAPH_BIND {b} is not host:port"))?;
        }
        if let Some(v) = var("IDP_ISSUER") {
            c.idp_issuer = v;
        }
        if let Some(v) = var("IDP_CLIENT_ID") {
            c.idp_client_id = v;
        }
        if let Some(v) = var("IDP_CLIENT_SECRET") {
            c.idp_client_secret = v;
        }
        c.public_url = var("GRAPH_PUBLIC_URL");
        c.log_json = var("LOG_FORMAT").is_some_and(|f| f == "json");
        c.normalize();
        c.validate()?;
        Ok(c)
    }

    fn normalize(&mut self) {
        self.idp_issuer = self.idp_issuer.trim_end_matches('/').to_owned();
        if let Some(u) = &mut self.public_url {
            *u = u.trim_end_matches('/').to_owned();
        }
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        for (name, value) in [
            ("IDP_ISSUER", Some(&self.idp_issuer)),
            ("GRAPH_PUBLIC_URL", self.public_url.as_ref()),
        ] {
            if let Some(v) = value {
                let u = url::Url::parse(v).with_context(|| format!("{name} {v} is not a URL"))?;
                anyhow::ensure!(
                    matches!(u.scheme(), "http" | "https"),
                    "{name} must be an http(s) URL"
                );
            }
        }
        anyhow::ensure!(
            !self.idp_client_id.is_empty(),
            "IDP_CLIENT_ID must not be empty"
        );
        anyhow::ensure!(
            self.idp_client_secret.len() >= 12,
            "IDP_CLIENT_SECRET must be at least 12 characters"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_secrets() {
        let mut c = Config::new("postgres://graph:hunter2-password@localhost/db");
        c.idp_client_secret = "a-very-secret-value".into();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("a-very-secret-value"));
    }

    #[test]
    fn validation_refuses_short_secrets_and_bad_urls() {
        let mut c = Config::new("postgres://localhost/db");
        assert!(c.validate().is_ok());
        c.idp_client_secret = "short".into();
        assert!(c.validate().is_err());
        let mut c = Config::new("postgres://localhost/db");
        c.idp_issuer = "ftp://idp".into();
        assert!(c.validate().is_err());
    }
}
