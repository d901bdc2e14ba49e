//! What every request handler shares.

use std::sync::Arc;

use kit::a2a::client::Client as A2a;
use tokio::sync::broadcast;

use crate::{accounts::Accounts, chat::Conversations, config::Config, hub::Hub, oidc::Oidc};

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub http: reqwest::Client,
    pub oidc: Oidc,
    pub a2a: A2a,
    pub accounts: Arc<Accounts>,
    pub conversations: Arc<Conversations>,
    pub hub: Hub,
    /// Every service's security events as they are emitted (`NOTIFY security_events` payloads).
    pub events: broadcast::Sender<String>,
    /// Read-only queries: event history, the ledger row for forensics.
    pub db: deadpool_postgres::Pool,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
