//! What every agent shares: its identity (SPIFFE id and key), the guard for tokens addressed to
//! it, the exchange client, its own event store, and [`Runtime::delegate`], one hop with
//! step-up that keeps the A2A task's state honest while the user decides. [`signals`]: what
//! an agent does when a session is revoked ([`Runtime::receive_signals`]). [`steps`]:
//! step-by-step runs for presenter mode (an agent pauses before each hop until told "next").
//! [`attack`]: the S6 attack toggles (an agent switched into misbehaving, to be refused).
//! [`grant`]: hop 2 of a specialist that calls an HTTP API with its token (iam, entra).

pub mod attack;
pub mod grant;
pub mod signals;
pub mod steps;

use std::{path::Path, time::Instant};

use deadpool_postgres::Pool;
use serde_json::json;

pub use self::{
    grant::Grant,
    steps::{Pause, Stepper, Steps},
};
use crate::{
    a2a::server::{AgentError, TaskHandle},
    claims::AccessClaims,
    events::{Commit, Outcome, SecurityEvent},
    exchange::{AgentIdentity, ExchangeClient, ExchangeError, Exchanged},
    guard::{Guard, GuardError, IntrospectionAuth},
    jwt::SigningKey,
    pg::Migration,
    rar::{self, AuthorizationDetail},
};

/// `spiffe://demo.local/agent/<name>`.
pub fn spiffe_id(name: &str) -> String {
    format!("spiffe://demo.local/agent/{name}")
}

/// An agent's runtime: who it is, how it checks callers, how it delegates, where its events go.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// The service name on its events (`banking`).
    pub name: String,
    pub identity: AgentIdentity,
    pub exchange: ExchangeClient,
    pub guard: Guard,
    pub pool: Pool,
    pub http: reqwest::Client,
}

/// The `events` table migration every agent applies to its own schema.
pub const EVENTS_MIGRATION: Migration = Migration {
    version: 1,
    name: "events",
    sql: crate::events::EVENTS_TABLE_SQL,
};

impl Runtime {
    /// Loads the agent's key from `<keys_dir>/<name>.key`, connects to its schema (`name`,
    /// with `migrations` applied), and points at the idp.
    pub async fn start(
        name: &str,
        issuer: &str,
        keys_dir: &Path,
        database_url: &str,
        migrations: &[Migration],
    ) -> anyhow::Result<Self> {
        let key_path = keys_dir.join(format!("{name}.key"));
        anyhow::ensure!(
            key_path.exists(),
            "the agent key {} is missing (the stack makes it on first run)",
            key_path.display()
        );
        let key = SigningKey::load_or_generate(keys_dir, name)?;
        let identity = AgentIdentity {
            spiffe_id: spiffe_id(name),
            key,
        };
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        let pool = crate::pg::pool(database_url, name, 8)?;
        crate::pg::migrate(&pool, name, migrations).await?;
        Ok(Self {
            name: name.to_owned(),
            exchange: ExchangeClient::new(http.clone(), issuer, identity.clone()),
            guard: Guard::new(
                http.clone(),
                issuer,
                &identity.spiffe_id,
                IntrospectionAuth::Agent(identity.clone()),
            ),
            identity,
            pool,
            http,
        })
    }

    /// A new event from this agent.
    pub fn event(&self, kind: &str, outcome: Outcome) -> SecurityEvent {
        SecurityEvent::new(&self.name, kind, outcome)
    }

    /// An event about acting on `claims` (user, session, chain filled in).
    pub fn event_for(&self, kind: &str, outcome: Outcome, claims: &AccessClaims) -> SecurityEvent {
        let mut e = self.event(kind, outcome);
        e.user = claims.email.clone().or_else(|| Some(claims.sub.clone()));
        e.session = claims.sid.clone();
        e.actor_chain = claims.chain_names();
        e
    }

    /// Records an event; a failure to record is logged (the decision itself was made elsewhere).
    ///
    /// The commit does not wait for the disk ([`Commit::Deferred`]), and the statement is
    /// prepared once per pooled connection: an agent's events narrate decisions that the idp,
    /// the issuer's audit log and the ledger record durably themselves, so a crash of Postgres
    /// may lose the agent's last lines of narration, never a decision. (Six durable commits per
    /// transfer were the largest share of the full chain's latency: `docs/BENCHMARKS.md`.)
    pub async fn emit(&self, event: SecurityEvent) {
        let result = match self.pool.get().await {
            Ok(c) => crate::events::emit_on(&c, &event, Commit::Deferred)
                .await
                .map_err(anyhow::Error::from),
            Err(e) => Err(e.into()),
        };
        if let Err(e) = result {
            tracing::error!(error = %format!("{e:#}"), "could not record a security event");
        }
    }

    /// Records a request refused before dispatch (the A2A server's hook).
    pub async fn refused(&self, error: &GuardError, method: &str) {
        let mut e = self.event("request_refused", Outcome::Denied);
        e.tool = Some(method.to_owned());
        e.reason = Some(format!("{}: {error}", error.rule()));
        self.emit(e).await;
    }

    /// One delegation hop for the task's principal: exchange the token we were given for one
    /// to `audience` carrying exactly `details`. If the user must approve, the task shows
    /// `TASK_STATE_AUTH_REQUIRED` (with the plain-words summary and binding code) until they
    /// decide. A refusal becomes `TASK_STATE_REJECTED` with the idp's reason.
    pub async fn delegate(
        &self,
        task: &TaskHandle,
        audience: &str,
        details: &[AuthorizationDetail],
    ) -> Result<Exchanged, AgentError> {
        self.delegate_with(task, audience, details, &Stepper::off())
            .await
    }

    /// [`Runtime::delegate`] in a step-by-step run: when the idp asks for the user's approval,
    /// `stepper` pauses (`approval`, with what the user's device shows) before the task waits.
    pub async fn delegate_with(
        &self,
        task: &TaskHandle,
        audience: &str,
        details: &[AuthorizationDetail],
        stepper: &Stepper,
    ) -> Result<Exchanged, AgentError> {
        let claims = task.principal().claims.clone();
        let started = Instant::now();
        let summary = rar::summarize(details);
        let who = claims.email.clone().unwrap_or_else(|| "the user".into());
        let mut waited = None;
        let result = match self
            .exchange
            .exchange(&task.principal().token, audience, details)
            .await
        {
            Err(ExchangeError::Pending(p)) => {
                let code = p.binding_code.clone().unwrap_or_default();
                // The chain the device names: this agent, then whoever it acts for.
                let mut chain = vec![self.name.clone()];
                chain.extend(claims.chain_names());
                stepper
                    .pause(
                        "approval",
                        format!("The identity provider asks {who} to approve on their device: {summary} (code {code})"),
                        json!({"summary": summary, "binding_code": p.binding_code, "chain": chain, "approval_id": p.approval_id}),
                    )
                    .await;
                task.auth_required(
                    format!("Waiting for {who} to approve on their device: {summary} (code {code})"),
                    json!({"approval_id": p.approval_id, "binding_code": p.binding_code, "summary": summary}),
                );
                waited = p.approval_id.clone();
                self.exchange.wait(p).await
            }
            other => other,
        };
        if let Some(approval) = &waited {
            let mut e = self.event_for("approval_wait", Outcome::Pending, &claims);
            e.approval_id = Some(approval.clone());
            e.rar_summary = Some(summary.clone());
            e.fingerprint = Some(rar::fingerprint(details));
            self.emit(e.timed(started)).await;
        }
        let mut e = self.event_for("token_exchange", Outcome::Allowed, &claims);
        e.rar_summary = Some(summary.clone());
        e.fingerprint = Some(rar::fingerprint(details));
        e.tool = details
            .iter()
            .find(|d| !d.is_resource_access())
            .and_then(|d| d.action())
            .map(str::to_owned);
        e.approval_id = waited.clone();
        match result {
            Ok(t) => {
                let issued = crate::jwt::decode_unverified(&t.access_token)
                    .ok()
                    .and_then(|(_, c)| c.get("jti").and_then(|j| j.as_str()).map(str::to_owned));
                e.jti = issued;
                e.outcome = if waited.is_some() {
                    Outcome::Approved
                } else {
                    Outcome::Allowed
                };
                self.emit(e.timed(started)).await;
                if waited.is_some() {
                    task.working(format!("Approved: {summary}"));
                }
                Ok(t)
            }
            Err(err) => {
                e.outcome = Outcome::Denied;
                let (reason, rejected) = match &err {
                    ExchangeError::Refused { error, description } if error == "access_denied" => {
                        (description.clone(), true)
                    }
                    ExchangeError::Refused { error, description } => {
                        (format!("{error}: {description}"), true)
                    }
                    ExchangeError::Pending(_) => ("the approval request expired".to_owned(), true),
                    ExchangeError::Transport(t) => (t.clone(), false),
                };
                e.reason = Some(reason.clone());
                self.emit(e.timed(started)).await;
                Err(if rejected {
                    AgentError::Rejected(format!("The identity provider refused: {reason}"))
                } else {
                    AgentError::Failed(format!(
                        "The identity provider could not be reached: {reason}"
                    ))
                })
            }
        }
    }
}
