//! Antenna: the platform's Shared Signals transmitter (SSF 1.0, CAEP 1.0). When a session is
//! revoked at the idp, Antenna tells every service that holds something of that session (the
//! idp's own token endpoints, verify-rar's leases, each agent's cached tokens) with a signed
//! Security Event Token, pushed (RFC 8935) or polled (RFC 8936).
//!
//! A tour, in the order an event meets it:
//!
//! - [`routes::source`]: `POST /events`, the internal source (the idp), authenticated with its
//!   own token ([`auth`]).
//! - [`signal`]: which streams get the event (status, requested events, subjects), and one
//!   RS256 SET for each, signed and queued in one transaction ([`store::sets`]).
//! - [`delivery`]: the push worker: claims due SETs (`FOR UPDATE SKIP LOCKED`), POSTs them,
//!   settles each by the answer, retries with backoff. [`routes::poll`] is the poll side.
//! - [`routes::streams`], [`routes::status`], [`routes::subjects`], [`routes::verify`]: the SSF
//!   management API (§8.1), each receiver with its own bearer token and only its own streams
//!   ([`stream`] holds the field rules). [`routes::metadata`]: the well-known document and JWKS.
//! - [`error`]: one error type, mapped to HTTP in one place. [`config`]: the environment.
//!
//! The crate is a library with a thin `main.rs`: [`Application::build`] binds, connects,
//! migrates and loads the key; [`Application::run_until`] serves and runs the push worker until
//! the shutdown future resolves. Tests bind port 0.
//!
//! Invariants, stated as absences: no SET leaves without a row in `ssf.sets` committed first
//! (a restart loses none); no SET is signed with anything but the RS256 key at `/jwks`; no
//! receiver's token reaches another receiver's stream; no SET goes to a disabled stream, and
//! none to a paused one until it is enabled again.

pub mod auth;
pub mod config;
pub mod delivery;
pub mod error;
pub mod routes;
pub mod signal;
pub mod state;
pub mod store;
pub mod stream;

use std::{future::Future, time::Duration};

use anyhow::Context as _;
use kit::{pg::Migration, ssf::RsaSigningKey};
use tokio::{net::TcpListener, sync::watch};

pub use crate::{config::Config, routes::router, state::AppState};

/// Antenna's own Postgres schema.
pub const SCHEMA: &str = "ssf";

/// The file name (in `SSF_KEYS_DIR`) of the SET signing key.
pub const KEY_NAME: &str = "ssf-set";

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "events",
        sql: kit::events::EVENTS_TABLE_SQL,
    },
    Migration {
        version: 2,
        name: "streams",
        sql: include_str!("../migrations/0002_streams.sql"),
    },
];

/// A built transmitter: state ready, listener bound.
#[derive(Debug)]
pub struct Application {
    state: AppState,
    listener: TcpListener,
}

impl Application {
    /// Binds the listener, connects to Postgres, migrates, loads (or creates) the RS256 key.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("binding {}", config.bind))?;
        let base_url = match &config.public_url {
            Some(u) => u.clone(),
            None => format!("http://{}", listener.local_addr()?),
        };
        let issuer = config.issuer.clone().unwrap_or_else(|| base_url.clone());
        let pool = kit::pg::pool(&config.database_url, SCHEMA, 16)?;
        kit::pg::migrate(&pool, SCHEMA, MIGRATIONS)
            .await
            .context("migrating the ssf schema")?;
        let key = RsaSigningKey::load_or_generate(&config.keys_dir, KEY_NAME)
            .with_context(|| format!("loading the SET key from {}", config.keys_dir.display()))?;
        let http = reqwest::Client::builder()
            .timeout(config.push_timeout)
            .connect_timeout(Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the HTTP client")?;
        if config.receivers.is_empty() {
            tracing::warn!(
                "no receivers configured (SSF_RECEIVER_TOKENS): nobody can create a stream"
            );
        }
        let (stopping, _) = watch::channel(false);
        let state = AppState::new(state::Inner {
            config,
            pool,
            key,
            issuer,
            base_url,
            http,
            wake: tokio::sync::Notify::new(),
            stopping,
        });
        Ok(Self { state, listener })
    }

    /// The base URL we are reachable at (`SSF_PUBLIC_URL`, or the bound address).
    pub fn url(&self) -> &str {
        &self.state.base_url
    }

    /// The `iss` of our SETs.
    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves and delivers until `shutdown` resolves; then finishes in-flight requests and the
    /// push batch in hand. Pending SETs stay queued for the next start.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        serve(self.listener, self.state, shutdown).await
    }
}

/// Serves `state` on `listener` and runs the push worker, until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    tracing::info!(url = %state.base_url, issuer = %state.issuer, kid = %state.key.kid(), "ssf transmitter listening");
    let worker = tokio::spawn(delivery::run(state.clone(), state.stopping.subscribe()));
    let stop = state.clone();
    let signal = async move {
        shutdown.await;
        stop.stopping.send_replace(true);
    };
    let served = axum::serve(listener, router(state.clone()))
        .with_graceful_shutdown(signal)
        .await;
    state.stopping.send_replace(true);
    if worker.await.is_err() {
        tracing::error!("the push worker panicked");
    }
    served?;
    Ok(())
}
