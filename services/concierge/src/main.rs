//! The concierge binary: logging, configuration from the environment, run until Ctrl-C or SIGTERM.

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    kit::telemetry::init(
        "info",
        std::env::var("LOG_FORMAT").is_ok_and(|f| f == "json"),
    );
    let config = concierge::Config::from_env().context("reading configuration")?;
    concierge::Application::build(config)
        .await?
        .run_until(kit::shutdown_signal())
        .await
}
