//! Configuration: a typed struct with defaults, overridden by environment variables. This is the
//! only module that reads the environment.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context as _;

/// The Vault mount this issuer answers for (`/v1/verify-rar/...`, lease ids `verify-rar/creds/...`).
pub const MOUNT: &str = "verify-rar";
/// The JWT auth mount (`/v1/auth/jwt/login`).
pub const JWT_MOUNT: &str = "jwt";
/// No credential outlives this, whatever a role says (the design's five-minute ceiling).
pub const TTL_CEILING_SECS: u64 = 300;

/// Where to simulate a crash, for the crash-safety tests. Never set from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failpoint {
    /// Fail after the role was created and committed, before the lease is marked active.
    AfterCreate,
}

#[derive(Clone)]
pub struct Config {
    /// `VR_BIND`
    pub bind: SocketAddr,
    /// `DATABASE_URL`: a role that may create and drop roles, and write `banking.grants`.
    pub database_url: String,
    /// `IDP_ISSUER`: base URL; JWKS at `{issuer}/jwks`, introspection at `{issuer}/introspect`.
    pub idp_issuer: String,
    /// `IDP_CLIENT_ID` / `IDP_CLIENT_SECRET`: our client credentials for introspection.
    pub idp_client_id: String,
    pub idp_client_secret: String,
    /// `VR_AUDIENCE`: the `aud` delegated tokens must carry.
    pub audience: String,
    /// `VR_ADMIN_TOKEN`: enables the role admin API; unset disables it.
    pub admin_token: Option<String>,
    /// `VR_ROLES_DIR`: `*.toml` role files loaded at start-up.
    pub roles_dir: PathBuf,
    /// `VR_AUDIT_LOG`: the hash-chained JSON-lines audit log of this instance.
    pub audit_log: PathBuf,
    /// `VR_INSTANCE_ID`: stable across restarts of one replica; names its in-flight intents.
    pub instance_id: String,
    /// `VR_REAP_INTERVAL_SECS`
    pub reap_interval: Duration,
    /// `VR_TOKEN_TTL_SECS`: longest life of a Vault token (never past the JWT's `exp`).
    pub token_ttl_secs: i64,
    /// `VR_LOG_JSON`
    pub log_json: bool,
    pub failpoint: Option<Failpoint>,
    /// `SSF_URL` + `SSF_TOKEN`: receive CAEP `session-revoked` and revoke that session's leases
    /// (`crate::signals`). Pushes arrive at `<bound address>/ssf/events`. `None`: no signals.
    pub signals: Option<kit::ssf::ReceiverSettings>,
}

impl std::fmt::Debug for Config {
    // Secrets never appear in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("database_url", &redact_url(&self.database_url))
            .field("idp_issuer", &self.idp_issuer)
            .field("idp_client_id", &self.idp_client_id)
            .field("audience", &self.audience)
            .field("admin_api", &self.admin_token.is_some())
            .field("roles_dir", &self.roles_dir)
            .field("audit_log", &self.audit_log)
            .field("instance_id", &self.instance_id)
            .field("reap_interval", &self.reap_interval)
            .field("token_ttl_secs", &self.token_ttl_secs)
            .finish_non_exhaustive()
    }
}

fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

impl Config {
    /// Defaults for everything but the database.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8200)),
            database_url: database_url.into(),
            idp_issuer: "http://127.0.0.1:8081".into(),
            idp_client_id: "verify-rar".into(),
            idp_client_secret: "verify-rar-dev-secret".into(),
            audience: "verify-rar".into(),
            admin_token: None,
            roles_dir: PathBuf::from("infra/verify-rar"),
            audit_log: PathBuf::from(".data/verify-rar/audit.jsonl"),
            instance_id: "verify-rar-0".into(),
            reap_interval: Duration::from_secs(5),
            token_ttl_secs: 300,
            log_json: false,
            failpoint: None,
            signals: None,
        }
    }

    /// Defaults overridden by the environment.
    pub fn from_env() -> anyhow::Result<Self> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let database_url = var("DATABASE_URL").context("DATABASE_URL must be set")?;
        let mut c = Self::new(database_url);
        if let Some(v) = var("VR_BIND") {
            c.bind = v
                .parse()
                .with_context(|| format!("VR_BIND {v} is not host:port"))?;
        }
        if let Some(v) = var("IDP_ISSUER") {
            c.idp_issuer = v.trim_end_matches('/').to_owned();
        }
        if let Some(v) = var("IDP_CLIENT_ID") {
            c.idp_client_id = v;
        }
        if let Some(v) = var("IDP_CLIENT_SECRET") {
            c.idp_client_secret = v;
        }
        if let Some(v) = var("VR_AUDIENCE") {
            c.audience = v;
        }
        c.admin_token = var("VR_ADMIN_TOKEN");
        if let Some(v) = var("VR_ROLES_DIR") {
            c.roles_dir = v.into();
        }
        if let Some(v) = var("VR_AUDIT_LOG") {
            c.audit_log = v.into();
        }
        if let Some(v) = var("VR_INSTANCE_ID").or_else(|| var("HOSTNAME")) {
            c.instance_id = v;
        }
        if let Some(v) = var("VR_REAP_INTERVAL_SECS") {
            c.reap_interval =
                Duration::from_secs(v.parse().context("VR_REAP_INTERVAL_SECS must be seconds")?);
        }
        if let Some(v) = var("VR_TOKEN_TTL_SECS") {
            c.token_ttl_secs = v.parse().context("VR_TOKEN_TTL_SECS must be seconds")?;
        }
        c.log_json = var("VR_LOG_JSON").is_some_and(|v| v == "1" || v == "true");
        c.signals = kit::ssf::ReceiverSettings::from_vars(var)?;
        c.validate()?;
        Ok(c)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if self.admin_token.as_ref().is_some_and(|t| t.len() < 16) {
            anyhow::bail!("VR_ADMIN_TOKEN must be at least 16 characters");
        }
        if self.token_ttl_secs <= 0 || self.reap_interval.is_zero() {
            anyhow::bail!("VR_TOKEN_TTL_SECS and VR_REAP_INTERVAL_SECS must be positive");
        }
        Ok(())
    }
}
