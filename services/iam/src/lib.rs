//! The iam specialist: administers the idp's users and groups through its SCIM 2.0 API, with a
//! token minted for each operation. Fork it as the template for a specialist that reaches an
//! HTTP API (banking is the one that reaches a database).
//!
//! A short tour, in the order a tool call meets it:
//!
//! - [`config`]: the environment, read once (the only module that reads it).
//! - `kit::a2a::server` (shared): the A2A endpoint verifies the concierge's token (T1, addressed
//!   to `spiffe://demo.local/agent/iam`) before anything runs, and keeps the task's state.
//! - [`skills`]: one skill per `urn:smt:agent:iam` action; the call's arguments are the RAR's
//!   `operationDetails`, so the authority asked for is the call itself.
//! - [`agent`]: hop 2 (`Runtime::delegate`: T1 → a token for `scim` carrying exactly that entry,
//!   waiting in `TASK_STATE_AUTH_REQUIRED` while the user decides), then the SCIM requests, each
//!   one security event with the token's `jti`, and a reply in plain words.
//! - [`scim`]: the SCIM 2.0 client.
//!
//! Invariants, stated as absences: no SCIM request is made with any token but the one minted for
//! that operation; no SCIM request is made when the idp refuses; the agent holds no credential
//! for the directory between calls.

pub mod agent;
pub mod config;
pub mod scim;
pub mod skills;

use std::{future::Future, sync::Arc};

use anyhow::Context as _;
use axum::{Json, Router, routing::get};
use kit::a2a::server::Server;
use tokio::net::TcpListener;

pub use crate::config::Config;

/// The agent's name: its key (`<KEYS_DIR>/iam.key`), its SPIFFE id, its Postgres schema.
pub const NAME: &str = "iam";

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
        let scim = scim::Scim::new(rt.http.clone(), config.scim_url());
        let guard = rt.guard.clone();
        let signals = rt.clone();
        let server = Server::new(
            Arc::new(agent::Iam::new(rt, scim, config.attacks.clone())),
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
        tracing::info!(url = %self.url, "iam listening");
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    }
}
