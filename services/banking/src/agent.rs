//! The banking specialist: its agent card, and what it does for one tool call.
//!
//! Every skill follows the same path, and only the SQL in the middle differs: the tool call's
//! arguments become the business RAR (`kit::rar` validates them), then
//! [`Credentials::with_credential`] obtains a credential for exactly that operation, runs the
//! skill's ledger call under it and revokes it; the reply says what happened in plain words.
//!
//! Presenter mode: when the caller asks for a step-by-step run (`metadata.step_mode` on the A2A
//! message), a transfer pauses before each hop until the user says "next" (`kit::agent::steps`);
//! reads and account opening run straight through.

use std::sync::Arc;

use kit::{
    a2a::{
        AgentCapabilities, AgentCard, AgentInterface, AgentProvider, AgentSkill, RPC_PATH,
        ToolCall, VERSION,
        server::{Agent, AgentError, Reply, TaskHandle},
    },
    agent::{Runtime, Stepper, Steps, attack::Toggles},
    events::Outcome,
    guard::GuardError,
    rar::{self, Amount, AuthorizationDetail, RarError},
};
use serde_json::{Map, Value, json};

use crate::{
    credential::Credentials,
    ledger::{self, Account, Transfer},
};

/// The agent's name: its key file, its schema, its SPIFFE id `spiffe://demo.local/agent/banking`.
pub const NAME: &str = "banking";

/// One skill on the card, and the issuer role whose credential performs it.
#[derive(Debug)]
struct Skill {
    id: &'static str,
    name: &'static str,
    description: &'static str,
    example: &'static str,
    /// `verify-rar/creds/<role>` (`infra/verify-rar/<role>.toml`).
    role: &'static str,
}

const SKILLS: &[Skill] = &[
    Skill {
        id: "get_balance",
        name: "Get balance",
        description: "Balance of one account (arguments {account?, owner?}), or of all the owner's accounts.",
        example: "What is my checking balance?",
        role: "banking-reader",
    },
    Skill {
        id: "list_accounts",
        name: "List accounts",
        description: "The owner's accounts with their kinds and balances (arguments {owner?}).",
        example: "Which accounts do I have?",
        role: "banking-reader",
    },
    Skill {
        id: "open_account",
        name: "Open account",
        description: "Opens a checking, savings or trading account (arguments {kind, owner?}).",
        example: "Open a trading account for me.",
        role: "banking-accounts",
    },
    Skill {
        id: "transfer_funds",
        name: "Transfer funds",
        description: "Moves money between two of the owner's accounts (arguments {amount {value, currency}, source, destination, owner?}).",
        example: "Transfer $1,000 from checking to savings.",
        role: "banking-transfers",
    },
];

/// The banking agent.
#[derive(Debug)]
pub struct Banking {
    rt: Runtime,
    credentials: Credentials,
    /// Step-by-step runs, served at `/steps/{task_id}`.
    steps: Arc<Steps>,
    /// The S6 attack toggles this agent takes (off unless configured).
    attacks: Toggles,
}

impl Banking {
    pub fn new(rt: Runtime, credentials: Credentials, steps: Arc<Steps>, attacks: Toggles) -> Self {
        Self {
            rt,
            credentials,
            steps,
            attacks,
        }
    }

    async fn dispatch(&self, call: &ToolCall, task: &TaskHandle) -> Result<Reply, AgentError> {
        let skill = SKILLS.iter().find(|s| s.id == call.skill).ok_or_else(|| {
            AgentError::Rejected(format!("This agent has no skill {}.", call.skill))
        })?;
        let business = business_rar(skill.id, &call.arguments).map_err(|e| {
            AgentError::Rejected(format!("The arguments of {} are not valid: {e}.", skill.id))
        })?;
        let attack = self.attacks.for_task(task)?;
        let asked = kit::agent::steps::requested(task);
        let stepper = Stepper::new(&self.steps, task, asked && skill.id == "transfer_funds");
        let claims = &task.principal().claims;
        // Whose ledger: the RAR's owner, else the signed-in user (what the issuer's grant says).
        let owner = business
            .field("owner")
            .map(str::to_owned)
            .or_else(|| claims.email.clone())
            .unwrap_or_else(|| claims.sub.clone())
            .to_ascii_lowercase();

        match skill.id {
            "transfer_funds" => {
                let amount = business.amount().ok_or_else(|| {
                    AgentError::Failed("the validated transfer has no amount".into())
                })?;
                let (source, destination) = (
                    business.field("source").unwrap_or_default(),
                    business.field("destination").unwrap_or_default(),
                );
                let transfer = Transfer {
                    owner: &owner,
                    source,
                    destination,
                    amount_cents: amount.cents,
                };
                if let Some(attack) = attack {
                    return crate::attack::transfer(
                        &self.credentials,
                        task,
                        &stepper,
                        attack,
                        &business,
                        &transfer,
                        skill.role,
                    )
                    .await;
                }
                let ((receipt, balances), _) = self
                    .credentials
                    .with_credential(task, &stepper, &business, skill.role, async |db| {
                        stepper
                            .pause(
                                "sql",
                                "Banking runs the transfer as the one-transaction role: debit, credit and audit row in one transaction, then reads the balances",
                                transfer_statements(&transfer),
                            )
                            .await;
                        // The transaction is exactly three statements; the balances are read
                        // after it commits, with the same (read-only by then) credential.
                        let receipt = ledger::transfer(db, &transfer).await?;
                        Ok((receipt, ledger::balances(&*db).await?))
                    })
                    .await?;
                Ok(Reply {
                    text: format!(
                        "Transferred {} from {source} to {destination}.",
                        amount.display()
                    ),
                    data: Some(json!({
                        "balances": balances,
                        "transaction_id": receipt.transaction_id,
                        "pg_user": receipt.pg_user,
                        "jti": receipt.jti,
                        "grant_id": receipt.grant_id,
                        "rar_fingerprint": receipt.rar_fingerprint,
                    })),
                })
            }
            "open_account" => {
                let kind = business.field("kind").unwrap_or_default().to_owned();
                let (account, used) = self
                    .credentials
                    .with_credential(task, &stepper, &business, skill.role, async |db| {
                        ledger::open_account(&*db, &kind).await
                    })
                    .await?;
                Ok(Reply {
                    text: format!(
                        "Opened a {} account named {} for {}.",
                        account.kind, account.name, account.owner
                    ),
                    data: Some(
                        json!({"account": account, "pg_user": used.pg_user, "jti": used.jti}),
                    ),
                })
            }
            "get_balance" => {
                let (balances, used) = self
                    .credentials
                    .with_credential(task, &stepper, &business, skill.role, async |db| {
                        ledger::balances(&*db).await
                    })
                    .await?;
                let text = match business.field("account") {
                    Some(name) => {
                        let account =
                            balances.iter().find(|a| a.name == name).ok_or_else(|| {
                                AgentError::Rejected(format!(
                                    "{owner} has no account named {name}."
                                ))
                            })?;
                        format!("The balance of {name} is {}.", money(account))
                    }
                    None => format!("Balances of {owner}: {}.", listing(&balances)),
                };
                Ok(Reply {
                    text,
                    data: Some(
                        json!({"balances": balances, "pg_user": used.pg_user, "jti": used.jti}),
                    ),
                })
            }
            _ => {
                let (accounts, used) = self
                    .credentials
                    .with_credential(task, &stepper, &business, skill.role, async |db| {
                        ledger::balances(&*db).await
                    })
                    .await?;
                let text = match accounts.len() {
                    0 => format!("{owner} has no accounts."),
                    n => format!(
                        "{owner} has {n} account{}: {}.",
                        if n == 1 { "" } else { "s" },
                        listing(&accounts)
                    ),
                };
                Ok(Reply {
                    text,
                    data: Some(
                        json!({"accounts": accounts, "pg_user": used.pg_user, "jti": used.jti}),
                    ),
                })
            }
        }
    }
}

impl Agent for Banking {
    fn card(&self, base_url: &str) -> AgentCard {
        let base = base_url.trim_end_matches('/');
        AgentCard {
            name: "Banking".into(),
            description: "Balances, accounts and transfers in the ledger. Every operation runs under a Postgres role \
                          minted for it alone from the delegated token, and dropped right after."
                .into(),
            version: env!("CARGO_PKG_VERSION").into(),
            supported_interfaces: vec![AgentInterface { url: format!("{base}{RPC_PATH}"), protocol_binding: "JSONRPC".into(), protocol_version: VERSION.into() }],
            provider: Some(AgentProvider { organization: "Per-transaction authority reference platform".into(), url: base.to_owned() }),
            capabilities: AgentCapabilities { streaming: Some(true), push_notifications: Some(false), extended_agent_card: Some(false), extensions: vec![kit::rar::tool_schemas_extension(kit::rar::BANKING)] },
            security_schemes: [(
                "bearer".to_owned(),
                json!({"httpAuthSecurityScheme": {
                    "scheme": "Bearer",
                    "bearerFormat": "JWT",
                    "description": "A delegated token from the idp addressed to spiffe://demo.local/agent/banking"
                }}),
            )]
            .into(),
            security_requirements: vec![json!({"schemes": {"bearer": {"list": []}}})],
            default_input_modes: vec!["text/plain".into(), "application/json".into()],
            default_output_modes: vec!["text/plain".into(), "application/json".into()],
            skills: SKILLS
                .iter()
                .map(|s| AgentSkill {
                    id: s.id.into(),
                    name: s.name.into(),
                    description: s.description.into(),
                    tags: vec!["banking".into(), s.id.replace('_', "-")],
                    examples: vec![s.example.into()],
                })
                .collect(),
        }
    }

    async fn run(&self, call: ToolCall, task: TaskHandle) -> Result<Reply, AgentError> {
        let result = self.dispatch(&call, &task).await;
        if let Err(err) = &result {
            let (kind, outcome) = match err {
                AgentError::Rejected(_) => ("tool_refused", Outcome::Denied),
                AgentError::Failed(_) => ("tool_failed", Outcome::Error),
            };
            let mut e = self.rt.event_for(kind, outcome, &task.principal().claims);
            e.tool = Some(call.skill.clone());
            e.reason = Some(err.to_string());
            self.rt.emit(e).await;
        }
        result
    }

    async fn refused(&self, error: &GuardError, method: &str) {
        self.rt.refused(error, method).await;
    }
}

/// The business RAR of a tool call: its arguments are exactly the `operationDetails` fields of
/// the action (without `action`, which the skill names). The catalogue validates and
/// normalizes them (emails lower-cased, amounts as `"1000.00"`).
pub fn business_rar(skill: &str, arguments: &Value) -> Result<AuthorizationDetail, RarError> {
    let mut fields = match arguments {
        Value::Null => Map::new(),
        Value::Object(m) => m.clone(),
        _ => return Err(RarError::Invalid("arguments must be a JSON object".into())),
    };
    if fields.contains_key("action") {
        return Err(RarError::Invalid(
            "arguments must not contain action; the skill names it".into(),
        ));
    }
    fields.insert("action".into(), Value::String(skill.into()));
    AuthorizationDetail {
        kind: rar::BANKING.into(),
        locations: None,
        actions: None,
        identifier: None,
        operation_details: Some(fields),
    }
    .validated()
}

/// The statements [`ledger::transfer`] and [`ledger::balances`] run, with their parameters, as
/// the presenter sees them before they run.
fn transfer_statements(t: &Transfer<'_>) -> Value {
    use ledger::{AUDIT_SQL, BALANCES_SQL, LEG_SQL};
    let [(first, first_cents), (second, second_cents)] = ledger::legs(t);
    json!([
        {"sql": "BEGIN", "params": []},
        {"sql": LEG_SQL, "params": [t.owner, first, first_cents]},
        {"sql": LEG_SQL, "params": [t.owner, second, second_cents]},
        {"sql": AUDIT_SQL, "params": [t.owner, t.source, t.destination, t.amount_cents]},
        {"sql": "COMMIT", "params": []},
        {"sql": BALANCES_SQL, "params": []},
    ])
}

fn money(a: &Account) -> String {
    let currency = a.currency.as_bytes().try_into().unwrap_or(*b"USD");
    Amount {
        cents: a.balance_cents,
        currency,
    }
    .display()
}

fn listing(accounts: &[Account]) -> String {
    accounts
        .iter()
        .map(|a| format!("{} {}", a.name, money(a)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_the_operation_details_of_the_skill() {
        let d = business_rar("transfer_funds", &json!({"amount": {"value": "1000", "currency": "USD"}, "source": "checking", "destination": "savings"})).unwrap();
        assert_eq!(d.action(), Some("transfer_funds"));
        assert_eq!(d.amount().unwrap().cents, 100_000);
        assert_eq!(d.summary(), "Transfer $1,000.00 from checking to savings");
        assert_eq!(
            business_rar("list_accounts", &Value::Null)
                .unwrap()
                .action(),
            Some("list_accounts")
        );
    }

    #[test]
    fn arguments_outside_the_catalogue_are_refused() {
        assert!(business_rar("get_balance", &json!({"account": "checking", "note": "x"})).is_err());
        assert!(business_rar("get_balance", &json!({"action": "transfer_funds"})).is_err());
        assert!(business_rar("open_account", &json!({})).is_err());
        assert!(business_rar("transfer_funds", &json!({"amount": {"value": "-5", "currency": "USD"}, "source": "a", "destination": "b"})).is_err());
        assert!(business_rar("get_balance", &json!(["checking"])).is_err());
    }

    #[test]
    fn the_statements_shown_carry_the_transfers_parameters() {
        let t = Transfer {
            owner: "alice@example.com",
            source: "checking",
            destination: "savings",
            amount_cents: 100_000,
        };
        let shown = transfer_statements(&t);
        assert_eq!(
            shown[1]["params"],
            json!(["alice@example.com", "checking", -100_000]),
            "the debit"
        );
        assert_eq!(
            shown[2]["params"],
            json!(["alice@example.com", "savings", 100_000]),
            "the credit"
        );
        assert_eq!(shown[3]["sql"], ledger::AUDIT_SQL);
        // The other way round, the legs run (and are shown) in account-name order.
        let back = transfer_statements(&Transfer {
            source: "savings",
            destination: "checking",
            ..t
        });
        assert_eq!(
            back[1]["params"],
            json!(["alice@example.com", "checking", 100_000]),
            "the credit first"
        );
    }

    #[test]
    fn every_skill_is_a_catalogue_action() {
        for s in SKILLS {
            assert!(rar::actions_of(rar::BANKING).contains(&s.id), "{}", s.id);
        }
    }
}
