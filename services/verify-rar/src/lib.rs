//! verify-rar: a Vault-API-compatible issuer of per-transaction Postgres credentials.
//!
//! An agent logs in with the delegated token the idp minted for it (`auth/jwt/login`), then
//! reads `verify-rar/creds/<role>`. The issuer maps the token's business RAR through the role's
//! `rar_mappings` to SQL, creates `v-<role>-<random>` for at most five minutes, binds it inside
//! the ledger to the one approved operation, records the lease, and writes an audit line.
//!
//! A short tour, in the order a request meets them:
//!
//! - [`routes`]: Vault's paths and their handlers; [`vault`]: the wire shapes (envelope, errors,
//!   body extractor); [`error`]: the one error type, mapped to `{"errors": [...]}` in one place.
//! - [`idp`]: verifying the delegated token (JWKS, ES256, audience) and its session (RFC 7662).
//! - [`roles`]: role configuration, and the rule that RAR values are bound, never interpolated.
//! - [`leases`]: issue, renew, revoke, the reaper, and crash reconciliation (read its docs).
//! - [`audit`]: the hash-chained JSON-lines audit log and its verifier.
//! - [`store`], [`state`], [`config`]: tokens and roles tables, shared state, configuration.
//! - [`signals`]: a CAEP `session-revoked` from the transmitter revokes that session's leases.
//!
//! Invariants: no role exists without a lease row naming it (intent first); no RAR value is
//! ever part of SQL text; no credential is handed out without its audit line.

pub mod audit;
pub mod config;
pub mod error;
pub mod idp;
pub mod leases;
pub mod roles;
pub mod routes;
pub mod signals;
pub mod state;
pub mod store;
pub mod vault;

use std::future::Future;

pub use config::Config;
pub use routes::router;
pub use state::AppState;

/// Serves the API on `listener` and runs the reaper, until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let reaper_state = state.clone();
    let reaper = tokio::spawn(async move {
        let mut tick = tokio::time::interval(reaper_state.config.reap_interval);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(e) = leases::reap_once(&reaper_state).await {
                        tracing::warn!(error = %e, "reaper pass failed");
                    }
                }
                _ = stop_rx.changed() => break,
            }
        }
    });
    // Shared signals: a revoked session's leases are revoked at once (see `signals`).
    let signals = signals::start(&state, &format!("http://{}", listener.local_addr()?)).await;
    let app = router(state).merge(signals);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        })
        .await?;
    let _ = reaper.await;
    Ok(())
}
