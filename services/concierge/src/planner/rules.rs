//! The deterministic planner: the default. Offline and repeatable on stage. It understands the
//! scenario sentences and reasonable variations (amounts with or without `$` and commas, account
//! names, emails, several clauses joined by commas or "and", "her"/"it" referring back), plans
//! every call at once, and says plainly when it does not understand.

use kit::rar;
use serde_json::{Value, json};

use super::{Move, Outcome, Planner, Session, Specialist, Step, StepResult, Toolbox};

/// What the rules made of a sentence.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    Steps(Vec<Step>),
    /// Not understood: a plain answer for the user.
    Unclear(String),
}

/// The deterministic, offline planner.
#[derive(Debug, Default, Clone, Copy)]
pub struct RulePlanner;

const HELP: &str = "I can move money between your accounts (\"Transfer $1,000 from checking to savings\"), \
open accounts, read balances, and administer users in Verify and Entra (\"Onboard sarah.smith@example.com across Verify and Entra\", \
\"Deactivate bob@example.com\"). I did not understand that request, so I did nothing.";

/// Words a clause may use, normalized.
struct Clause {
    words: Vec<String>,
    emails: Vec<String>,
}

impl Clause {
    fn new(text: &str) -> Self {
        let lower = text.to_lowercase();
        let words: Vec<String> = lower
            .split(|c: char| c.is_whitespace())
            .map(|w| {
                w.trim_matches(|c: char| ",.;:!?()\"'".contains(c))
                    .to_owned()
            })
            .filter(|w| !w.is_empty())
            .collect();
        let emails = words
            .iter()
            .filter(|w| w.contains('@') && w.contains('.'))
            .cloned()
            .collect();
        Self { words, emails }
    }

    fn has(&self, w: &str) -> bool {
        self.words.iter().any(|x| x == w)
    }

    fn any(&self, ws: &[&str]) -> bool {
        ws.iter().any(|w| self.has(w))
    }

    /// The word after one of `preps`, skipping a possessive: "from checking", "into my savings",
    /// "from her checking".
    fn account_after(&self, preps: &[&str]) -> Option<String> {
        let at = self
            .words
            .iter()
            .position(|w| preps.contains(&w.as_str()))?;
        self.words[at + 1..]
            .iter()
            .find(|w| !matches!(w.as_str(), "her" | "his" | "my" | "their" | "the" | "our"))
            .cloned()
    }

    fn account_kind(&self) -> Option<&'static str> {
        ["checking", "savings", "trading"]
            .into_iter()
            .find(|k| self.has(k))
    }

    /// `$1,000`, `1000 dollars`, `$50.25`, `USD 20`.
    fn amount(&self) -> Option<String> {
        for (i, w) in self.words.iter().enumerate() {
            let candidate = if let Some(rest) = w.strip_prefix('$') {
                Some(rest.to_owned())
            } else if (w.chars().next().is_some_and(|c| c.is_ascii_digit())
                && self
                    .words
                    .get(i + 1)
                    .is_some_and(|n| matches!(n.as_str(), "dollars" | "usd" | "bucks")))
                || (i > 0 && self.words[i - 1] == "usd")
            {
                Some(w.clone())
            } else {
                None
            };
            if let Some(c) = candidate {
                let digits: String = c.chars().filter(|ch| *ch != ',').collect();
                if let Some(cents) = rar::parse_cents(&digits) {
                    return Some(format!("{}.{:02}", cents / 100, cents % 100));
                }
            }
        }
        None
    }
}

fn display_name(email: &str) -> String {
    let local = email.split('@').next().unwrap_or(email);
    local
        .split(['.', '_', '-'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Splits a sentence into clauses at ", and", ", then", "; " and ", ".
fn clauses(sentence: &str) -> Vec<String> {
    let mut s = sentence.trim().trim_end_matches(['.', '!', '?']).to_owned();
    for sep in [", and then ", ", and ", ", then ", " and then ", "; "] {
        s = s.replace(sep, "\u{1f}");
    }
    s = s.replace(", ", "\u{1f}");
    s.split('\u{1f}')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Planner for RulePlanner {
    fn name(&self) -> &'static str {
        "deterministic"
    }

    fn description(&self) -> String {
        "the deterministic planner (offline rules, the same plan for the same sentence)".into()
    }

    fn start(&self, sentence: &str, _tools: Toolbox) -> Box<dyn Session> {
        Box::new(RuleSession {
            plan: Some(self.plan(sentence)),
        })
    }
}

/// The rules plan everything up front: one [`Move::Call`] with every step, then an answer
/// built from how they ended.
struct RuleSession {
    plan: Option<Plan>,
}

impl Session for RuleSession {
    fn next(&mut self, outcomes: Vec<Outcome>) -> futures::future::BoxFuture<'_, Move> {
        let next = match self.plan.take() {
            Some(Plan::Steps(steps)) => Move::Call(steps),
            Some(Plan::Unclear(answer)) => Move::Unclear(answer),
            None => Move::Answer(answer(&outcomes)),
        };
        Box::pin(std::future::ready(next))
    }
}

/// One line per step, in the order they ran; the first that did not complete says why, and the
/// rest are counted as not attempted.
fn answer(outcomes: &[Outcome]) -> String {
    let mut lines: Vec<String> = outcomes
        .iter()
        .filter(|o| !matches!(o.result, StepResult::NotAttempted(_)))
        .map(super::line)
        .collect();
    let skipped = outcomes.len() - lines.len();
    if skipped > 0 {
        lines.push(format!(
            "I stopped there; {skipped} later step(s) were not attempted."
        ));
    }
    lines.join("\n")
}

impl RulePlanner {
    /// The whole plan for `sentence`.
    pub fn plan(&self, sentence: &str) -> Plan {
        let mut steps = vec![];
        // Who "her"/"him"/"their" refers to, and which account "it" is.
        let mut subject: Option<String> = None;
        let mut opened: Option<&'static str> = None;
        for text in clauses(sentence) {
            let c = Clause::new(&text);
            if let Some(e) = c.emails.first() {
                subject = Some(e.clone());
            }
            let pronoun = c.any(&["her", "him", "their", "them"]);
            let owner = c
                .emails
                .first()
                .cloned()
                .or_else(|| if pronoun { subject.clone() } else { None });
            let with_owner = |mut v: Value| {
                if let Some(o) = &owner {
                    v["owner"] = json!(o);
                }
                v
            };
            let before = steps.len();
            if c.has("onboard") {
                let Some(email) = c.emails.first() else {
                    return Plan::Unclear(HELP.into());
                };
                let name = display_name(email);
                steps.push(Step::new(
                    Specialist::Iam,
                    "create_user",
                    json!({"email": email, "display_name": name}),
                ));
                if c.any(&["entra", "microsoft", "azure"]) {
                    steps.push(Step::new(
                        Specialist::Entra,
                        "graph_user_create",
                        json!({"email": email, "display_name": name}),
                    ));
                }
            } else if c.any(&["transfer", "move", "send", "pay"]) && c.amount().is_some() {
                let amount = c.amount().unwrap_or_default();
                let source = c
                    .account_after(&["from"])
                    .filter(|a| is_account(a))
                    .unwrap_or_else(|| "checking".into());
                let destination = match c.account_after(&["to", "into"]) {
                    Some(a) if a == "it" => opened.map(str::to_owned),
                    Some(a) if is_account(&a) => Some(a),
                    _ => None,
                };
                let Some(destination) = destination else {
                    return Plan::Unclear(format!("Which account should the money go to? {HELP}"));
                };
                steps.push(Step::new(
                    Specialist::Banking,
                    "transfer_funds",
                    with_owner(json!({"amount": {"value": amount, "currency": "USD"}, "source": source, "destination": destination})),
                ));
            } else if c.has("open") && c.has("account") {
                let Some(kind) = c.account_kind() else {
                    return Plan::Unclear(format!(
                        "Which kind of account: checking, savings or trading? {HELP}"
                    ));
                };
                opened = Some(kind);
                steps.push(Step::new(
                    Specialist::Banking,
                    "open_account",
                    with_owner(json!({"kind": kind})),
                ));
            } else if c.has("balance") || c.has("balances") {
                let mut args = json!({});
                if let Some(k) = c.account_kind() {
                    args["account"] = json!(k);
                }
                steps.push(Step::new(
                    Specialist::Banking,
                    "get_balance",
                    with_owner(args),
                ));
            } else if c.has("accounts") && c.any(&["list", "show", "what", "which"]) {
                steps.push(Step::new(
                    Specialist::Banking,
                    "list_accounts",
                    with_owner(json!({})),
                ));
            } else if let Some(email) = owner
                .as_ref()
                .filter(|_| c.any(&["delete", "remove", "erase"]))
            {
                steps.push(Step::new(
                    Specialist::Iam,
                    "delete_user",
                    json!({"email": email}),
                ));
            } else if let Some(email) = owner
                .as_ref()
                .filter(|_| c.has("admin") && c.any(&["grant", "make", "give", "promote"]))
            {
                steps.push(Step::new(
                    Specialist::Iam,
                    "grant_admin_role",
                    json!({"email": email}),
                ));
            } else if let Some(email) = owner
                .as_ref()
                .filter(|_| c.any(&["deactivate", "disable", "suspend", "lock"]))
            {
                steps.push(Step::new(
                    Specialist::Iam,
                    "deactivate_user",
                    json!({"email": email}),
                ));
            } else if let Some(email) = owner
                .as_ref()
                .filter(|_| c.has("sessions") || (c.any(&["sign", "log"]) && c.has("out")))
            {
                steps.push(Step::new(
                    Specialist::Iam,
                    "revoke_user_sessions",
                    json!({"email": email}),
                ));
            } else if let Some(email) = owner.as_ref().filter(|_| c.has("group")) {
                let group = c
                    .words
                    .windows(2)
                    .find(|w| w[1] == "group")
                    .map(|w| w[0].clone())
                    .filter(|g| g != "the" && g != "a");
                let group = group.or_else(|| {
                    c.words
                        .windows(2)
                        .find(|w| w[0] == "group")
                        .map(|w| w[1].clone())
                });
                let Some(group) = group else {
                    return Plan::Unclear(format!("Which group? {HELP}"));
                };
                steps.push(Step::new(
                    Specialist::Iam,
                    "add_user_to_group",
                    json!({"email": email, "group": group}),
                ));
            } else if let Some(email) = owner.as_ref().filter(|_| {
                c.any(&["create", "add", "invite"]) && c.any(&["entra", "microsoft", "azure"])
            }) {
                steps.push(Step::new(
                    Specialist::Entra,
                    "graph_user_create",
                    json!({"email": email, "display_name": display_name(email)}),
                ));
            } else if let Some(email) = owner
                .as_ref()
                .filter(|_| c.any(&["create", "add", "invite"]))
            {
                steps.push(Step::new(
                    Specialist::Iam,
                    "create_user",
                    json!({"email": email, "display_name": display_name(email)}),
                ));
            } else if c.has("users") && c.any(&["entra", "microsoft", "azure"]) {
                steps.push(Step::new(Specialist::Entra, "graph_user_list", json!({})));
            } else if c.has("users") && c.any(&["list", "show", "who"]) {
                steps.push(Step::new(Specialist::Iam, "list_users", json!({})));
            } else if let Some(email) = owner
                .as_ref()
                .filter(|_| c.any(&["find", "look", "lookup", "show", "who"]))
            {
                steps.push(Step::new(
                    Specialist::Iam,
                    "get_user",
                    json!({"email": email}),
                ));
            }
            if steps.len() == before {
                return Plan::Unclear(HELP.into());
            }
        }
        if steps.is_empty() {
            Plan::Unclear(HELP.into())
        } else {
            Plan::Steps(steps)
        }
    }
}

fn is_account(word: &str) -> bool {
    matches!(word, "checking" | "savings" | "trading")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(s: &str) -> Vec<(String, Value)> {
        match RulePlanner.plan(s) {
            Plan::Steps(v) => v
                .into_iter()
                .map(|s| (format!("{}.{}", s.agent.name(), s.skill), s.arguments))
                .collect(),
            Plan::Unclear(m) => panic!("not understood: {s}: {m}"),
        }
    }

    #[test]
    fn s1_transfer_and_variations() {
        let expected = vec![(
            "banking.transfer_funds".to_owned(),
            json!({"amount": {"value": "1000.00", "currency": "USD"}, "source": "checking", "destination": "savings"}),
        )];
        assert_eq!(steps("Transfer $1,000 from checking to savings."), expected);
        assert_eq!(
            steps("transfer 1000 dollars from checking to savings"),
            expected
        );
        assert_eq!(
            steps("Please move $1000.00 from my checking into my savings!"),
            expected
        );
        assert_eq!(
            steps("Send $25.50 from savings to checking")[0].1["amount"]["value"],
            "25.50"
        );
    }

    #[test]
    fn s2_delete_and_s4_deactivate() {
        assert_eq!(
            steps("Delete sarah.smith@example.com permanently."),
            vec![(
                "iam.delete_user".to_owned(),
                json!({"email": "sarah.smith@example.com"})
            )]
        );
        assert_eq!(
            steps("Deactivate bob@example.com"),
            vec![(
                "iam.deactivate_user".to_owned(),
                json!({"email": "bob@example.com"})
            )]
        );
    }

    #[test]
    fn s3_onboarding_resolves_her_and_it() {
        let got = steps(
            "Onboard sarah.smith@example.com across Verify and Entra, open her a trading account, and transfer $50 from her checking into it.",
        );
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "iam.create_user",
                "entra.graph_user_create",
                "banking.open_account",
                "banking.transfer_funds"
            ]
        );
        assert_eq!(got[0].1["display_name"], "Sarah Smith");
        assert_eq!(
            got[2].1,
            json!({"kind": "trading", "owner": "sarah.smith@example.com"})
        );
        assert_eq!(
            got[3].1,
            json!({"amount": {"value": "50.00", "currency": "USD"}, "source": "checking", "destination": "trading", "owner": "sarah.smith@example.com"})
        );
    }

    #[test]
    fn every_planned_step_is_a_valid_authorization() {
        for s in [
            "Transfer $1,000 from checking to savings.",
            "Onboard sarah.smith@example.com across Verify and Entra, open her a trading account, and transfer $50 from her checking into it.",
            "What's my checking balance?",
            "Add bob@example.com to the traders group",
            "Grant admin to bob@example.com",
            "Sign out bob@example.com everywhere",
        ] {
            let Plan::Steps(v) = RulePlanner.plan(s) else {
                panic!("{s}")
            };
            for step in v {
                step.authorization().unwrap_or_else(|e| panic!("{s}: {e}"));
            }
        }
    }

    #[test]
    fn says_plainly_when_it_does_not_understand() {
        for s in [
            "",
            "hello",
            "Transfer from checking to savings",
            "bake me a cake",
        ] {
            assert!(matches!(RulePlanner.plan(s), Plan::Unclear(_)), "{s}");
        }
    }
}
