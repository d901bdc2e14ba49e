//! Where a service finds its transmitter (`SSF_URL`, `SSF_TOKEN`), how it starts its receiver
//! without racing the transmitter's start, and how it reports what a signal made it do.
//!
//! Every receiver of the platform (the idp, verify-rar, each agent) reacts the same way to a
//! SET: it acts, then writes one `signal_received` security event naming the signal, what it
//! did, and how long after the event's `event_timestamp` it acted. This file is that shared
//! shape, so the UI can line the receivers up side by side.

use std::time::Duration;

use super::{Delivery, EventType, Receiver, ReceiverConfig, SetEvent};
use crate::events::{Outcome, SecurityEvent};

/// A receiver's connection to the transmitter.
#[derive(Clone, PartialEq, Eq)]
pub struct ReceiverSettings {
    /// `SSF_URL`: the transmitter's issuer URL.
    pub transmitter: String,
    /// `SSF_TOKEN`: this service's entry in the transmitter's `SSF_RECEIVER_TOKENS`.
    pub token: String,
}

impl std::fmt::Debug for ReceiverSettings {
    // The management token never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiverSettings")
            .field("transmitter", &self.transmitter)
            .finish_non_exhaustive()
    }
}

impl ReceiverSettings {
    /// Reads `SSF_URL` and `SSF_TOKEN` through `var` (a service's `config.rs` passes its own
    /// lookup). Neither set: `None`, signals are off. One without the other is an error.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<Self>> {
        match (var("SSF_URL"), var("SSF_TOKEN")) {
            (None, None) => Ok(None),
            (Some(url), Some(token)) => {
                anyhow::ensure!(
                    url.starts_with("http://") || url.starts_with("https://"),
                    "SSF_URL must be an http(s) URL"
                );
                anyhow::ensure!(
                    token.len() >= 16,
                    "SSF_TOKEN must be at least 16 characters"
                );
                Ok(Some(Self {
                    transmitter: url.trim_end_matches('/').to_owned(),
                    token,
                }))
            }
            _ => anyhow::bail!("SSF_URL and SSF_TOKEN go together: set both or neither"),
        }
    }

    /// The stream every service of the platform holds: pushed to `endpoint_url`, named
    /// `description` (so a restart finds and reuses it), for CAEP `session-revoked`.
    pub fn session_revoked_push(&self, description: &str, endpoint_url: String) -> ReceiverConfig {
        ReceiverConfig {
            transmitter: self.transmitter.clone(),
            token: self.token.clone(),
            description: description.to_owned(),
            delivery: Delivery::Push { endpoint_url },
            events: vec![EventType::SessionRevoked],
        }
    }

    /// [`Self::from_vars`] over the process environment. Agents use this (through
    /// `kit::agent::Runtime::receive_signals`), so a forked agent gets signals with one line.
    pub fn from_env() -> anyhow::Result<Option<Self>> {
        Self::from_vars(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }
}

/// Starts `receiver`: tries for up to `first_wait` (the launcher starts the transmitter first,
/// so this normally succeeds at once), then keeps retrying in the background with backoff. A
/// push that arrives before the stream is ready is answered 503 and retried by the transmitter.
pub async fn start_receiver(receiver: &Receiver, first_wait: Duration) {
    let deadline = tokio::time::Instant::now() + first_wait;
    let mut backoff = Duration::from_millis(100);
    loop {
        match receiver.start().await {
            Ok(stream) => {
                tracing::info!(stream_id = %stream.stream_id, "receiving shared signals");
                return;
            }
            Err(e) if tokio::time::Instant::now() + backoff > deadline => {
                tracing::warn!(error = %e, "the signals transmitter is not answering yet; retrying in the background");
                break;
            }
            Err(_) => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
    let receiver = receiver.clone();
    tokio::spawn(async move {
        let mut backoff = Duration::from_secs(1);
        loop {
            tokio::time::sleep(backoff).await;
            match receiver.start().await {
                Ok(stream) => {
                    tracing::info!(stream_id = %stream.stream_id, "receiving shared signals");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the signals transmitter is still not answering");
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    });
}

/// The `signal_received` security event a receiver writes once it has acted on `event`:
/// `reason` says which signal, why it was sent, what this service did, and how long after
/// `event_timestamp` (whole seconds, as CAEP carries it) the action finished; `duration_ms` is
/// that lag.
pub fn received_event(service: &str, event: &SetEvent, did: &str) -> SecurityEvent {
    let mut e = SecurityEvent::new(service, "signal_received", Outcome::Info);
    e.user = event.sub_id.email_address().map(str::to_owned);
    e.session = event.sub_id.session_id().map(str::to_owned);
    e.jti = Some(event.jti.clone());
    let lag_ms = event
        .claims
        .event_timestamp
        .map(|t| (now_millis() - t * 1000).max(0));
    e.duration_ms = lag_ms.map(|ms| ms as f64);
    let why = match (
        event.claims.initiating_entity.as_deref(),
        event.claims.reason_admin_text(),
    ) {
        (Some(who), Some(r)) => format!(" ({who}: {r})"),
        (Some(who), None) => format!(" ({who})"),
        (None, Some(r)) => format!(" ({r})"),
        (None, None) => String::new(),
    };
    let lag = lag_ms.map_or_else(String::new, |ms| {
        format!("; acted {ms} ms after event_timestamp")
    });
    e.reason = Some(format!("{}{why}: {did}{lag}", event.kind.name()));
    e
}

fn now_millis() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_or_neither() {
        let none = ReceiverSettings::from_vars(|_| None).unwrap_or_default();
        assert!(none.is_none());
        let half = ReceiverSettings::from_vars(|k| (k == "SSF_URL").then(|| "http://x".into()));
        assert!(half.is_err());
        let both = ReceiverSettings::from_vars(|k| {
            Some(match k {
                "SSF_URL" => "http://127.0.0.1:8082/".into(),
                _ => "0123456789abcdef".into(),
            })
        });
        assert!(both.is_ok_and(|s| s.is_some_and(|s| s.transmitter == "http://127.0.0.1:8082")));
    }
}
