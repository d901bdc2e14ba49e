//! The graph binary: configuration from the environment, logging, run until Ctrl-C or SIGTERM.

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = graph::Config::from_env().context("reading configuration")?;
    kit::telemetry::init("info,graph=info", config.log_json);
    let app = graph::Application::build(config).await?;
    app.run_until(kit::shutdown_signal()).await
}
