//! The shared state every handler gets: configuration, the database pool, the idp's key set,
//! and the audit log. Building it also migrates the schema, loads role files and reconciles
//! leftovers of a crash.

use std::{ops::Deref, sync::Arc, time::Duration};

use deadpool_postgres::Pool;
use kit::{
    events::{Outcome, SecurityEvent},
    jwks::JwksClient,
    pg::Migration,
};

use crate::{audit::AuditLog, config::Config, leases, roles, store};

/// The issuer's own schema.
pub const SCHEMA: &str = "verify_rar";
/// The `service` of every event this issuer writes.
pub const SERVICE: &str = "verify-rar";

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "events",
        sql: kit::events::EVENTS_TABLE_SQL,
    },
    Migration {
        version: 2,
        name: "issuer",
        sql: include_str!("migrations/0001_issuer.sql"),
    },
];

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub pool: Pool,
    pub jwks: JwksClient,
    pub http: reqwest::Client,
    pub audit: AuditLog,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Connects, migrates, loads `roles_dir` (files win over earlier API edits of the same name),
    /// and reconciles what a previous run of this instance left half-done.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let pool = kit::pg::pool(&config.database_url, SCHEMA, 16)?;
        kit::pg::migrate(&pool, SCHEMA, MIGRATIONS).await?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        let jwks = JwksClient::new(format!("{}/jwks", config.idp_issuer), http.clone());
        let audit = AuditLog::open(&config.audit_log)?;
        let file_roles = roles::load_dir(&config.roles_dir)?;
        let state = Self(Arc::new(Inner {
            config,
            pool,
            jwks,
            http,
            audit,
        }));
        for role in file_roles.values() {
            store::put_role(&state.pool, role, "file").await?;
        }
        let cleaned = leases::reconcile(&state).await?;
        tracing::info!(roles = file_roles.len(), cleaned, "verify-rar state ready");
        Ok(state)
    }

    /// A new event of this service.
    pub fn event(&self, kind: &str, outcome: Outcome) -> SecurityEvent {
        SecurityEvent::new(SERVICE, kind, outcome)
    }

    /// Records one decision: a line in the audit log (must succeed) and a security event in our
    /// `events` table with `NOTIFY` (best effort: logged if the database is unreachable).
    ///
    /// The audit line is flushed to disk before this returns; it is the issuer's record. The
    /// events row is its live copy for watchers, so its commit does not wait for the disk
    /// ([`kit::events::Commit::Deferred`]): a crash can lose the copy, not the record.
    ///
    /// The line's `fsync` runs on the blocking pool, not on a runtime worker: with two workers,
    /// two requests waiting for the disk would otherwise stop every other request, and lines
    /// of concurrent requests share one flush ([`AuditLog::append`]).
    pub async fn record(&self, event: &SecurityEvent) -> anyhow::Result<()> {
        let (state, line) = (self.clone(), event.clone());
        tokio::task::spawn_blocking(move || state.audit.append(&line)).await??;
        match self.pool.get().await {
            Ok(client) => {
                if let Err(e) =
                    kit::events::emit_on(&client, event, kit::events::Commit::Deferred).await
                {
                    tracing::warn!(error = %e, "security event not stored");
                }
            }
            Err(e) => tracing::warn!(error = %e, "security event not stored"),
        }
        Ok(())
    }

    /// Records a refusal; a failure to record is logged, and the refusal stands either way.
    pub async fn record_denial(&self, event: &SecurityEvent) {
        if let Err(e) = self.record(event).await {
            tracing::error!(error = format!("{e:#}"), "audit record of a refusal failed");
        }
    }
}
