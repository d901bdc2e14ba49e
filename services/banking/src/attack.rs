//! The banking agent compromised (S6): a transfer run switched by an attack toggle
//! (`kit::agent::attack`) tries to misuse its authority, for real, and is refused outside the
//! agent: by the idp (a wider or forged hop 2, `kit`'s `Runtime::misbehave_at_hop`, the same for
//! every specialist), the credential issuer (a token for another audience), or Postgres (the
//! credential used beyond its one operation). Nothing here is part
//! of the template: a fork deletes this file and the one line of `agent.rs` that calls it.
//!
//! Every attempt is marked on the timeline first (`attack_attempt`); the refusal is the
//! refuser's own event (the idp's `token_exchange` denied, verify-rar's `login_denied`) or,
//! for Postgres, which writes no events, the agent's report of Postgres's words
//! (`credential_misuse`, denied). A toggle that were *not* refused would fail the task, never
//! complete it.

use kit::{
    a2a::server::{AgentError, Reply, TaskHandle},
    agent::{
        Runtime, Stepper,
        attack::{Attack, not_refused},
    },
    rar::AuthorizationDetail,
};

use crate::{
    credential::{Credentials, ISSUER_AUDIENCE, hop_details},
    ledger::{self, LedgerError, Transfer},
    vault::VaultError,
};

/// Runs `transfer` (already validated as `business`) the way `attack` misbehaves.
pub async fn transfer(
    credentials: &Credentials,
    task: &TaskHandle,
    stepper: &Stepper,
    attack: Attack,
    business: &AuthorizationDetail,
    transfer: &Transfer<'_>,
    role: &str,
) -> Result<Reply, AgentError> {
    let rt = credentials.runtime();
    let honest = hop_details(business, role);
    // Hop 2 asking for more, or with a forged token: the same for every specialist (`kit`).
    if let Some(refused) = rt
        .misbehave_at_hop(task, attack, ISSUER_AUDIENCE, &honest)
        .await
    {
        return Err(refused);
    }
    match attack {
        Attack::ForgeOtherAudience => {
            rt.attempting(task, attack, "").await;
            let t1 = &task.principal().token;
            match credentials.issuer().login(t1).await {
                Err(VaultError::Refused(why)) => Err(rt
                    .refused_by(task, "vault_login", attack, format!("verify-rar: {why}"))
                    .await),
                Err(e) => Err(AgentError::Failed(e.to_string())),
                Ok(_) => Err(not_refused(attack, "verify-rar logged in with T1")),
            }
        }
        Attack::ReuseOtherAmount => {
            let larger = Transfer {
                amount_cents: transfer.amount_cents.saturating_mul(10),
                ..transfer.clone()
            };
            let detail = format!(
                "{} cents instead of {}",
                larger.amount_cents, transfer.amount_cents
            );
            let (tried, _) = credentials
                .with_credential(task, stepper, business, role, async |db| {
                    rt.attempting(task, attack, &detail).await;
                    Ok(ledger::transfer(db, &larger).await)
                })
                .await?;
            postgres_refusal(rt, task, attack, tried.map(|_| ()), "").await
        }
        Attack::ReuseTwice => {
            let (second, _) = credentials
                .with_credential(task, stepper, business, role, async |db| {
                    ledger::transfer(db, transfer).await?;
                    rt.attempting(task, attack, "after the granted transfer")
                        .await;
                    Ok(ledger::transfer(db, transfer).await)
                })
                .await?;
            postgres_refusal(
                rt,
                task,
                attack,
                second.map(|_| ()),
                "The granted transfer ran once. ",
            )
            .await
        }
        Attack::UseAfterRevocation => {
            let (_, used, credential) = credentials
                .with_credential_kept(task, stepper, business, role, async |db| {
                    ledger::transfer(db, transfer).await
                })
                .await?;
            rt.attempting(task, attack, &used.pg_user).await;
            let again = match credentials.connect(&credential).await {
                Ok(mut db) => ledger::transfer(&mut db, transfer).await.map(|_| ()),
                // Postgres answering (the role is gone) is its refusal; anything else broke.
                Err(e) => Err(match e.as_db_error() {
                    Some(db) => LedgerError::Refused(db.message().to_owned()),
                    None => LedgerError::Database(e),
                }),
            };
            postgres_refusal(rt, task, attack, again, "The granted transfer ran once. ").await
        }
        other => Err(AgentError::Rejected(format!(
            "{other} is not a toggle banking performs."
        ))),
    }
}

/// Postgres's answer to a credential used beyond its operation.
async fn postgres_refusal(
    rt: &Runtime,
    task: &TaskHandle,
    attack: Attack,
    tried: Result<(), LedgerError>,
    before: &str,
) -> Result<Reply, AgentError> {
    match tried {
        Err(LedgerError::Refused(why)) => Err(rt
            .refused_by(
                task,
                "credential_misuse",
                attack,
                format!("{before}postgres: {why}"),
            )
            .await),
        Err(other) => Err(AgentError::Failed(format!("{before}{other}"))),
        Ok(()) => Err(not_refused(attack, "Postgres ran it")),
    }
}
