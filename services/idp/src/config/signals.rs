//! The idp's part in shared signals: where the transmitter is, the idp's two tokens there (as a
//! source of events and as a receiver), and the anomaly rule's thresholds.

use std::time::Duration;

use anyhow::Context as _;
use kit::ssf::ReceiverSettings;

/// `SSF_*` and `IDP_ANOMALY_*`.
#[derive(Clone)]
pub struct SignalsConfig {
    /// `SSF_URL` + `SSF_SOURCE_TOKEN`: where the outbox delivers (`POST {SSF_URL}/events`).
    /// `None`: revocations are queued in the outbox and not sent.
    pub source: Option<Source>,
    /// `SSF_URL` + `SSF_TOKEN`: the idp's own receiver stream (it ends sessions the transmitter
    /// reports revoked). `None`: the idp receives no signals.
    pub receiver: Option<ReceiverSettings>,
    /// `IDP_ANOMALY_DENIALS` (default 3): this many refused exchanges in one session within
    /// the window revoke it. `0` turns the rule off.
    pub anomaly_denials: u32,
    /// `IDP_ANOMALY_WINDOW_SECS` (default 60). `0` turns the rule off.
    pub anomaly_window: Duration,
}

/// The transmitter's internal source endpoint and the idp's token for it.
#[derive(Clone)]
pub struct Source {
    pub transmitter: String,
    pub token: String,
}

impl std::fmt::Debug for SignalsConfig {
    // Neither token reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalsConfig")
            .field("source", &self.source.as_ref().map(|s| &s.transmitter))
            .field("receiver", &self.receiver)
            .field("anomaly_denials", &self.anomaly_denials)
            .field("anomaly_window", &self.anomaly_window)
            .finish()
    }
}

impl Default for SignalsConfig {
    fn default() -> Self {
        Self {
            source: None,
            receiver: None,
            anomaly_denials: 3,
            anomaly_window: Duration::from_secs(60),
        }
    }
}

impl SignalsConfig {
    /// Reads the variables through `var` (the config's own lookup).
    pub fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let mut c = Self::default();
        let url = var("SSF_URL").map(|u| u.trim_end_matches('/').to_owned());
        let source_token = var("SSF_SOURCE_TOKEN");
        anyhow::ensure!(
            url.is_some() || (source_token.is_none() && var("SSF_TOKEN").is_none()),
            "SSF_SOURCE_TOKEN and SSF_TOKEN need SSF_URL"
        );
        if let (Some(transmitter), Some(token)) = (url.clone(), source_token) {
            anyhow::ensure!(
                token.len() >= 16,
                "SSF_SOURCE_TOKEN must be at least 16 characters"
            );
            c.source = Some(Source { transmitter, token });
        }
        if var("SSF_TOKEN").is_some() {
            c.receiver = ReceiverSettings::from_vars(var)?;
        }
        if let Some(v) = var("IDP_ANOMALY_DENIALS") {
            c.anomaly_denials = v
                .parse()
                .context("IDP_ANOMALY_DENIALS must be a whole number")?;
        }
        if let Some(v) = var("IDP_ANOMALY_WINDOW_SECS") {
            c.anomaly_window = Duration::from_secs(
                v.parse()
                    .context("IDP_ANOMALY_WINDOW_SECS must be whole seconds")?,
            );
        }
        Ok(c)
    }

    /// Is the anomaly rule on?
    pub fn anomaly_enabled(&self) -> bool {
        self.anomaly_denials > 0 && !self.anomaly_window.is_zero()
    }
}
