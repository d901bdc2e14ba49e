//! `web`: the UI on port 8080. Configuration in `config.rs`.

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    kit::telemetry::init("info,tokio_postgres=warn", false);
    let config = web::config::Config::from_env()?;
    let bind = config.bind;
    let state = web::state(config).await?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("binding {bind}"))?;
    let signals = web::signals::start(&state).await;
    tracing::info!(%bind, url = %state.config.public_url, "the web UI is up");
    // Open event streams never end by themselves: after the signal, in-flight requests get a
    // moment, then the process exits.
    tokio::spawn(async {
        kit::shutdown_signal().await;
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        std::process::exit(0);
    });
    axum::serve(listener, web::router(state, signals))
        .with_graceful_shutdown(kit::shutdown_signal())
        .await?;
    Ok(())
}
