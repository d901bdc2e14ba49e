//! Wiring shared signals into a run: the transmitter (`ssf`) is started first, with a fresh
//! receiver token per service and a source token for the idp; every receiver is given
//! `SSF_URL` and its own `SSF_TOKEN` (the idp also `SSF_SOURCE_TOKEN`).

use super::Service;

/// The services that hold a receiver stream at the transmitter. `web` is reserved for the UI.
pub const RECEIVERS: &[&str] = &[
    "idp",
    "verify-rar",
    "banking",
    "iam",
    "entra",
    "concierge",
    "web",
];

/// This run's tokens at the transmitter, random per run.
#[derive(Clone)]
pub struct SignalTokens {
    /// `(receiver, token)`, one per [`RECEIVERS`] entry.
    pub receivers: Vec<(String, String)>,
    /// The idp's `SSF_SOURCE_TOKEN` (`POST /events`).
    pub source: String,
}

impl std::fmt::Debug for SignalTokens {
    // The tokens never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalTokens")
            .field(
                "receivers",
                &self.receivers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl SignalTokens {
    pub fn generate() -> Self {
        Self {
            receivers: RECEIVERS
                .iter()
                .map(|r| ((*r).to_owned(), kit::random_id(24)))
                .collect(),
            source: kit::random_id(24),
        }
    }

    /// The token of `receiver`.
    pub fn of(&self, receiver: &str) -> Option<&str> {
        self.receivers
            .iter()
            .find(|(n, _)| n == receiver)
            .map(|(_, t)| t.as_str())
    }

    /// `SSF_RECEIVER_TOKENS`: `name=token,...`.
    pub fn receiver_list(&self) -> String {
        self.receivers
            .iter()
            .map(|(n, t)| format!("{n}={t}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The transmitter's own entry: it starts before every receiver.
pub fn transmitter(port: u16, url: &str, keys_dir: &str, tokens: &SignalTokens) -> Service {
    Service {
        name: "ssf",
        port,
        health: "/health",
        env: vec![
            ("SSF_BIND", format!("127.0.0.1:{port}")),
            ("SSF_PUBLIC_URL", url.to_owned()),
            ("SSF_KEYS_DIR", keys_dir.to_owned()),
            ("SSF_RECEIVER_TOKENS", tokens.receiver_list()),
            ("SSF_SOURCE_TOKEN", tokens.source.clone()),
        ],
    }
}

/// Gives each receiver in `services` the transmitter's URL and its own token.
pub fn connect<const N: usize>(
    mut services: [Service; N],
    ssf_url: &str,
    tokens: &SignalTokens,
) -> [Service; N] {
    for s in &mut services {
        let Some(token) = tokens.of(s.name) else {
            continue;
        };
        s.env.push(("SSF_URL", ssf_url.to_owned()));
        s.env.push(("SSF_TOKEN", token.to_owned()));
        if s.name == "idp" {
            s.env.push(("SSF_SOURCE_TOKEN", tokens.source.clone()));
        }
    }
    services
}
