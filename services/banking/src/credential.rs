//! One operation under one credential: the part of every skill that is the same, and the part a
//! fork keeps as it is.
//!
//! 1. hop 2: the token we were given (T1) is exchanged for T2, addressed to the credential
//!    issuer, carrying the business RAR plus read access to one creds path; the user approves
//!    on their phone if the policy says so, while the task shows `TASK_STATE_AUTH_REQUIRED`;
//! 2. T2 logs in to the issuer, which mints a Postgres role for this one operation;
//! 3. the SQL runs as that role, on its own connection;
//! 4. the lease is revoked right after the SQL, whether it succeeded or not (and, should the
//!    task be canceled half-way, when its future is dropped).
//!
//! Each step writes one security event to this agent's own `banking.events`. In a step-by-step
//! run (presenter mode) it pauses before each of them, showing what it is about to do: the
//! exchange, the approval (in `kit`'s `delegate_with`), the issuance and the revocation; the
//! skill pauses before its own SQL.

use std::{sync::Arc, time::Instant};

use kit::{
    a2a::server::{AgentError, TaskHandle},
    agent::{Runtime, Stepper},
    events::{Outcome, SecurityEvent},
    rar::{self, AuthorizationDetail},
};
use serde_json::{Value, json};
use tokio_postgres::NoTls;

use crate::{
    ledger::LedgerError,
    vault::{self, Credential, Issuer, VaultError},
};

/// The audience of hop 2: the credential issuer (`VR_AUDIENCE`).
pub const ISSUER_AUDIENCE: &str = "verify-rar";

/// `verify-rar/creds/<role>`: where the issuer hands out `role`'s credentials.
fn creds_path(role: &str) -> String {
    format!("{}/creds/{role}", vault::CREDS_MOUNT)
}

/// What hop 2 asks for: exactly the business operation, and read access to one creds path.
pub(crate) fn hop_details(business: &AuthorizationDetail, role: &str) -> [AuthorizationDetail; 2] {
    [
        business.clone(),
        AuthorizationDetail::vault_read(&creds_path(role)),
    ]
}

/// Obtains per-operation credentials and runs SQL under them.
#[derive(Debug, Clone)]
pub struct Credentials {
    rt: Runtime,
    issuer: Issuer,
    /// Postgres as the ledger's ephemeral users reach it: `DATABASE_URL`'s host, port and
    /// database; user and password come from each credential.
    ledger: tokio_postgres::Config,
}

/// What a credential was, for the reply and the audit join.
#[derive(Debug, Clone)]
pub struct Used {
    pub pg_user: String,
    /// T2's `jti`: the ledger's `audit_jti`, the issuer's lease, the idp's issuance.
    pub jti: Option<String>,
}

impl Credentials {
    pub fn new(rt: Runtime, issuer: Issuer, database_url: &str) -> anyhow::Result<Self> {
        let mut ledger: tokio_postgres::Config = database_url.parse()?;
        ledger
            .application_name(crate::agent::NAME)
            .connect_timeout(std::time::Duration::from_secs(5));
        Ok(Self { rt, issuer, ledger })
    }

    /// Runs `sql` as a Postgres role minted for exactly `business`, from
    /// `verify-rar/creds/<role>`: steps 1–4 above, pausing before each when `stepper` is on. A
    /// refusal anywhere (the idp, the user, the issuer, the ledger) is `AgentError::Rejected`
    /// with its reason; a broken peer is `Failed`.
    pub async fn with_credential<T>(
        &self,
        task: &TaskHandle,
        stepper: &Stepper,
        business: &AuthorizationDetail,
        role: &str,
        sql: impl AsyncFnOnce(&mut tokio_postgres::Client) -> Result<T, LedgerError>,
    ) -> Result<(T, Used), AgentError> {
        self.with_credential_kept(task, stepper, business, role, sql)
            .await
            .map(|(value, used, _)| (value, used))
    }

    /// [`Credentials::with_credential`], also handing back the (revoked) credential itself:
    /// only the `use_after_revocation` attack toggle wants it, to show it is dead.
    pub(crate) async fn with_credential_kept<T>(
        &self,
        task: &TaskHandle,
        stepper: &Stepper,
        business: &AuthorizationDetail,
        role: &str,
        sql: impl AsyncFnOnce(&mut tokio_postgres::Client) -> Result<T, LedgerError>,
    ) -> Result<(T, Used, Credential), AgentError> {
        let creds_path = creds_path(role);
        let details = hop_details(business, role);
        stepper
            .pause(
                "exchange",
                format!(
                    "Banking trades the token it was given for one addressed to the credential issuer, carrying exactly: {}, and read access to {creds_path}",
                    business.summary()
                ),
                json!(details),
            )
            .await;
        let t2 = self
            .rt
            .delegate_with(task, ISSUER_AUDIENCE, &details, stepper)
            .await?;
        let t2_claims = kit::jwt::decode_unverified(&t2.access_token)
            .map(|(_, c)| c)
            .unwrap_or_default();
        let jti = t2_claims
            .get("jti")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let event = |kind: &str, outcome: Outcome| {
            let mut e = self.rt.event_for(kind, outcome, &task.principal().claims);
            e.tool = business.action().map(str::to_owned);
            e.rar_summary = Some(business.summary());
            e.fingerprint = Some(rar::fingerprint(&details));
            e.jti = jti.clone();
            e
        };

        stepper
            .pause(
                "issuance",
                format!(
                    "Banking logs in to the credential issuer with that token and asks {creds_path} for a Postgres role that exists for this one operation"
                ),
                json!({
                    "login": format!("POST /v1/auth/{}/login", vault::JWT_MOUNT),
                    "creds": format!("GET /v1/{creds_path}"),
                    "role": role,
                    "token": t2_claims,
                }),
            )
            .await;
        task.working(format!(
            "Logging in to the credential issuer for: {}",
            business.summary()
        ));
        let started = Instant::now();
        let session = match self.issuer.login(&t2.access_token).await {
            Ok(s) => {
                self.rt
                    .emit(event("vault_login", Outcome::Allowed).timed(started))
                    .await;
                Arc::new(s)
            }
            Err(e) => {
                return Err(self
                    .vault_refusal(
                        event("vault_login", Outcome::Denied).timed(started),
                        "refused the login",
                        e,
                    )
                    .await);
            }
        };

        let started = Instant::now();
        let credential = match session.creds(role).await {
            Ok(c) => c,
            Err(e) => {
                return Err(self
                    .vault_refusal(
                        event("credential_issued", Outcome::Denied).timed(started),
                        "issued no credential",
                        e,
                    )
                    .await);
            }
        };
        let lease = LeaseGuard {
            session: session.clone(),
            lease_id: Some(credential.lease_id.clone()),
        };
        let mut e = event("credential_issued", Outcome::Allowed).timed(started);
        e.pg_user = Some(credential.username.clone());
        e.lease = Some(credential.lease_id.clone());
        self.rt.emit(e).await;

        task.working(format!(
            "Running the ledger operation as {}",
            credential.username
        ));
        let started = Instant::now();
        let outcome = match self.connect(&credential).await {
            Ok(mut db) => sql(&mut db).await,
            Err(e) => Err(LedgerError::Database(e)),
        };
        // The connection is closed here (dropped with `db`), before its role is dropped.
        let mut e = event("sql_executed", Outcome::Allowed).timed(started);
        e.pg_user = Some(credential.username.clone());
        e.lease = Some(credential.lease_id.clone());
        if let Err(err) = &outcome {
            e.outcome = if matches!(err, LedgerError::Database(_)) {
                Outcome::Error
            } else {
                Outcome::Denied
            };
            e.reason = Some(err.to_string());
        }
        self.rt.emit(e).await;

        stepper
            .pause(
                "revocation",
                format!(
                    "Banking revokes lease {}: the issuer ends the role's sessions and drops {}",
                    credential.lease_id, credential.username
                ),
                json!({"lease_id": credential.lease_id, "pg_user": credential.username}),
            )
            .await;
        let started = Instant::now();
        let revoked = lease.revoke().await;
        let mut e = event("lease_revoked", Outcome::Info).timed(started);
        e.pg_user = Some(credential.username.clone());
        e.lease = Some(credential.lease_id.clone());
        if let Err(err) = &revoked {
            // The issuer's reaper drops it at the latest when its TTL ends.
            tracing::error!(lease = %credential.lease_id, error = %err, "could not revoke a lease");
            e.outcome = Outcome::Error;
            e.reason = Some(err.to_string());
        }
        self.rt.emit(e).await;

        let value = outcome.map_err(|err| match err {
            LedgerError::Database(e) => {
                tracing::error!(error = %e, "ledger operation failed");
                AgentError::Failed(
                    "The ledger operation failed with a database error; the agent's log has the cause."
                        .into(),
                )
            }
            refused => AgentError::Rejected(format!("The ledger refused: {refused}.")),
        })?;
        Ok((
            value,
            Used {
                pg_user: credential.username.clone(),
                jti,
            },
            credential,
        ))
    }

    /// The agent runtime this obtains credentials for.
    pub(crate) fn runtime(&self) -> &Runtime {
        &self.rt
    }

    /// The credential issuer this agent logs in to.
    pub(crate) fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// Connects to the ledger as the credential's user (real password authentication).
    pub(crate) async fn connect(
        &self,
        credential: &Credential,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let mut cfg = self.ledger.clone();
        cfg.user(&credential.username)
            .password(&credential.password);
        let (client, connection) = cfg.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "ledger connection ended");
            }
        });
        Ok(client)
    }

    /// Records an issuer refusal and turns it into the task's answer.
    async fn vault_refusal(
        &self,
        mut event: SecurityEvent,
        what: &str,
        error: VaultError,
    ) -> AgentError {
        event.reason = Some(error.to_string());
        let rejected = matches!(error, VaultError::Refused(_));
        if !rejected {
            event.outcome = Outcome::Error;
        }
        self.rt.emit(event).await;
        if rejected {
            AgentError::Rejected(format!("The credential issuer {what}: {error}."))
        } else {
            AgentError::Failed(format!("{error}."))
        }
    }
}

/// Revokes its lease when dropped unrevoked: a canceled task (its future dropped mid-SQL) must
/// not leave a live credential behind until the issuer's TTL ends.
struct LeaseGuard {
    session: Arc<vault::Session>,
    lease_id: Option<String>,
}

impl LeaseGuard {
    async fn revoke(mut self) -> Result<(), VaultError> {
        match self.lease_id.take() {
            Some(id) => self.session.revoke(&id).await,
            None => Ok(()),
        }
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if let (Some(id), Ok(rt)) = (self.lease_id.take(), tokio::runtime::Handle::try_current()) {
            let session = self.session.clone();
            rt.spawn(async move {
                if let Err(e) = session.revoke(&id).await {
                    tracing::error!(lease = %id, error = %e, "could not revoke an abandoned lease");
                }
            });
        }
    }
}
