//! The idp binary: logging, configuration from the environment, run until Ctrl-C or SIGTERM.

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    kit::telemetry::init(
        "info,idp=info",
        std::env::var("LOG_FORMAT").is_ok_and(|f| f == "json"),
    );
    let config = idp::Config::from_env().context("reading configuration")?;
    let app = idp::Application::build(config).await?;
    app.run_until(kit::shutdown_signal()).await
}
