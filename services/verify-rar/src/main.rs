//! The verify-rar binary: `verify-rar` serves the API; `verify-rar audit-verify <file>` checks an
//! audit log's hash chain and names the first broken line.

use std::process::ExitCode;

use anyhow::Context as _;
use verify_rar::{AppState, Config, audit};

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] | ["serve"] => serve().await.map(|()| ExitCode::SUCCESS),
        ["audit-verify", file] => Ok(audit_verify(file)?),
        _ => {
            eprintln!("usage: verify-rar [serve]\n       verify-rar audit-verify <audit-log-file>");
            Ok(ExitCode::from(2))
        }
    }
}

fn audit_verify(file: &str) -> anyhow::Result<ExitCode> {
    match audit::verify(std::path::Path::new(file))? {
        Ok(lines) => {
            println!("ok: {lines} lines, hash chain intact");
            Ok(ExitCode::SUCCESS)
        }
        Err(broken) => {
            println!("broken: {broken}");
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn serve() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    kit::telemetry::init("info,verify_rar=debug", config.log_json);
    tracing::info!(?config, "starting verify-rar");
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("binding {}", config.bind))?;
    let state = AppState::build(config).await?;
    verify_rar::serve(listener, state, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
