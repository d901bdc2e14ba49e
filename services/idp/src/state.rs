//! The idp's shared state: one `Clone` handle passed to every handler with `with_state`.

use std::sync::Arc;

use deadpool_postgres::Pool;
use kit::events::SecurityEvent;
use tokio::sync::broadcast;

use crate::{clients::Clients, config::Config, policy::PolicyEngine, tokens::Issuer};

/// The service name on every event the idp writes.
pub const SERVICE: &str = "idp";

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub issuer: Issuer,
    pub pool: Pool,
    /// Writes the token endpoint's issuance events in groups ([`crate::event_writer`]).
    pub issued_events: crate::event_writer::EventWriter,
    pub policy: Arc<PolicyEngine>,
    pub clients: Clients,
    /// Registered agents with their keys parsed, checked against the store on every use.
    pub agents: crate::registry::Cache,
    /// Notifications on `idp_approvals` (payload: the user id whose approvals changed), from
    /// every replica, through Postgres.
    pub approvals_changed: broadcast::Sender<String>,
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
            .field("issuer", &self.issuer.url)
            .finish_non_exhaustive()
    }
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }

    /// Records a security event. A decision whose event cannot be written is not a decision we
    /// can stand behind, so the error is returned for the caller to fail with.
    pub async fn emit(&self, event: SecurityEvent) -> anyhow::Result<()> {
        let client = self.pool.get().await?;
        kit::events::emit(&client, &event).await?;
        Ok(())
    }

    /// Records an event on a connection the request already holds (no second checkout, the
    /// statement prepared once per connection), committing as `commit` says.
    pub async fn emit_on(
        &self,
        client: &deadpool_postgres::Client,
        event: &SecurityEvent,
        commit: kit::events::Commit,
    ) -> anyhow::Result<()> {
        kit::events::emit_on(client, event, commit).await?;
        Ok(())
    }

    /// Records an event on a path that has already failed or been refused: a failure to record
    /// is logged, not allowed to replace the refusal the client must see.
    pub async fn emit_best_effort(&self, event: SecurityEvent) {
        if let Err(e) = self.emit(event).await {
            tracing::error!(error = %format!("{e:#}"), "could not record a security event");
        }
    }

    pub fn event(&self, kind: &str, outcome: kit::events::Outcome) -> SecurityEvent {
        SecurityEvent::new(SERVICE, kind, outcome)
    }
}
