//! The banking agent compromised (S6): a transfer run switched by an attack toggle
//! (`kit::agent::attack`) tries to misuse its authority, for real, and is refused outside the
//! agent: by the idp (a wider or forged hop 2), the credential issuer (a token for another
//! audience), or Postgres (the credential used beyond its one operation). Nothing here is part
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
        attack::{self, Attack, Forgery},
    },
    exchange::{ExchangeError, Exchanged},
    rar::AuthorizationDetail,
};
use serde_json::{Value, json};

use crate::{
    credential::{Credentials, ISSUER_AUDIENCE},
    ledger::{self, LedgerError, Transfer},
    vault::{self, VaultError},
};

/// Who the `other_account` toggle tries to rob.
const OTHER_OWNER: &str = "bob@example.com";

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
    let creds_path = format!("{}/creds/{role}", vault::CREDS_MOUNT);
    let honest = [
        business.clone(),
        AuthorizationDetail::vault_read(&creds_path),
    ];
    let t1 = task.principal().token.clone();
    let exchange = &rt.exchange;
    match attack {
        Attack::WidenAmount => {
            let cents = transfer.amount_cents.saturating_mul(10);
            let wider = with_field(
                business,
                "amount",
                json!({"value": format!("{}.{:02}", cents / 100, cents % 100), "currency": "USD"}),
            )?;
            rt.attempting(task, attack, &wider.summary()).await;
            let asked = [wider, honest[1].clone()];
            hop_two(
                rt,
                task,
                attack,
                exchange.exchange(&t1, ISSUER_AUDIENCE, &asked).await,
            )
            .await
        }
        Attack::OtherAccount => {
            let other = with_field(business, "owner", json!(OTHER_OWNER))?;
            rt.attempting(task, attack, &other.summary()).await;
            let asked = [other, honest[1].clone()];
            hop_two(
                rt,
                task,
                attack,
                exchange.exchange(&t1, ISSUER_AUDIENCE, &asked).await,
            )
            .await
        }
        Attack::OtherTarget => {
            rt.attempting(task, attack, "audience scim").await;
            hop_two(
                rt,
                task,
                attack,
                exchange.exchange(&t1, "scim", &honest).await,
            )
            .await
        }
        Attack::ForgeAlgNone | Attack::ForgeHs256 | Attack::ForgeUnknownKid => {
            let forged = match attack {
                Attack::ForgeAlgNone => attack::forge(&t1, Forgery::AlgNone),
                Attack::ForgeHs256 => {
                    let (kid, public) = attack::idp_public_key(&rt.http, &exchange.issuer)
                        .await
                        .map_err(|e| {
                            AgentError::Failed(format!("could not read the idp's keys: {e:#}"))
                        })?;
                    attack::forge(
                        &t1,
                        Forgery::Hs256 {
                            key: public.as_bytes(),
                            kid: &kid,
                        },
                    )
                }
                _ => attack::forge(&t1, Forgery::UnknownKid(&rt.identity.key)),
            }
            .map_err(|e| AgentError::Failed(format!("could not forge the token: {e}")))?;
            rt.attempting(task, attack, "").await;
            hop_two(
                rt,
                task,
                attack,
                exchange.exchange(&forged, ISSUER_AUDIENCE, &honest).await,
            )
            .await
        }
        Attack::ForgeExpired => {
            let actor = attack::expired_actor_token(&rt.identity, &exchange.issuer)
                .map_err(|e| AgentError::Failed(format!("could not sign the actor token: {e}")))?;
            rt.attempting(task, attack, "").await;
            let result = exchange
                .exchange_with_actor(&t1, &actor, ISSUER_AUDIENCE, &honest)
                .await;
            hop_two(rt, task, attack, result).await
        }
        Attack::ForgeOtherAudience => {
            rt.attempting(task, attack, "").await;
            match credentials.issuer().login(&t1).await {
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
                Err(e) => Err(LedgerError::Refused(
                    e.as_db_error()
                        .map(|d| d.message().to_owned())
                        .unwrap_or_else(|| e.to_string()),
                )),
            };
            postgres_refusal(rt, task, attack, again, "The granted transfer ran once. ").await
        }
        Attack::SpliceActorToken | Attack::ReplayActorToken | Attack::InjectedInstruction => {
            Err(AgentError::Rejected(format!(
                "{attack} is the concierge's toggle, not banking's."
            )))
        }
    }
}

/// `detail` with one `operationDetails` field replaced (not validated against T1: that is
/// the idp's job, and the point).
fn with_field(
    detail: &AuthorizationDetail,
    key: &str,
    value: Value,
) -> Result<AuthorizationDetail, AgentError> {
    let mut d = detail.clone();
    d.operation_details
        .get_or_insert_with(Default::default)
        .insert(key.to_owned(), value);
    d.validated()
        .map_err(|e| AgentError::Failed(format!("could not phrase the wider request: {e}")))
}

/// The idp's answer to a misbehaving hop 2: its refusal becomes the task's (the idp wrote its
/// own event naming the rule; banking's `token_exchange` event repeats the reason).
async fn hop_two(
    rt: &Runtime,
    task: &TaskHandle,
    attack: Attack,
    result: Result<Exchanged, ExchangeError>,
) -> Result<Reply, AgentError> {
    match result {
        Err(ExchangeError::Refused { error, description }) => Err(rt
            .refused_by(
                task,
                "token_exchange",
                attack,
                format!("idp: {error}: {description}"),
            )
            .await),
        Err(ExchangeError::Transport(e)) => Err(AgentError::Failed(e)),
        Err(ExchangeError::Pending(_)) => {
            Err(not_refused(attack, "the idp asked the user to approve"))
        }
        Ok(_) => Err(not_refused(attack, "the idp issued a token")),
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

/// A misbehaviour that went through: a platform bug, never a success.
fn not_refused(attack: Attack, what: &str) -> AgentError {
    tracing::error!(%attack, what, "an attack toggle was not refused");
    AgentError::Failed(format!(
        "Attack toggle {attack} was NOT refused ({what}): this is a platform bug."
    ))
}
