//! Deciding which specialists to call. A planner never calls anything itself: it is a
//! conversation in which it asks for tool calls ([`Move::Call`]), the concierge performs each one
//! through the same delegation and approval path ([`crate::agent`]), and hands back how each
//! ended ([`Outcome`]) until the planner answers ([`Move::Answer`]). So the loop, the tools, the
//! tokens and every authorization decision stay in our services, whoever plans.
//!
//! - [`rules::RulePlanner`]: the default. Deterministic, offline, repeatable on stage.
//! - [`llm::LlmPlanner`]: a hosted model (any OpenAI-compatible endpoint) picks the tools. It sees
//!   the user's sentence, the tools' schemas (from the specialists' cards, [`tools`]) and the
//!   tool results as delimited data; never a token, a key or a credential.

pub mod llm;
pub mod rules;
pub mod tools;

use futures::future::BoxFuture;
use kit::rar::{self, AuthorizationDetail};
use serde_json::{Value, json};

pub use self::{
    llm::LlmPlanner,
    rules::{Plan, RulePlanner},
    tools::{Tool, Toolbox},
};

/// The specialists the concierge can call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Specialist {
    Banking,
    Iam,
    Entra,
}

impl Specialist {
    pub const ALL: [Specialist; 3] = [Specialist::Banking, Specialist::Iam, Specialist::Entra];

    pub fn name(self) -> &'static str {
        match self {
            Specialist::Banking => "banking",
            Specialist::Iam => "iam",
            Specialist::Entra => "entra",
        }
    }

    /// The RAR type of the operations this specialist performs.
    pub fn rar_type(self) -> &'static str {
        match self {
            Specialist::Banking => rar::BANKING,
            Specialist::Iam => rar::IAM,
            Specialist::Entra => rar::ENTRA,
        }
    }

    pub fn display(self) -> &'static str {
        match self {
            Specialist::Banking => "Banking",
            Specialist::Iam => "IAM",
            Specialist::Entra => "Entra",
        }
    }
}

/// One tool call for one specialist. `arguments` are exactly the RAR `operationDetails` fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub agent: Specialist,
    pub skill: String,
    pub arguments: Value,
}

impl Step {
    pub fn new(agent: Specialist, skill: &str, arguments: Value) -> Self {
        Self {
            agent,
            skill: skill.into(),
            arguments,
        }
    }

    /// The operation as an `authorization_details` entry (validated and normalized).
    pub fn authorization(&self) -> Result<AuthorizationDetail, rar::RarError> {
        let mut od = serde_json::Map::new();
        od.insert("action".into(), json!(self.skill));
        match &self.arguments {
            Value::Object(args) => od.extend(args.clone()),
            Value::Null => {}
            _ => {
                return Err(rar::RarError::Invalid(
                    "the arguments must be a JSON object".into(),
                ));
            }
        }
        AuthorizationDetail {
            kind: self.agent.rar_type().into(),
            locations: None,
            actions: None,
            identifier: None,
            operation_details: Some(od),
        }
        .validated()
    }
}

/// How one requested call ended, as the concierge reports it back to the planner.
#[derive(Debug, Clone, PartialEq)]
pub enum StepResult {
    /// The specialist did it: its words and its result data.
    Done { text: String, data: Option<Value> },
    /// Someone with authority said no (policy, the user on the phone, the specialist's guard):
    /// the reason, in their words.
    Refused(String),
    /// Something broke on the way.
    Failed(String),
    /// Not tried: an earlier call of the same move did not complete, or the budget ran out.
    NotAttempted(String),
}

impl StepResult {
    pub fn state(&self) -> &'static str {
        match self {
            StepResult::Done { .. } => "completed",
            StepResult::Refused(_) => "rejected",
            StepResult::Failed(_) => "failed",
            StepResult::NotAttempted(_) => "not_attempted",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub step: Step,
    pub result: StepResult,
}

/// One outcome in plain words, as the user reads it.
pub fn line(o: &Outcome) -> String {
    match &o.result {
        StepResult::Done { text, .. } => format!("{}: {text}", o.step.agent.display()),
        StepResult::Refused(why) => format!("I could not do that for you. {why}"),
        StepResult::Failed(why) => format!("Something went wrong: {why}"),
        StepResult::NotAttempted(why) => format!("Not attempted: {why}."),
    }
}

/// `answer`, followed by the platform's own words for every refusal or failure the answer does
/// not already quote: whatever a planner says, the user learns what was refused and why.
pub fn honest(answer: String, outcomes: &[Outcome]) -> String {
    let mut text = answer;
    for o in outcomes {
        let why = match &o.result {
            StepResult::Refused(why) | StepResult::Failed(why) => why,
            _ => continue,
        };
        if !text.contains(why.as_str()) {
            text.push('\n');
            text.push_str(&line(o));
        }
    }
    text
}

/// The planner's next move in the conversation about one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Move {
    /// Perform these calls, in order, stopping at the first that does not complete; then ask
    /// again with one [`Outcome`] per call.
    Call(Vec<Step>),
    /// Finished: the answer for the user.
    Answer(String),
    /// The request was not understood; nothing was done. A plain answer for the user.
    Unclear(String),
    /// The planner itself broke (its endpoint is unreachable or misbehaves, or it ran out of
    /// turns): what to tell the user. Nothing further is done.
    Failed(String),
}

/// Decides which specialists to call for one message.
pub trait Planner: Send + Sync {
    /// Shown in the UI and in every reply's data: `deterministic` or `llm`.
    fn name(&self) -> &'static str;

    /// One line for the concierge's card: which planner decides, and with what.
    fn description(&self) -> String;

    /// Does this planner read the specialists' tool schemas? (Only then does the concierge
    /// fetch every card before planning.)
    fn wants_tools(&self) -> bool {
        false
    }

    /// Starts the conversation about `sentence`, with the tools the specialists offer now.
    fn start(&self, sentence: &str, tools: Toolbox) -> Box<dyn Session>;
}

/// One message's planning conversation.
pub trait Session: Send {
    /// The next move, given the outcomes of the previous [`Move::Call`] (empty the first time).
    fn next(&mut self, outcomes: Vec<Outcome>) -> BoxFuture<'_, Move>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(result: StepResult) -> Outcome {
        Outcome {
            step: Step::new(Specialist::Iam, "delete_user", json!({"email": "a@b.c"})),
            result,
        }
    }

    #[tokio::test]
    async fn the_rule_session_plans_once_then_answers_from_the_outcomes() {
        let mut s = RulePlanner.start("Delete a@b.c permanently", Toolbox::default());
        let Move::Call(steps) = s.next(vec![]).await else {
            panic!("expected a call")
        };
        assert_eq!(steps.len(), 1);
        let answer = s
            .next(vec![
                outcome(StepResult::Refused("policy says no".into())),
                outcome(StepResult::NotAttempted("earlier".into())),
            ])
            .await;
        assert_eq!(
            answer,
            Move::Answer(
                "I could not do that for you. policy says no\nI stopped there; 1 later step(s) were not attempted."
                    .into()
            )
        );
        let mut unclear = RulePlanner.start("bake me a cake", Toolbox::default());
        assert!(matches!(unclear.next(vec![]).await, Move::Unclear(_)));
    }

    #[test]
    fn an_answer_always_carries_the_refusals_it_leaves_out() {
        let refused = [outcome(StepResult::Refused("never delegated".into()))];
        assert_eq!(
            honest("All done!".into(), &refused),
            "All done!\nI could not do that for you. never delegated"
        );
        assert_eq!(
            honest("No: never delegated.".into(), &refused),
            "No: never delegated."
        );
        let fine = [outcome(StepResult::Done {
            text: "ok".into(),
            data: None,
        })];
        assert_eq!(honest("Done.".into(), &fine), "Done.");
    }

    #[test]
    fn arguments_must_be_an_object() {
        let s = Step::new(Specialist::Iam, "get_user", json!(["a@b.c"]));
        assert!(s.authorization().is_err());
        let s = Step::new(Specialist::Iam, "list_users", Value::Null);
        assert!(s.authorization().is_ok());
    }
}
