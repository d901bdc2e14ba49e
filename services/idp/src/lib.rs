//! The identity provider and token service every other part of the platform trusts.
//!
//! A tour, in the order a demo meets it:
//!
//! - [`routes::authorize`] and [`routes::token`]: the user signs in (authorization code +
//!   PKCE S256); the web app gets an access token naming the concierge in `may_act`.
//! - [`exchange`]: each agent hop trades the token it holds plus its own actor token for a
//!   narrower token (RFC 8693 + RFC 9396). Every rule of a hop is in that one file.
//! - [`policy`]: Cedar policies decide each requested operation's tier.
//! - [`routes::ciba`] and [`routes::approvals`]: tiers 2 and 3 wait for the user's push
//!   approval; the agent polls with the CIBA grant.
//! - [`routes::introspect`] and [`routes::sessions`]: resource servers introspect; ending a
//!   session kills every token of it.
//! - [`registry`]: the agents, their keys, audiences, ceilings and status.
//!
//! The crate is a library with a thin `main.rs`: [`Application::build`] connects, migrates and
//! binds; [`Application::run_until`] serves until the shutdown future resolves. Tests bind port 0.

pub mod anomaly;
pub mod auth;
pub mod clients;
pub mod config;
pub mod error;
pub mod event_writer;
pub mod exchange;
pub mod policy;
pub mod registry;
pub mod routes;
pub mod signals;
pub mod state;
pub mod store;
pub mod tokens;

use std::{future::Future, sync::Arc};

use anyhow::Context as _;
use kit::{events::Outcome, jwt::SigningKey, pg::Migration};
use tokio::net::TcpListener;

pub use crate::{config::Config, routes::router, state::AppState};

/// The password of the seeded demo users (documented in the README; never for real tenants).
pub const DEMO_PASSWORD: &str = "demo-password";

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "scim",
        sql: include_str!("../migrations/0002_scim.sql"),
    },
    Migration {
        version: 3,
        name: "signals",
        sql: include_str!("../migrations/0003_signals.sql"),
    },
    Migration {
        version: 4,
        name: "jti_expiry",
        sql: include_str!("../migrations/0004_jti_expiry.sql"),
    },
];

/// A built idp: state ready, listener bound.
pub struct Application {
    state: AppState,
    listener: TcpListener,
    /// The shared-signals push endpoint (empty when the idp receives no signals).
    signals: axum::Router,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("state", &self.state)
            .finish()
    }
}

impl Application {
    /// Binds the listener, then connects to Postgres, applies migrations, loads keys, clients,
    /// the agent registry and the policies. Any failure here stops start-up with its cause.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        if config.bench_auto_approve {
            tracing::warn!(
                "IDP_BENCH_AUTO_APPROVE is on: every push approval is granted WITHOUT the user \
                 (benchmark mode; each such event carries auto_approved). Never run a demo or a \
                 tenant like this."
            );
        }
        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("binding {}", config.bind))?;
        let issuer = match &config.issuer {
            Some(i) => i.clone(),
            None => format!("http://{}", listener.local_addr()?),
        };
        let pool = kit::pg::pool(&config.database_url, "idp", 16)?;
        kit::pg::migrate(&pool, "idp", MIGRATIONS)
            .await
            .context("migrating the idp schema")?;
        let db = pool.get().await?;
        if config.seed_demo_users {
            store::users::seed_demo(&db, DEMO_PASSWORD).await?;
        }
        let key = SigningKey::load_or_generate(&config.keys_dir, "idp")
            .context("loading the idp signing key")?;
        let agents = registry::seed(&db, &config.agents_file, &config.keys_dir).await?;
        tracing::info!(agents, "agent registry loaded");
        let clients = clients::Clients::load(&config.clients_file, &issuer)?;
        let policy =
            Arc::new(policy::PolicyEngine::load(&config.policy_dir).context("loading policies")?);
        let approvals_changed = kit::pg::listen(&config.database_url, "idp_approvals")?;
        drop(db);
        // The issuance events' writer has its own connection (see `event_writer`).
        let issued_events = event_writer::EventWriter::start(
            kit::pg::pool(&config.database_url, "idp", 1)?,
            kit::events::Commit::Deferred,
        );
        let state = AppState::new(state::Inner {
            issuer: tokens::Issuer::new(issuer, key)?,
            pool,
            issued_events,
            policy: policy.clone(),
            clients,
            agents: registry::Cache::default(),
            approvals_changed,
            config,
        });
        let reporter = state.clone();
        policy.watch(state.config.policy_poll, move |result| {
            let state = reporter.clone();
            tokio::spawn(async move {
                let mut event = state.event("policy_reloaded", Outcome::Info);
                if let Err(e) = result {
                    tracing::error!(error = %format!("{e:#}"), "policy reload refused; the previous policies stay in force");
                    event.kind = "policy_reload_failed".into();
                    event.outcome = Outcome::Error;
                    event.reason = Some(format!("{e:#}"));
                }
                state.emit_best_effort(event).await;
            });
        });
        let signals = signals::start(&state)
            .await
            .context("starting shared signals")?;
        Ok(Self {
            state,
            listener,
            signals,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.state.issuer.url
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(issuer = %self.state.issuer.url, "idp listening");
        axum::serve(self.listener, router(self.state).merge(self.signals))
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    }
}
