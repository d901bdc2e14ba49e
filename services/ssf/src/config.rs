//! Antenna's configuration: defaults, overridden by environment variables. This is the only file
//! that reads the environment.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context as _;

/// One receiver allowed to manage streams: its name (the `aud` of its streams) and its bearer
/// token.
#[derive(Clone, PartialEq, Eq)]
pub struct ReceiverCredential {
    pub name: String,
    pub token: String,
}

impl std::fmt::Debug for ReceiverCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiverCredential")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// What a stream receives when it has not named any subject (SSF §7.1 `default_subjects`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultSubjects {
    /// Every subject, except those removed from the stream.
    All,
    /// Only subjects added to the stream.
    None,
}

impl DefaultSubjects {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "ALL",
            Self::None => "NONE",
        }
    }
}

/// Everything the transmitter needs to start; validated once, then passed explicitly.
#[derive(Clone)]
pub struct Config {
    /// `SSF_BIND`, default `127.0.0.1:8082`.
    pub bind: SocketAddr,
    /// `DATABASE_URL`; streams, pending SETs and events live in the schema `ssf`.
    pub database_url: String,
    /// `SSF_PUBLIC_URL`: the base of every endpoint we advertise. `None` derives
    /// `http://<bound address>`, which is what tests want.
    pub public_url: Option<String>,
    /// `SSF_ISSUER`: the `iss` of every SET and the metadata's `issuer`; defaults to the public
    /// URL. A path in it moves the metadata to `/.well-known/ssf-configuration/<path>`.
    pub issuer: Option<String>,
    /// `SSF_KEYS_DIR`: where the RS256 key (`ssf-set.key`) is kept, generated on first start.
    pub keys_dir: PathBuf,
    /// `SSF_RECEIVER_TOKENS="name=token,..."` and/or `SSF_RECEIVER_TOKENS_FILE` (one `name=token`
    /// a line, `#` comments).
    pub receivers: Vec<ReceiverCredential>,
    /// `SSF_SOURCE_TOKEN`: the bearer token of the internal `POST /events` (the idp). `None`
    /// refuses every source call.
    pub source_token: Option<String>,
    /// `SSF_DEFAULT_SUBJECTS`: `ALL` (default) or `NONE`.
    pub default_subjects: DefaultSubjects,
    /// `SSF_RETRY_BASE_MS` / `SSF_RETRY_MAX_MS`: push retry backoff, doubling from base to max.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// `SSF_PUSH_MAX_ATTEMPTS`: after this many failed pushes a SET is given up (`failed`).
    pub max_attempts: i32,
    /// `SSF_PUSH_TIMEOUT_MS`: one push's time limit.
    pub push_timeout: Duration,
    /// `SSF_POLL_MAX_WAIT_SECS`: the longest a long poll is held open.
    pub poll_max_wait: Duration,
    /// `SSF_MIN_VERIFICATION_INTERVAL`: seconds between two verification requests of a stream.
    pub min_verification_interval: u64,
    /// `LOG_FORMAT=json`.
    pub log_json: bool,
}

impl std::fmt::Debug for Config {
    // Tokens and the database password never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("public_url", &self.public_url)
            .field("issuer", &self.issuer)
            .field("keys_dir", &self.keys_dir)
            .field("receivers", &self.receivers)
            .field("default_subjects", &self.default_subjects)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Defaults for a database URL; everything else as in `just up`.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8082)),
            database_url: database_url.into(),
            public_url: None,
            issuer: None,
            keys_dir: PathBuf::from(".data/keys"),
            receivers: Vec::new(),
            source_token: None,
            default_subjects: DefaultSubjects::All,
            retry_base: Duration::from_millis(500),
            retry_max: Duration::from_secs(300),
            max_attempts: 50,
            push_timeout: Duration::from_secs(5),
            poll_max_wait: Duration::from_secs(30),
            min_verification_interval: 1,
            log_json: false,
        }
    }

    /// Defaults overridden by the environment; `DATABASE_URL` is required.
    pub fn from_env() -> anyhow::Result<Self> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let num = |k: &str| -> anyhow::Result<Option<u64>> {
            var(k)
                .map(|v| {
                    v.parse::<u64>()
                        .with_context(|| format!("{k} must be a number"))
                })
                .transpose()
        };
        let mut c = Self::new(var("DATABASE_URL").context("DATABASE_URL is required")?);
        if let Some(b) = var("SSF_BIND") {
            c.bind = b
                .parse()
                .with_context(|| format!("SSF_BIND {b} is not host:port"))?;
        }
        c.public_url = var("SSF_PUBLIC_URL");
        c.issuer = var("SSF_ISSUER");
        if let Some(d) = var("SSF_KEYS_DIR") {
            c.keys_dir = d.into();
        }
        if let Some(list) = var("SSF_RECEIVER_TOKENS") {
            c.receivers.extend(parse_receivers(list.split(','))?);
        }
        if let Some(path) = var("SSF_RECEIVER_TOKENS_FILE") {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading SSF_RECEIVER_TOKENS_FILE {path}"))?;
            c.receivers.extend(parse_receivers(text.lines())?);
        }
        c.source_token = var("SSF_SOURCE_TOKEN");
        if let Some(d) = var("SSF_DEFAULT_SUBJECTS") {
            c.default_subjects = match d.to_ascii_uppercase().as_str() {
                "ALL" => DefaultSubjects::All,
                "NONE" => DefaultSubjects::None,
                _ => anyhow::bail!("SSF_DEFAULT_SUBJECTS must be ALL or NONE"),
            };
        }
        if let Some(ms) = num("SSF_RETRY_BASE_MS")? {
            c.retry_base = Duration::from_millis(ms);
        }
        if let Some(ms) = num("SSF_RETRY_MAX_MS")? {
            c.retry_max = Duration::from_millis(ms);
        }
        if let Some(n) = num("SSF_PUSH_MAX_ATTEMPTS")? {
            c.max_attempts = i32::try_from(n).context("SSF_PUSH_MAX_ATTEMPTS is too large")?;
        }
        if let Some(ms) = num("SSF_PUSH_TIMEOUT_MS")? {
            c.push_timeout = Duration::from_millis(ms);
        }
        if let Some(s) = num("SSF_POLL_MAX_WAIT_SECS")? {
            c.poll_max_wait = Duration::from_secs(s);
        }
        if let Some(s) = num("SSF_MIN_VERIFICATION_INTERVAL")? {
            c.min_verification_interval = s;
        }
        c.log_json = var("LOG_FORMAT").is_some_and(|f| f == "json");
        c.normalize();
        c.validate()?;
        Ok(c)
    }

    fn normalize(&mut self) {
        for u in [&mut self.public_url, &mut self.issuer]
            .into_iter()
            .flatten()
        {
            *u = u.trim_end_matches('/').to_owned();
        }
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        for (name, value) in [
            ("SSF_PUBLIC_URL", self.public_url.as_ref()),
            ("SSF_ISSUER", self.issuer.as_ref()),
        ] {
            if let Some(v) = value {
                let u = url::Url::parse(v).with_context(|| format!("{name} {v} is not a URL"))?;
                anyhow::ensure!(
                    matches!(u.scheme(), "http" | "https"),
                    "{name} must be an http(s) URL"
                );
                anyhow::ensure!(
                    u.query().is_none() && u.fragment().is_none(),
                    "{name} must have no query or fragment"
                );
            }
        }
        for (i, r) in self.receivers.iter().enumerate() {
            anyhow::ensure!(
                !r.name.is_empty()
                    && r.name.len() <= 64
                    && r.name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
                "receiver name {:?} must be 1-64 of [A-Za-z0-9-_.]",
                r.name
            );
            anyhow::ensure!(
                r.token.len() >= 16,
                "receiver {}: its token must be at least 16 characters",
                r.name
            );
            for other in &self.receivers[..i] {
                anyhow::ensure!(other.name != r.name, "receiver {} is listed twice", r.name);
                anyhow::ensure!(
                    other.token != r.token,
                    "receivers {} and {} share a token",
                    other.name,
                    r.name
                );
            }
        }
        if let Some(t) = &self.source_token {
            anyhow::ensure!(
                t.len() >= 16,
                "SSF_SOURCE_TOKEN must be at least 16 characters"
            );
        }
        anyhow::ensure!(
            self.max_attempts >= 1,
            "SSF_PUSH_MAX_ATTEMPTS must be at least 1"
        );
        anyhow::ensure!(
            self.retry_base <= self.retry_max,
            "SSF_RETRY_BASE_MS must not exceed SSF_RETRY_MAX_MS"
        );
        Ok(())
    }
}

/// `name=token` entries; blank entries and `#` comments are skipped.
pub fn parse_receivers<'a>(
    entries: impl Iterator<Item = &'a str>,
) -> anyhow::Result<Vec<ReceiverCredential>> {
    entries
        .map(str::trim)
        .filter(|e| !e.is_empty() && !e.starts_with('#'))
        .map(|e| {
            let (name, token) = e
                .split_once('=')
                .with_context(|| "receiver tokens are name=token entries".to_owned())?;
            Ok(ReceiverCredential {
                name: name.trim().to_owned(),
                token: token.trim().to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receivers_parse_from_a_list_and_tokens_stay_out_of_debug() {
        let r = parse_receivers(
            "idp=secret-token-for-idp-1, # c\n,verify-rar=another-secret-token".split(','),
        )
        .unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].name, "verify-rar");
        let mut c = Config::new("postgres://u:pw-in-url@h/db");
        c.receivers = r;
        c.source_token = Some("source-token-0123456789".into());
        assert!(c.validate().is_ok());
        let shown = format!("{c:?}");
        assert!(!shown.contains("secret-token") && !shown.contains("pw-in-url"));
        assert!(!shown.contains("source-token"));
    }

    #[test]
    fn validation_refuses_short_or_shared_tokens() {
        let mut c = Config::new("postgres://localhost/db");
        c.receivers = parse_receivers(["a=short"].into_iter()).unwrap();
        assert!(c.validate().is_err());
        c.receivers =
            parse_receivers(["a=same-token-0123456789", "b=same-token-0123456789"].into_iter())
                .unwrap();
        assert!(c.validate().is_err());
        c.receivers = Vec::new();
        c.issuer = Some("ftp://x".into());
        assert!(c.validate().is_err());
    }
}
