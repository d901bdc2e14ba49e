//! The idp's configuration: defaults, overridden by `IDP_*` environment variables. This is the
//! only file that reads the environment.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context as _;

mod signals;
pub use signals::{SignalsConfig, Source};

/// Everything the idp needs to start; validated once, then passed explicitly.
#[derive(Clone)]
pub struct Config {
    /// Where to listen (`IDP_BIND`, default `127.0.0.1:8081`).
    pub bind: SocketAddr,
    /// The issuer: the exact URL clients use to reach us (`IDP_ISSUER`). `None` derives
    /// `http://<bound address>` once the listener is bound, which is what tests want.
    pub issuer: Option<String>,
    pub database_url: String,
    /// Our signing key and the agents' public keys live here (`IDP_KEYS_DIR`, default `.data/keys`).
    pub keys_dir: PathBuf,
    /// The agent registry seed (`IDP_AGENTS`, default `infra/agents.toml`).
    pub agents_file: PathBuf,
    /// OAuth clients (`IDP_CLIENTS`, default `infra/clients.toml`).
    pub clients_file: PathBuf,
    /// Cedar policies and schema, reloaded when they change (`IDP_POLICY_DIR`, default `infra/policy`).
    pub policy_dir: PathBuf,
    /// Bearer token for the admin API (`IDP_ADMIN_TOKEN`); without it the admin API refuses everyone.
    pub admin_token: Option<String>,
    /// Seed alice@example.com and bob@example.com (`IDP_SEED_DEMO`, default true).
    pub seed_demo_users: bool,
    pub access_token_ttl: Duration,
    pub delegated_token_ttl: Duration,
    pub session_ttl: Duration,
    /// How long a push approval waits for the user (`IDP_APPROVAL_TTL_SECS`, default 300).
    pub approval_ttl: Duration,
    /// The CIBA polling interval we ask clients to keep (`IDP_POLL_INTERVAL_SECS`, default 1).
    pub poll_interval: Duration,
    /// How long one tier-2 approval covers a session's writes (30 minutes).
    pub write_grant_window: Duration,
    /// How often the policy directory is checked for changes.
    pub policy_poll: Duration,
    /// **Benchmarks only** (`IDP_BENCH_AUTO_APPROVE=true`, default off): every exchange that
    /// would wait for the user's push approval is approved on the spot, so `just bench` can
    /// time the whole transfer chain without a person. Refused unless the admin token is set,
    /// logged as a warning at start, and every such approval's events carry `auto_approved`.
    /// `just up` never sets it.
    pub bench_auto_approve: bool,
    /// Shared signals (`SSF_URL`, `SSF_SOURCE_TOKEN`, `SSF_TOKEN`) and the anomaly rule
    /// (`IDP_ANOMALY_*`): see [`SignalsConfig`].
    pub signals: SignalsConfig,
}

impl std::fmt::Debug for Config {
    // The admin token and the database password never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("issuer", &self.issuer)
            .field("keys_dir", &self.keys_dir)
            .field("policy_dir", &self.policy_dir)
            .field("bench_auto_approve", &self.bench_auto_approve)
            .field("signals", &self.signals)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Defaults for a database URL; everything else as in `just up`.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8081)),
            issuer: None,
            database_url: database_url.into(),
            keys_dir: ".data/keys".into(),
            agents_file: "infra/agents.toml".into(),
            clients_file: "infra/clients.toml".into(),
            policy_dir: "infra/policy".into(),
            admin_token: None,
            seed_demo_users: true,
            access_token_ttl: Duration::from_secs(900),
            delegated_token_ttl: Duration::from_secs(300),
            session_ttl: Duration::from_secs(12 * 3600),
            approval_ttl: Duration::from_secs(300),
            poll_interval: Duration::from_secs(1),
            write_grant_window: Duration::from_secs(1800),
            policy_poll: Duration::from_millis(500),
            bench_auto_approve: false,
            signals: SignalsConfig::default(),
        }
    }

    /// Defaults overridden by `IDP_*` variables; `DATABASE_URL` is required.
    pub fn from_env() -> anyhow::Result<Self> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let secs = |k: &str, d: Duration| -> anyhow::Result<Duration> {
            var(k)
                .map(|v| {
                    v.parse::<u64>()
                        .map(Duration::from_secs)
                        .with_context(|| format!("{k} must be whole seconds"))
                })
                .unwrap_or(Ok(d))
        };
        let mut c = Self::new(var("DATABASE_URL").context("DATABASE_URL is required")?);
        if let Some(b) = var("IDP_BIND") {
            c.bind = b
                .parse()
                .with_context(|| format!("IDP_BIND {b} is not host:port"))?;
        }
        c.issuer = var("IDP_ISSUER").map(|s| s.trim_end_matches('/').to_owned());
        if let Some(v) = var("IDP_KEYS_DIR") {
            c.keys_dir = v.into();
        }
        if let Some(v) = var("IDP_AGENTS") {
            c.agents_file = v.into();
        }
        if let Some(v) = var("IDP_CLIENTS") {
            c.clients_file = v.into();
        }
        if let Some(v) = var("IDP_POLICY_DIR") {
            c.policy_dir = v.into();
        }
        c.admin_token = var("IDP_ADMIN_TOKEN");
        if let Some(v) = var("IDP_SEED_DEMO") {
            c.seed_demo_users = v != "false" && v != "0";
        }
        c.access_token_ttl = secs("IDP_ACCESS_TOKEN_TTL_SECS", c.access_token_ttl)?;
        c.delegated_token_ttl = secs("IDP_DELEGATED_TOKEN_TTL_SECS", c.delegated_token_ttl)?;
        c.approval_ttl = secs("IDP_APPROVAL_TTL_SECS", c.approval_ttl)?;
        c.poll_interval = secs("IDP_POLL_INTERVAL_SECS", c.poll_interval)?;
        if let Some(v) = var("IDP_BENCH_AUTO_APPROVE") {
            c.bench_auto_approve = match v.as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                other => anyhow::bail!("IDP_BENCH_AUTO_APPROVE must be true or false, not {other}"),
            };
        }
        c.signals = SignalsConfig::from_vars(&var)?;
        c.validate()?;
        Ok(c)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.delegated_token_ttl <= self.access_token_ttl,
            "delegated tokens must not outlive user tokens"
        );
        anyhow::ensure!(
            !self.poll_interval.is_zero(),
            "IDP_POLL_INTERVAL_SECS must be at least 1"
        );
        anyhow::ensure!(
            !self.bench_auto_approve || self.admin_token.is_some(),
            "IDP_BENCH_AUTO_APPROVE approves every request without the user: it is refused unless IDP_ADMIN_TOKEN is set (a benchmark run, never a demo)"
        );
        if let Some(t) = &self.admin_token {
            anyhow::ensure!(
                t.len() >= 16,
                "IDP_ADMIN_TOKEN must be at least 16 characters"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_auto_approve_is_refused_without_an_admin_token() {
        let mut c = Config::new("postgres://localhost/x");
        assert!(!c.bench_auto_approve, "off by default");
        c.bench_auto_approve = true;
        assert!(c.validate().is_err());
        c.admin_token = Some("a-long-enough-admin-token".into());
        c.validate().unwrap();
    }
}
