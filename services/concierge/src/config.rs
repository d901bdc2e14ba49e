//! The concierge's configuration, from `CONCIERGE_*`, `LLM_*` and shared variables. The only file
//! that reads the environment.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::{Context as _, bail};

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
    /// `LLM_BASE_URL` set: a hosted model plans instead of the deterministic rules.
    pub llm: Option<LlmConfig>,
    /// The S6 attack toggles (`ATTACK_TOGGLES=on` lets a message switch its run and pass a
    /// specialist's toggle on; `CONCIERGE_ATTACK=<id>` switches every run): off by default.
    pub attacks: kit::agent::attack::Toggles,
}

/// An OpenAI-compatible chat-completions endpoint (OpenAI, Ollama, vLLM, a gateway).
#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// `LLM_BASE_URL`: the API base, up to and including `/v1` (`http://localhost:11434/v1`).
    pub base_url: String,
    /// `LLM_MODEL` (required with `LLM_BASE_URL`).
    pub model: String,
    /// `LLM_API_KEY` (empty for servers that want none). Sent only to `base_url`, as the bearer.
    pub api_key: ApiKey,
    /// `LLM_MAX_TURNS` (default 6): model requests per user message.
    pub max_turns: u32,
    /// `LLM_MAX_TOOL_CALLS` (default 8): tool calls the model may make per user message.
    pub max_tool_calls: u32,
    /// `LLM_TIMEOUT_SECS` (default 30): one model request, connection included.
    pub timeout: Duration,
}

/// The model endpoint's API key: never printed, never logged.
#[derive(Clone, Default)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "ApiKey(none)"
        } else {
            "ApiKey(redacted)"
        })
    }
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
            llm: match var("LLM_BASE_URL") {
                None => None,
                Some(base) => Some(LlmConfig::new(
                    &base,
                    var("LLM_MODEL"),
                    var("LLM_API_KEY").unwrap_or_default(),
                    |k| var(k),
                )?),
            },
            attacks: kit::agent::attack::Toggles::parse(
                "concierge",
                var("ATTACK_TOGGLES").as_deref(),
                var("CONCIERGE_ATTACK").as_deref(),
            )?,
        })
    }
}

impl LlmConfig {
    /// Validates the endpoint settings once; `limit` reads the optional bounds.
    fn new(
        base: &str,
        model: Option<String>,
        api_key: String,
        limit: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("LLM_BASE_URL must be an http(s) URL such as http://localhost:11434/v1");
        }
        let model =
            model.context("LLM_MODEL is required with LLM_BASE_URL (for example gpt-4o-mini)")?;
        // The key becomes an HTTP header value; refuse what a header cannot carry rather than
        // fail on the first message.
        if !api_key.bytes().all(|b| b.is_ascii_graphic()) {
            bail!("LLM_API_KEY must be printable ASCII without spaces");
        }
        let number = |k: &str, default: u64, max: u64| -> anyhow::Result<u64> {
            match limit(k) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .with_context(|| format!("{k} must be a whole number from 1 to {max}")),
            }
        };
        Ok(Self {
            base_url: base.trim_end_matches('/').to_owned(),
            model,
            api_key: ApiKey::new(api_key),
            max_turns: u32::try_from(number("LLM_MAX_TURNS", 6, 50)?)?,
            max_tool_calls: u32::try_from(number("LLM_MAX_TOOL_CALLS", 8, 50)?)?,
            timeout: Duration::from_secs(number("LLM_TIMEOUT_SECS", 30, 600)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llm_settings_are_validated_once() {
        let none = |_: &str| None;
        let c = LlmConfig::new("http://h:1/v1/", Some("m".into()), "sk-1".into(), none).unwrap();
        assert_eq!(c.base_url, "http://h:1/v1");
        assert_eq!((c.max_turns, c.max_tool_calls), (6, 8));
        assert_eq!(format!("{:?}", c.api_key), "ApiKey(redacted)");
        assert!(!format!("{c:?}").contains("sk-1"));
        assert!(LlmConfig::new("h:1", Some("m".into()), String::new(), none).is_err());
        assert!(LlmConfig::new("http://h", None, String::new(), none).is_err());
        assert!(LlmConfig::new("http://h", Some("m".into()), "a b".into(), none).is_err());
        let zero = |k: &str| (k == "LLM_MAX_TURNS").then(|| "0".to_owned());
        assert!(LlmConfig::new("http://h", Some("m".into()), String::new(), zero).is_err());
    }
}
