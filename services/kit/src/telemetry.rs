//! Logging set-up shared by every binary: `RUST_LOG`-style filtering, plain or JSON lines.

use tracing_subscriber::{EnvFilter, fmt};

/// Installs the global subscriber. `json` selects one JSON object a line (for log shippers);
/// otherwise lines are compact and prefixed with the target, readable in a terminal.
/// Calling it twice is harmless (the second call is ignored), which keeps tests simple.
pub fn init(default_filter: &str, json: bool) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = fmt().with_env_filter(filter).with_target(true);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.compact().try_init()
    };
}
