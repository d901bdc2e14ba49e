//! The ssf binary: configuration from the environment, logging, run until Ctrl-C or SIGTERM.

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = ssf::Config::from_env().context("reading configuration")?;
    kit::telemetry::init("info,ssf=info", config.log_json);
    let app = ssf::Application::build(config).await?;
    app.run_until(kit::shutdown_signal()).await
}
