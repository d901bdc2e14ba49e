//! The web UI's configuration, from the environment (the launcher sets all of it).

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context as _;
use kit::ssf::ReceiverSettings;

#[derive(Clone)]
pub struct Config {
    /// `WEB_BIND` (127.0.0.1:8080).
    pub bind: SocketAddr,
    /// `WEB_URL`: where browsers reach us (http://localhost:8080); the OAuth redirect is
    /// `<WEB_URL>/auth/callback`.
    pub public_url: String,
    /// `IDP_ISSUER`: the identity provider (sign-in, approvals, sessions, events).
    pub idp: String,
    /// `WEB_CLIENT_ID` / `WEB_CLIENT_SECRET`: our OAuth client at the idp.
    pub client_id: String,
    pub client_secret: String,
    /// `CONCIERGE_URL`: Charlie, over A2A.
    pub concierge: String,
    /// `VAULT_ADDR`: the credential issuer (its audit log, for forensics).
    pub vault: String,
    /// `WEB_ADMIN_TOKEN`: reads the idp's events and the issuer's audit log (forensics, the
    /// token inspector). Never sent to a browser.
    pub admin_token: String,
    /// `DATABASE_URL`: the platform's database. The UI listens on `security_events` and reads
    /// (never writes) the services' event tables and the ledger's transactions.
    pub database_url: String,
    /// `WEB_NARRATION_DIR` (web/narration): the scenarios and their narrations, read on every
    /// request so a presenter can edit them while the demo runs.
    pub narration_dir: PathBuf,
    /// `SSF_URL` / `SSF_TOKEN`: the UI receives `session-revoked` to show the banner.
    pub signals: Option<ReceiverSettings>,
}

impl std::fmt::Debug for Config {
    // Secrets never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("public_url", &self.public_url)
            .field("idp", &self.idp)
            .field("concierge", &self.concierge)
            .field("vault", &self.vault)
            .field("narration_dir", &self.narration_dir)
            .finish_non_exhaustive()
    }
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let need = |k: &str| var(k).with_context(|| format!("{k} must be set"));
        let trim = |s: String| s.trim_end_matches('/').to_owned();
        Ok(Self {
            bind: var("WEB_BIND")
                .unwrap_or_else(|| "127.0.0.1:8080".into())
                .parse()
                .context("WEB_BIND must be host:port")?,
            public_url: trim(var("WEB_URL").unwrap_or_else(|| "http://localhost:8080".into())),
            idp: trim(need("IDP_ISSUER")?),
            client_id: var("WEB_CLIENT_ID").unwrap_or_else(|| "web".into()),
            client_secret: need("WEB_CLIENT_SECRET")?,
            concierge: trim(need("CONCIERGE_URL")?),
            vault: trim(need("VAULT_ADDR")?),
            admin_token: need("WEB_ADMIN_TOKEN")?,
            database_url: need("DATABASE_URL")?,
            narration_dir: PathBuf::from(
                var("WEB_NARRATION_DIR").unwrap_or_else(|| "web/narration".into()),
            ),
            signals: ReceiverSettings::from_env()?,
        })
    }
}
