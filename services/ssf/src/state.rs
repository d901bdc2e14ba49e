//! Antenna's shared state: one `Clone` handle passed to every handler with `with_state`.

use std::sync::Arc;

use deadpool_postgres::Pool;
use kit::{events::SecurityEvent, ssf::RsaSigningKey};
use tokio::sync::{Notify, watch};

use crate::config::Config;

/// The service name on every event Antenna writes.
pub const SERVICE: &str = "ssf";

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    /// Connections whose `search_path` is the `ssf` schema.
    pub pool: Pool,
    /// Signs every SET (RS256, 2048 bits); its public half is at `/jwks`.
    pub key: RsaSigningKey,
    /// The `iss` of every SET and the metadata's `issuer`.
    pub issuer: String,
    /// The base of every endpoint we advertise.
    pub base_url: String,
    /// The client pushes go out with: no redirects (a receiver's URL is where SETs go, not a
    /// hint), the push timeout.
    pub http: reqwest::Client,
    /// Rung whenever SETs are queued: wakes this replica's push worker and its long polls.
    /// Other replicas find the same rows on their next tick.
    pub wake: Notify,
    /// Turns true when the service is stopping: the worker and long polls end.
    pub stopping: watch::Sender<bool>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .field("issuer", &self.issuer)
            .field("kid", &self.key.kid())
            .finish_non_exhaustive()
    }
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }

    /// Where a poll stream's receiver fetches its SETs.
    pub fn poll_url(&self, stream_id: &str) -> String {
        format!("{}/ssf/poll/{stream_id}", self.base_url)
    }

    /// Records a security event; a failure is logged, never allowed to change the answer.
    pub async fn emit_best_effort(&self, event: &SecurityEvent) {
        let result = async {
            let client = self.pool.get().await?;
            kit::events::emit(&client, event).await?;
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::error!(error = %format!("{e:#}"), kind = %event.kind, "could not record a security event");
        }
    }
}
