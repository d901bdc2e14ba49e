//! The concierge: the supervisor agent the user talks to.
//!
//! - [`planner`]: decides which specialists to call. [`planner::RulePlanner`] by default
//!   (deterministic and offline); [`planner::LlmPlanner`] when `LLM_BASE_URL` is set (a hosted
//!   model picks tools whose schemas come from the specialists' cards). Either way the planner
//!   only asks: it is a conversation of moves ([`planner::Move`]) the concierge carries out.
//! - [`agent`]: the loop. Each tool call the planner asks for is one delegation hop (the user's
//!   token → a token for that specialist and that operation) and one A2A call; progress, approval
//!   waits and refusals are relayed to the user's task and reported back to the planner.
//! - [`steps`]: step-by-step runs for presenter mode: the concierge's own pauses, and the
//!   specialists' pauses relayed (the machinery is `kit::agent::steps`).
//! - [`attack`]: the S6 attack toggles the concierge performs (chain splicing, a replayed
//!   actor token, obeying an injected instruction), and passing a specialist's toggle on.
//!
//! The concierge never holds a standing credential: it holds the user's token (which names it
//! in `may_act`) and its own key, and every specialist call carries a token minted for that call.

pub mod agent;
pub mod attack;
pub mod config;
pub mod planner;
pub mod steps;

use std::{future::Future, sync::Arc};

use anyhow::Context as _;
use axum::{Json, Router, routing::get};
use kit::a2a::server::Server;
use tokio::net::TcpListener;

pub use crate::config::Config;

/// A built concierge: runtime ready, listener bound.
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
        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("binding {}", config.bind))?;
        let url = config.public_url.clone().unwrap_or_else(|| {
            format!(
                "http://{}",
                listener
                    .local_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default()
            )
        });
        let rt = kit::agent::Runtime::start(
            "concierge",
            &config.issuer,
            &config.keys_dir,
            &config.database_url,
            &[kit::agent::EVENTS_MIGRATION],
        )
        .await?;
        let directory = [
            ("banking", config.banking_url.clone()),
            ("iam", config.iam_url.clone()),
            ("entra", config.entra_url.clone()),
        ]
        .into_iter()
        .collect();
        let steps = Arc::new(steps::Steps::default());
        let guard = rt.guard.clone();
        let planner: Box<dyn planner::Planner> = match &config.llm {
            None => Box::new(planner::RulePlanner),
            Some(llm) => {
                tracing::info!(base_url = %llm.base_url, model = %llm.model, "the LLM planner decides which specialists to call");
                Box::new(planner::LlmPlanner::new(llm).context("setting up the LLM planner")?)
            }
        };
        let signals = rt.clone(); // shared signals: see `kit::agent::signals`
        let mut concierge = agent::Concierge::new(rt, planner, directory, steps.clone())
            .context("setting up the A2A client")?;
        concierge.attacks = config.attacks.clone();
        let server = Server::new(Arc::new(concierge), guard.clone(), url.clone());
        let router = server.router().merge(steps::routes(steps, guard)).route(
            "/health",
            get(|| async { Json(serde_json::json!({"status": "ok", "service": "concierge"})) }),
        );
        let router = router.merge(signals.receive_signals(server.tasks(), &url).await);
        Ok(Self {
            listener,
            router,
            url,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(url = %self.url, "concierge listening");
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    }
}
