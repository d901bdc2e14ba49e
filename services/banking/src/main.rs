//! The banking agent binary: configuration from the environment, logging, run until Ctrl-C or
//! SIGTERM.

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = banking::Config::from_env().context("reading configuration")?;
    kit::telemetry::init("info,banking=info", config.log_json);
    let app = banking::Application::build(config).await?;
    app.run_until(kit::shutdown_signal()).await
}
