//! S6, the compromised agent, end to end: every attack toggle (`kit::agent::attack`) switched
//! on for one run against the real stack, each asserting that a component outside the
//! misbehaving agent refused it, that the refusal is a security event naming the rule, and
//! that nothing changed beyond what the user approved (balances, ledger rows, the SCIM and
//! Graph stores, `pg_roles`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly where it stands"
)]

use std::collections::HashSet;

use e2e::{Platform, User};
use kit::{
    a2a::{Message, Part, Role, TaskState},
    agent::attack::Attack,
};
use serde_json::{Value, json};

const TRANSFER: &str = "Transfer $1,000 from checking to savings.";
const ALICE: &str = "alice@example.com";
const DEACTIVATE: &str = "Deactivate bob@example.com";
const ENTRA_CREATE: &str = "Create sarah.smith@example.com in Entra";

/// What one toggle must come to.
struct Expect {
    attack: Attack,
    /// The agent switched (a hop-2 toggle can be any specialist's).
    agent: &'static str,
    sentence: &'static str,
    /// The user approves the honest hop 2 first (the misuse comes after the approval).
    approve: bool,
    /// The schema whose events hold the refusal, and the start of its reason.
    refused_in: &'static str,
    reason: &'static str,
    /// The granted transfer itself ran (exactly once).
    transferred: bool,
}

fn expect(attack: Attack, refused_in: &'static str, reason: &'static str) -> Expect {
    Expect {
        attack,
        agent: attack.agent(),
        sentence: TRANSFER,
        approve: false,
        refused_in,
        reason,
        transferred: false,
    }
}

fn cases() -> Vec<Expect> {
    vec![
        expect(
            Attack::WidenAmount,
            "idp",
            "rar_widened: amount $10,000.00 exceeds",
        ),
        expect(Attack::OtherAccount, "idp", "rar_widened: owner differs"),
        expect(Attack::OtherTarget, "idp", "audience_not_allowed"),
        expect(
            Attack::ForgeAlgNone,
            "idp",
            "token_invalid: subject_token: token algorithm none is not allowed",
        ),
        expect(
            Attack::ForgeHs256,
            "idp",
            "token_invalid: subject_token: token algorithm HS256 is not allowed",
        ),
        expect(
            Attack::ForgeUnknownKid,
            "idp",
            "token_invalid: subject_token: token signed with an unknown key",
        ),
        expect(
            Attack::ForgeExpired,
            "idp",
            "token_invalid: actor_token: token has expired",
        ),
        expect(
            Attack::ForgeOtherAudience,
            "verify_rar",
            "token audience does not match verify-rar",
        ),
        Expect {
            approve: true,
            ..expect(
                Attack::ReuseOtherAmount,
                "banking",
                "postgres: this credential may only move",
            )
        },
        Expect {
            approve: true,
            transferred: true,
            ..expect(
                Attack::ReuseTwice,
                "banking",
                "The granted transfer ran once. postgres: the transfer grant was already used",
            )
        },
        Expect {
            approve: true,
            transferred: true,
            ..expect(
                Attack::UseAfterRevocation,
                "banking",
                "The granted transfer ran once. postgres: password authentication failed",
            )
        },
        expect(Attack::SpliceActorToken, "idp", "may_act_mismatch"),
        expect(Attack::ReplayActorToken, "idp", "actor_jti_replayed"),
        Expect {
            sentence: "What is my checking balance?",
            ..expect(Attack::InjectedInstruction, "idp", "policy_denied")
        },
        // The hop-2 toggles are the same code in every specialist (`kit`): a few through iam
        // and entra show they are switched there too, and refused the same way.
        Expect {
            agent: "iam",
            sentence: DEACTIVATE,
            ..expect(Attack::OtherAccount, "idp", "rar_widened: email differs")
        },
        Expect {
            agent: "iam",
            sentence: DEACTIVATE,
            ..expect(
                Attack::OtherTarget,
                "idp",
                "audience_not_allowed: agent iam may not request tokens for graph",
            )
        },
        Expect {
            agent: "iam",
            sentence: DEACTIVATE,
            ..expect(
                Attack::ForgeUnknownKid,
                "idp",
                "token_invalid: subject_token: token signed with an unknown key",
            )
        },
        Expect {
            agent: "entra",
            sentence: ENTRA_CREATE,
            ..expect(Attack::OtherAccount, "idp", "rar_widened: email differs")
        },
        Expect {
            agent: "entra",
            sentence: ENTRA_CREATE,
            ..expect(
                Attack::ForgeHs256,
                "idp",
                "token_invalid: subject_token: token algorithm HS256 is not allowed",
            )
        },
        Expect {
            agent: "entra",
            sentence: ENTRA_CREATE,
            ..expect(
                Attack::ForgeExpired,
                "idp",
                "token_invalid: actor_token: token has expired",
            )
        },
    ]
}

/// Everything an attack could have changed.
#[derive(Debug, PartialEq)]
struct State {
    accounts: String,
    transactions: i64,
    scim_users: String,
    graph_users: String,
    roles: i64,
}

async fn state(p: &Platform) -> State {
    let text = |sql: &'static str| async move {
        p.query(sql, &[]).await[0]
            .get::<_, Option<String>>(0)
            .unwrap_or_default()
    };
    State {
        accounts: text("SELECT string_agg(format('%s/%s=%s', owner, name, balance_cents), ' ' ORDER BY owner, name) FROM banking.accounts").await,
        transactions: p.query("SELECT count(*) FROM banking.transactions", &[]).await[0].get(0),
        scim_users: text("SELECT string_agg(u::text, ' ' ORDER BY u::text) FROM idp.users u").await,
        graph_users: text("SELECT string_agg(u::text, ' ' ORDER BY u::text) FROM graph.users u").await,
        roles: p.query("SELECT count(*) FROM pg_roles", &[]).await[0].get(0),
    }
}

const SCHEMAS: [&str; 6] = ["idp", "verify_rar", "banking", "concierge", "iam", "entra"];

async fn event_ids(p: &Platform) -> HashSet<String> {
    let mut ids = HashSet::new();
    for s in SCHEMAS {
        for e in p.service_events(s).await {
            ids.insert(e["id"].as_str().unwrap_or_default().to_owned());
        }
    }
    ids
}

/// The events written since `before`, with the schema each came from.
async fn new_events(p: &Platform, before: &HashSet<String>) -> Vec<(&'static str, Value)> {
    let mut out = vec![];
    for s in SCHEMAS {
        for e in p.service_events(s).await {
            if !before.contains(e["id"].as_str().unwrap_or_default()) {
                out.push((s, e));
            }
        }
    }
    out
}

/// The events in one line each, for a failure message.
fn summary(events: &[(&str, Value)]) -> Vec<String> {
    events
        .iter()
        .map(|(s, e)| format!("{s} {} {} {}", e["type"], e["outcome"], e["reason"]))
        .collect()
}

async fn run(p: &Platform, user: &User, case: &Expect) -> (TaskState, String) {
    let mut message = Message::new(Role::User, vec![Part::text(case.sentence)]);
    message.metadata = Some(json!({"attack": case.attack.id()}));
    let mut conv = p.ask_with(user, message).await;
    if case.approve {
        conv.wait_for(TaskState::AuthRequired).await;
        p.approve_next(user).await;
    }
    let (state, text, _) = conv.finish().await;
    (state, text)
}

#[tokio::test]
async fn every_attack_toggle_is_refused_outside_the_agent_and_changes_nothing() {
    let p = Platform::start().await;

    // A toggle that does not exist is refused before anything runs.
    let alice = p.sign_in(ALICE).await;
    let before = state(&p).await;
    let mut message = Message::new(Role::User, vec![Part::text(TRANSFER)]);
    message.metadata = Some(json!({"attack": "steal_everything"}));
    let (task_state, text, _) = p.ask_with(&alice, message).await.finish().await;
    assert_eq!(task_state, TaskState::Rejected, "{text}");
    assert!(text.contains("no attack toggle steal_everything"), "{text}");
    assert_eq!(state(&p).await, before);

    let mut report = vec![];
    for case in cases() {
        let attack = case.attack;
        // A fresh session for each: the anomaly rule ends a session after repeated refusals,
        // and each attack must be judged on its own.
        let alice = p.sign_in(ALICE).await;
        let before = state(&p).await;
        let seen = event_ids(&p).await;

        let (task_state, text) = run(&p, &alice, &case).await;
        let events = new_events(&p, &seen).await;

        // The misbehaving agent marked its attempt ...
        assert!(
            events.iter().any(|(s, e)| *s == case.agent
                && e["type"] == "attack_attempt"
                && e["tool"] == attack.id()),
            "{attack}: no attack_attempt event from {}: {:#?}",
            case.agent,
            summary(&events)
        );
        // ... and someone outside it refused, in a red event that names the rule.
        let refusal = events
            .iter()
            .find(|(s, e)| {
                *s == case.refused_in
                    && e["outcome"] == "denied"
                    && e["reason"]
                        .as_str()
                        .is_some_and(|r| r.contains(case.reason))
            })
            .unwrap_or_else(|| {
                panic!(
                    "{attack}: no denied event in {} whose reason contains {:?}: {:#?}",
                    case.refused_in,
                    case.reason,
                    summary(&events)
                )
            });
        assert!(
            !events.iter().any(|(_, e)| e["outcome"] == "error"),
            "{attack}: nothing broke on the way: {:#?}",
            summary(&events)
        );
        // The user is told it was refused, and why.
        assert!(
            text.contains("refused") || text.contains("never delegated"),
            "{attack}: {text}"
        );
        if attack != Attack::InjectedInstruction {
            assert_eq!(task_state, TaskState::Rejected, "{attack}: {text}");
        }

        // Nothing changed beyond what the user approved, and no role outlived its operation.
        let after = state(&p).await;
        assert!(
            p.leftover_roles().await.is_empty(),
            "{attack}: a leaked role"
        );
        if case.transferred {
            assert_eq!(
                after.transactions,
                before.transactions + 1,
                "{attack}: exactly once"
            );
            let b = p.balances(ALICE).await;
            assert_eq!(
                (
                    after.scim_users.as_str(),
                    after.graph_users.as_str(),
                    after.roles
                ),
                (
                    before.scim_users.as_str(),
                    before.graph_users.as_str(),
                    before.roles
                ),
                "{attack}"
            );
            assert_ne!(
                after.accounts, before.accounts,
                "{attack}: the approved transfer ran"
            );
            report.push(format!(
                "{attack}: transferred once, then refused: {} ({b:?})",
                refusal.1["reason"]
            ));
        } else {
            assert_eq!(after, before, "{attack}: state changed");
            report.push(format!(
                "{} {attack}: refused, nothing changed: {}",
                case.agent, refusal.1["reason"]
            ));
        }
    }
    println!("{}", report.join("\n"));
}
