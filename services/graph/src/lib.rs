//! graph: a small Microsoft-Graph-shaped users API, the stand-in for an Entra tenant that the
//! entra specialist administers. It trusts only delegated tokens: an agent acting for a signed-in
//! user, holding a token the idp minted for exactly this operation on exactly this user.
//!
//! A tour, in the order a request meets it:
//!
//! - [`request`]: every request gets a `request-id`, echoed in headers and error bodies.
//! - [`access`]: the rules every call passes (the guard: signature, issuer, `aud = graph`,
//!   expiry, live session; then an `act` chain; then an `urn:smt:agent:entra` entry for exactly
//!   this action and user), and the one security event each request writes.
//! - [`routes`]: `GET/POST /v1.0/users`, `GET /v1.0/users/{id | userPrincipalName}`, `/health`.
//! - [`user`] and [`query`]: Graph's user shape, the validated create body, the OData options.
//! - [`store`]: all SQL, on the `graph` schema. [`error`]: Graph's error shape, in one place.
//!
//! The crate is a library with a thin `main.rs`: [`Application::build`] binds, connects and
//! migrates; [`Application::run_until`] serves until the shutdown future resolves. Tests bind
//! port 0.
//!
//! Invariants, stated as absences: no user row exists without the allowed event of the token
//! that created it (one transaction); no request is answered without the idp confirming, at
//! that moment, that the token's session is alive; no bad input reaches SQL or yields a 5xx.

pub mod access;
pub mod config;
pub mod error;
pub mod query;
pub mod request;
pub mod routes;
pub mod state;
pub mod store;
pub mod user;

use std::{future::Future, time::Duration};

use anyhow::Context as _;
use kit::{
    guard::{Guard, IntrospectionAuth},
    pg::Migration,
};
use tokio::net::TcpListener;

pub use crate::{config::Config, routes::router, state::AppState};

/// Graph's own Postgres schema.
pub const SCHEMA: &str = "graph";

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "events",
        sql: kit::events::EVENTS_TABLE_SQL,
    },
    Migration {
        version: 2,
        name: "users",
        sql: include_str!("../migrations/0002_users.sql"),
    },
];

/// A built graph: state ready, listener bound.
#[derive(Debug)]
pub struct Application {
    state: AppState,
    listener: TcpListener,
}

impl Application {
    /// Binds the listener, then connects to Postgres and applies migrations. Any failure here
    /// stops start-up with its cause. The idp is not contacted until the first request.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("binding {}", config.bind))?;
        let base_url = match &config.public_url {
            Some(u) => u.clone(),
            None => format!("http://{}", listener.local_addr()?),
        };
        let pool = kit::pg::pool(&config.database_url, SCHEMA, 16)?;
        kit::pg::migrate(&pool, SCHEMA, MIGRATIONS)
            .await
            .context("migrating the graph schema")?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the HTTP client")?;
        let guard = Guard::new(
            http,
            &config.idp_issuer,
            config::AUDIENCE,
            IntrospectionAuth::Secret {
                client_id: config.idp_client_id.clone(),
                client_secret: config.idp_client_secret.clone(),
            },
        );
        let state = AppState::new(state::Inner {
            config,
            pool,
            guard,
            base_url,
        });
        Ok(Self { state, listener })
    }

    /// The base URL we are reachable at (`GRAPH_PUBLIC_URL`, or the bound address).
    pub fn url(&self) -> &str {
        &self.state.base_url
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
        serve(self.listener, self.state, shutdown).await
    }
}

/// Serves `state` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    tracing::info!(url = %state.base_url, idp = %state.config.idp_issuer, "graph listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
