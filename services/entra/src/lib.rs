//! The entra specialist: administers the users of an Entra tenant through the Microsoft Graph
//! users API (`services/graph` is the stand-in tenant), with a token minted for each operation.
//!
//! A short tour, in the order a tool call meets it:
//!
//! - [`config`]: the environment, read once (the only module that reads it).
//! - `kit::a2a::server` (shared): the A2A endpoint verifies the concierge's token (T1, addressed
//!   to `spiffe://demo.local/agent/entra`) before anything runs, and keeps the task's state.
//! - [`skills`]: one skill per `urn:smt:agent:entra` action; the call's arguments are the RAR's
//!   `operationDetails`, so the authority asked for is the call itself.
//! - [`agent`]: hop 2 (`Runtime::delegate`: T1 → a token for `graph` carrying exactly that entry,
//!   waiting in `TASK_STATE_AUTH_REQUIRED` while the user decides), then the Graph request, one
//!   security event with the token's `jti`, and a reply in plain words.
//! - [`graph`]: the Graph users client.
//!
//! Invariants, stated as absences: no Graph request is made with any token but the one minted for
//! that operation; no Graph request is made when the idp refuses; the agent holds no credential
//! for the tenant between calls.

pub mod agent;
pub mod config;
pub mod graph;
pub mod skills;

use std::{future::Future, sync::Arc};

use anyhow::Context as _;
use axum::{Json, Router, routing::get};
use kit::a2a::server::Server;
use tokio::net::TcpListener;

pub use crate::config::Config;

/// The agent's name: its key (`<KEYS_DIR>/entra.key`), its SPIFFE id, its Postgres schema.
pub const NAME: &str = "entra";

/// A built agent: runtime ready (key loaded, events schema migrated), listener bound.
pub struct Application {
    listener: TcpListener,
    router: Router,
    pub url: String,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("binding {}", config.bind))?;
        let url = match &config.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => format!("http://{}", listener.local_addr()?),
        };
        let rt = kit::agent::Runtime::start(
            NAME,
            &config.idp_issuer,
            &config.keys_dir,
            &config.database_url,
            &[kit::agent::EVENTS_MIGRATION],
        )
        .await?;
        let graph = graph::Graph::new(rt.http.clone(), &config.graph_url);
        let guard = rt.guard.clone();
        let signals = rt.clone();
        let server = Server::new(
            Arc::new(agent::Entra::new(rt, graph, config.attacks.clone())),
            guard,
            url.clone(),
        );
        let router = server
            .router()
            .merge(signals.receive_signals(server.tasks(), &url).await)
            .route(
                "/health",
                get(|| async { Json(serde_json::json!({"status": "ok", "service": NAME})) }),
            );
        Ok(Self {
            listener,
            router,
            url,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(url = %self.url, "entra listening");
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    }
}
