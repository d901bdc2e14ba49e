//! The banking specialist agent, and the ledger it keeps. This crate is the template teams fork
//! for their own agent (`docs/FORKING.md`), so it is meant to be read top to bottom.
//!
//! A short tour, in the order a request meets it:
//!
//! - [`Application`]: binds, starts the agent runtime (identity, guard, exchange client, events)
//!   and serves the A2A endpoint from `kit::a2a::server` until shutdown, with the step-by-step
//!   routes of presenter mode (`/steps/{task_id}`, `kit::agent::steps`).
//! - [`agent`]: the agent card and one `run` per tool call: the arguments become the business
//!   RAR, the skill's ledger call runs under a credential for it, the reply says what happened.
//! - [`credential`]: one operation under one credential: hop 2 (with the user's push approval
//!   when the policy asks), issuer login, a Postgres role for this one operation, the SQL, the
//!   lease revoked right after. Each step is a security event.
//! - [`vault`]: the credential issuer's client, on `vaultrs`.
//! - [`ledger`]: the operations run as the ephemeral user: [`ledger::transfer`] (exactly three
//!   statements in one transaction), [`ledger::open_account`], [`ledger::balances`].
//! - [`schema`]: the `banking` schema as ordered migrations, and how a credential is bound to
//!   its one transaction inside Postgres (read its doc comment first).
//! - [`config`]: the environment, read once.
//! - [`attack`]: not part of the template: the S6 attack toggles, a transfer run misbehaving
//!   on purpose so the platform's refusals can be seen.

pub mod agent;
pub mod attack;
pub mod config;
pub mod credential;
pub mod ledger;
pub mod schema;
pub mod vault;

use std::{future::Future, sync::Arc};

use anyhow::Context as _;
use axum::{Router, routing::get};
use kit::{
    a2a::server::Server,
    agent::{Runtime, Steps, steps},
};
use tokio::net::TcpListener;

pub use agent::Banking;
pub use config::Config;
pub use credential::Credentials;
pub use ledger::{Account, LedgerError, Receipt, Transfer, balances, open_account, transfer};
pub use schema::{MIGRATIONS, SCHEMA, migrate};

/// A built agent: runtime started, listener bound.
pub struct Application {
    listener: TcpListener,
    base_url: String,
    runtime: Runtime,
    router: Router,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Binds the listener, loads the agent's key, connects to Postgres and applies the
    /// `banking` migrations. Any failure here stops start-up with its cause.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("binding {}", config.bind))?;
        let base_url = match &config.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => format!("http://{}", listener.local_addr()?),
        };
        let runtime = Runtime::start(
            agent::NAME,
            &config.idp_issuer,
            &config.keys_dir,
            &config.database_url,
            MIGRATIONS,
        )
        .await
        .context("starting the agent runtime")?;
        let credentials = Credentials::new(
            runtime.clone(),
            vault::Issuer::new(&config.vault_addr),
            &config.database_url,
        )?;
        let steps = Arc::new(Steps::default());
        let banking = Banking::new(
            runtime.clone(),
            credentials,
            steps.clone(),
            config.attacks.clone(),
        );
        let server = Server::new(Arc::new(banking), runtime.guard.clone(), &base_url);
        let router = server
            .router()
            .merge(steps::routes(steps, runtime.guard.clone()))
            .merge(runtime.receive_signals(server.tasks(), &base_url).await)
            .route("/health", get(|| async { "ok" }));
        Ok(Self {
            listener,
            base_url,
            runtime,
            router,
        })
    }

    /// Where the card says we are.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The agent's runtime (its identity, its event store).
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(url = %self.base_url, spiffe_id = %self.runtime.identity.spiffe_id, "banking agent listening");
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    }
}
