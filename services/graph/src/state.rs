//! Graph's shared state: one `Clone` handle passed to every handler with `with_state`.

use std::sync::Arc;

use deadpool_postgres::Pool;
use kit::{events::SecurityEvent, guard::Guard};

use crate::config::Config;

/// The service name on every event graph writes.
pub const SERVICE: &str = "graph";

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    /// Connections whose `search_path` is the `graph` schema.
    pub pool: Pool,
    /// Checks every bearer token: the idp's JWKS, ES256 only, issuer, `aud = graph`, expiry,
    /// and the session alive at the idp (introspection, on every request).
    pub guard: Guard,
    /// The base of the `@odata.*` URLs we hand out (`GRAPH_PUBLIC_URL`, or the bound address).
    pub base_url: String,
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
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }

    /// Records a security event. A decision whose event cannot be written is not a decision we
    /// can stand behind, so the error is returned for the caller to fail with.
    pub async fn emit(&self, event: &SecurityEvent) -> anyhow::Result<()> {
        let client = self.pool.get().await?;
        kit::events::emit(&client, event).await?;
        Ok(())
    }

    /// Records an event on a path that is already a refusal: a failure to record is logged,
    /// never allowed to replace the refusal the caller must see.
    pub async fn emit_best_effort(&self, event: &SecurityEvent) {
        if let Err(e) = self.emit(event).await {
            tracing::error!(error = %format!("{e:#}"), kind = %event.kind, "could not record a security event");
        }
    }
}
