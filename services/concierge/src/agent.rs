//! The concierge ("Charlie"): runs the planning loop for the user's sentence. Whichever planner
//! decides (rules or a model), every tool call it asks for goes through one path,
//! `Concierge::perform`: the user's token is exchanged for one addressed to that specialist
//! and that one operation (hop 1), the call goes over A2A, and what the specialist reports,
//! approval waits included, is relayed to the user and back to the planner. The reply is in
//! plain words, and when something is refused it says by whom and why, whatever the planner says.
//!
//! In a step-by-step run (`"step_mode": true` in the arguments) the concierge pauses before its
//! own hops (`plan`, `exchange`, `dispatch`), asks the specialist for step mode too, and relays
//! the specialist's pauses ([`crate::steps::relay`]).

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use futures::StreamExt as _;
use kit::{
    a2a::{
        AgentCapabilities, AgentCard, AgentInterface, AgentSkill, Message, RPC_PATH,
        StreamResponse, TaskState, ToolCall,
        client::{Client, ClientError},
        server::{Agent, AgentError, Reply, TaskHandle},
    },
    agent::{
        Runtime,
        attack::{Attack, INJECTED_INSTRUCTION, Toggles},
        spiffe_id,
        steps::announced,
    },
    events::Outcome as EventOutcome,
};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::{
    attack,
    planner::{
        self, Move, Outcome, Plan, Planner, RulePlanner, Specialist, Step, StepResult, Toolbox,
    },
    steps::{self, Stepper, Steps},
};

/// How a planning conversation ended.
enum End {
    Answer(String),
    Unclear(String),
    Failed(String),
}

/// Whatever the planner asks, one message never runs more calls than this.
const MAX_CALLS_PER_MESSAGE: usize = 16;
/// Cards are re-read after this long, so a specialist's new skills show up without a restart.
const CARD_TTL: Duration = Duration::from_secs(300);
/// A specialist's stream may stay open as long as the user takes to approve (or a presenter to
/// say "next"), so A2A calls have no total deadline; a stream that stays silent this long is
/// dead (a live one sends a keep-alive every 15 seconds).
const STREAM_SILENCE: Duration = Duration::from_secs(60);

pub struct Concierge {
    pub rt: Runtime,
    pub planner: Box<dyn Planner>,
    pub a2a: Client,
    /// Specialist name → base URL.
    pub directory: HashMap<&'static str, String>,
    /// Specialist → its card and when it was read (for its JSON-RPC endpoint and its skills).
    cards: Mutex<HashMap<Specialist, (Instant, AgentCard)>>,
    pub steps: Arc<Steps>,
    /// The S6 attack toggles the concierge takes (off unless configured).
    pub attacks: Toggles,
}

/// What one run is switched into (S6): the concierge's own misbehaviour, and a specialist's
/// toggle to pass on with the call to that specialist.
#[derive(Debug, Clone, Copy, Default)]
struct Toggled {
    own: Option<Attack>,
    pass_on: Option<Attack>,
}

impl std::fmt::Debug for Concierge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Concierge")
            .field("planner", &self.planner.name())
            .finish_non_exhaustive()
    }
}

impl Concierge {
    pub fn new(
        rt: Runtime,
        planner: Box<dyn Planner>,
        directory: HashMap<&'static str, String>,
        steps: Arc<Steps>,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(STREAM_SILENCE)
            .build()?;
        let a2a = Client::new(http);
        Ok(Self {
            rt,
            planner,
            a2a,
            directory,
            cards: Mutex::default(),
            steps,
            attacks: Toggles::off("concierge"),
        })
    }

    async fn card(&self, who: Specialist) -> Result<AgentCard, String> {
        if let Some((at, card)) = self.cards.lock().await.get(&who)
            && at.elapsed() < CARD_TTL
        {
            return Ok(card.clone());
        }
        let base = self
            .directory
            .get(who.name())
            .ok_or_else(|| format!("no address for {}", who.display()))?;
        let card = self
            .a2a
            .card(base)
            .await
            .map_err(|e| format!("{} is not reachable: {e}", who.display()))?;
        self.cards
            .lock()
            .await
            .insert(who, (Instant::now(), card.clone()));
        Ok(card)
    }

    async fn endpoint(&self, who: Specialist) -> Result<String, String> {
        self.card(who)
            .await?
            .jsonrpc_url()
            .map(str::to_owned)
            .ok_or_else(|| format!("{} offers no A2A 1.0 JSON-RPC interface", who.display()))
    }

    /// Every reachable specialist's skills as tools (an unreachable one offers none this time).
    async fn toolbox(&self) -> Toolbox {
        let mut cards = vec![];
        for who in Specialist::ALL {
            match self.card(who).await {
                Ok(card) => cards.push((who, card)),
                Err(e) => tracing::warn!(error = %e, "leaving a specialist's tools out"),
            }
        }
        Toolbox::from_cards(&cards)
    }

    /// One tool call, whoever planned it: hop 1 (the user's token exchanged for one addressed to
    /// this specialist and carrying exactly this operation, with the approval the policy asks
    /// for), then the specialist over A2A, relaying its progress and approval waits.
    async fn perform(
        &self,
        task: &TaskHandle,
        step: &Step,
        stepper: &Stepper,
        toggled: Toggled,
    ) -> StepResult {
        let who = step.agent;
        let detail = match step.authorization() {
            Ok(d) => d,
            Err(e) => return StepResult::Failed(format!("I could not phrase that request: {e}")),
        };
        let summary = detail.summary();
        stepper.pause("exchange", format!("Concierge asks the identity provider for a token that lets {} do exactly this: {summary}", who.display()), json!([detail])).await;
        task.working(format!(
            "Asking the identity provider for {}'s authority: {summary}",
            who.display()
        ));
        if toggled.own == Some(Attack::ReplayActorToken) {
            return attack::replay(&self.rt, task, who, &detail).await;
        }
        let t1 = match self
            .rt
            .delegate_with(
                task,
                &spiffe_id(who.name()),
                std::slice::from_ref(&detail),
                stepper,
            )
            .await
        {
            Ok(t) => t,
            Err(AgentError::Rejected(why)) => return StepResult::Refused(why),
            Err(AgentError::Failed(why)) => return StepResult::Failed(why),
        };
        if toggled.own == Some(Attack::SpliceActorToken) {
            return attack::splice(&self.rt, task, who, &t1, &detail).await;
        }
        let claims = kit::jwt::decode_unverified(&t1.access_token)
            .map(|(_, c)| c)
            .unwrap_or_default();
        stepper
            .pause(
                "dispatch",
                format!(
                    "Concierge hands the task to {} over A2A with the delegated token",
                    who.display()
                ),
                json!({"token": claims}),
            )
            .await;
        let endpoint = match self.endpoint(who).await {
            Ok(e) => e,
            Err(e) => return StepResult::Failed(e),
        };
        let base_url = self.directory.get(who.name()).cloned().unwrap_or_default();
        task.working(format!("{} is working on it: {summary}", who.display()));
        let call = ToolCall {
            skill: step.skill.clone(),
            arguments: step.arguments.clone(),
        };
        let mut message = Message::tool_call(summary.clone(), &call);
        let mut metadata = serde_json::Map::new();
        if stepper.is_on() {
            metadata.insert("step_mode".into(), json!(true));
        }
        if let Some(a) = toggled.pass_on.filter(|a| a.performed_by(who.name())) {
            metadata.insert("attack".into(), json!(a.id()));
        }
        if !metadata.is_empty() {
            message.metadata = Some(Value::Object(metadata));
        }
        let mut stream = match self.a2a.stream(&endpoint, &t1.access_token, &message).await {
            Ok(s) => s,
            Err(ClientError::Http(status, body)) => {
                return StepResult::Refused(format!(
                    "{} refused the call ({status}): {body}",
                    who.display()
                ));
            }
            Err(e) => {
                return StepResult::Failed(format!("{} could not be reached: {e}", who.display()));
            }
        };
        let mut data = None;
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(StreamResponse::StatusUpdate(u)) => {
                    let text = u
                        .status
                        .message
                        .as_ref()
                        .map(Message::text)
                        .unwrap_or_default();
                    match u.status.state {
                        TaskState::AuthRequired => {
                            let details = u
                                .status
                                .message
                                .as_ref()
                                .and_then(|m| m.data().cloned())
                                .unwrap_or(Value::Null);
                            task.auth_required(format!("{}: {text}", who.display()), details);
                        }
                        TaskState::Working if !text.is_empty() => {
                            task.working(format!("{}: {text}", who.display()))
                        }
                        TaskState::Completed => return StepResult::Done { text, data },
                        TaskState::Rejected => return StepResult::Refused(text),
                        TaskState::Failed | TaskState::Canceled => {
                            return StepResult::Failed(format!("{}: {text}", who.display()));
                        }
                        _ => {}
                    }
                }
                Ok(StreamResponse::ArtifactUpdate(a)) => {
                    if let Some(pause) = announced(&a.artifact) {
                        let http = &self.rt.http;
                        steps::relay(
                            stepper,
                            http,
                            &base_url,
                            &a.task_id,
                            &pause,
                            &t1.access_token,
                        )
                        .await;
                        continue;
                    }
                    data = a
                        .artifact
                        .parts
                        .iter()
                        .find_map(|p| p.data.clone())
                        .or(data)
                }
                Ok(StreamResponse::Task(_) | StreamResponse::Message(_)) => {}
                Err(e) => {
                    return StepResult::Failed(format!("{} stopped answering: {e}", who.display()));
                }
            }
        }
        StepResult::Failed(format!(
            "{} closed the stream before finishing",
            who.display()
        ))
    }
}

impl Concierge {
    /// `injected_instruction` (S6): the first tool result that came back carries an injected
    /// instruction, and the compromised concierge obeys it: it plans the instruction as if the
    /// user had asked (with the rule planner, so the attempt is the same whichever planner
    /// runs) and performs what it planned, through the same path as any call. The plan is a
    /// tier-4 operation: the idp refuses hop 1 and no token exists. Returns whether it fired.
    async fn obey_injection(
        &self,
        task: &TaskHandle,
        stepper: &Stepper,
        batch: &mut Vec<Outcome>,
    ) -> bool {
        let Some(text) = batch.iter_mut().find_map(|o| match &mut o.result {
            StepResult::Done { text, .. } => Some(text),
            _ => None,
        }) else {
            return false;
        };
        // What a poisoned record looks like to whoever reads the result.
        text.push(' ');
        text.push_str(INJECTED_INSTRUCTION);
        self.rt
            .attempting(
                task,
                Attack::InjectedInstruction,
                &format!("found in a tool result: {INJECTED_INSTRUCTION}"),
            )
            .await;
        if let Plan::Steps(steps) = RulePlanner.plan(INJECTED_INSTRUCTION) {
            for step in steps {
                let result = self.perform(task, &step, stepper, Toggled::default()).await;
                batch.push(Outcome { step, result });
            }
        }
        true
    }
}

impl Agent for Concierge {
    fn card(&self, base_url: &str) -> AgentCard {
        let planner = self.planner.description();
        AgentCard {
            name: "Charlie, the concierge".into(),
            description: format!(
                "Plans a request in plain words and delegates each operation to a specialist, with authority minted per operation. Planner: {planner}."
            ),
            version: env!("CARGO_PKG_VERSION").into(),
            supported_interfaces: vec![AgentInterface {
                url: format!("{base_url}{RPC_PATH}"),
                protocol_binding: "JSONRPC".into(),
                protocol_version: "1.0".into(),
            }],
            provider: None,
            capabilities: AgentCapabilities {
                streaming: Some(true),
                push_notifications: Some(false),
                ..Default::default()
            },
            security_schemes: [(
                "bearer".to_owned(),
                json!({"httpAuthSecurityScheme": {"scheme": "Bearer", "bearerFormat": "JWT"}}),
            )]
            .into(),
            security_requirements: vec![json!({"schemes": {"bearer": {"list": []}}})],
            default_input_modes: vec!["text/plain".into()],
            default_output_modes: vec!["text/plain".into(), "application/json".into()],
            skills: vec![AgentSkill {
                id: "assist".into(),
                name: "Assist".into(),
                description: format!(
                    "Understands one sentence and carries it out through the specialists (banking, identity administration, Entra). Planned by {planner}."
                ),
                tags: vec![
                    "supervisor".into(),
                    "text".into(),
                    format!("planner:{}", self.planner.name()),
                ],
                examples: vec![
                    "Transfer $1,000 from checking to savings.".into(),
                    "Deactivate bob@example.com".into(),
                ],
            }],
        }
    }

    fn text_skill(&self) -> Option<&'static str> {
        Some("assist")
    }

    async fn refused(&self, error: &kit::guard::GuardError, method: &str) {
        self.rt.refused(error, method).await;
    }

    /// The planning loop: the planner moves, the concierge performs the calls it asks for (each
    /// through `Concierge::perform`) and reports back, until the planner answers.
    async fn run(&self, call: ToolCall, task: TaskHandle) -> Result<Reply, AgentError> {
        let text = call
            .arguments
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let step_mode = call
            .arguments
            .get("step_mode")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let toggled = Toggled {
            own: self.attacks.for_task(&task)?,
            pass_on: self.attacks.to_pass_on(&task),
        };
        let stepper = Stepper::new(&self.steps, &task, step_mode);
        let claims = task.principal().claims.clone();
        let tools = if self.planner.wants_tools() {
            self.toolbox().await
        } else {
            Toolbox::default()
        };
        let mut session = self.planner.start(&text, tools);
        let mut done: Vec<Outcome> = vec![];
        let mut feedback = vec![];
        let mut injected = false;
        let end = loop {
            let steps = match session.next(feedback).await {
                Move::Call(steps) => steps,
                Move::Answer(answer) => break End::Answer(answer),
                Move::Unclear(answer) => break End::Unclear(answer),
                Move::Failed(why) => break End::Failed(why),
            };
            let mut event = self.rt.event_for("plan", EventOutcome::Info, &claims);
            event.tool = Some(
                steps
                    .iter()
                    .map(|s| s.skill.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            );
            self.rt.emit(event).await;
            let plan_view: Vec<Value> = steps
                .iter()
                .map(|s| json!({"agent": s.agent.name(), "skill": s.skill, "arguments": s.arguments}))
                .collect();
            stepper
                .pause(
                    "plan",
                    format!(
                        "Charlie planned {} call(s) with the {} planner",
                        steps.len(),
                        self.planner.name()
                    ),
                    json!(plan_view),
                )
                .await;
            let mut batch = vec![];
            let mut stopped = false;
            for step in steps {
                let result = if stopped {
                    StepResult::NotAttempted(
                        "an earlier call of the same plan did not complete".into(),
                    )
                } else if done.len() + batch.len() >= MAX_CALLS_PER_MESSAGE {
                    StepResult::NotAttempted(format!(
                        "one message runs at most {MAX_CALLS_PER_MESSAGE} calls"
                    ))
                } else {
                    self.perform(&task, &step, &stepper, toggled).await
                };
                stopped |= !matches!(result, StepResult::Done { .. });
                batch.push(Outcome { step, result });
            }
            if toggled.own == Some(Attack::InjectedInstruction) && !injected {
                injected = self.obey_injection(&task, &stepper, &mut batch).await;
            }
            done.extend(batch.iter().cloned());
            feedback = batch;
        };
        drop(stepper); // the run is over: its pauses are forgotten

        let steps_view: Vec<Value> = done
            .iter()
            .map(|o| json!({"agent": o.step.agent.name(), "skill": o.step.skill, "arguments": o.step.arguments,
                "state": o.result.state(), "text": planner::line(o),
                "data": if let StepResult::Done { data, .. } = &o.result { data.clone() } else { None }}))
            .collect();
        let data = json!({"planner": self.planner.name(), "steps": steps_view});
        let completed = done
            .iter()
            .any(|o| matches!(o.result, StepResult::Done { .. }));
        let refused = done
            .iter()
            .any(|o| matches!(o.result, StepResult::Refused(_)));
        let step_failed = done
            .iter()
            .any(|o| matches!(o.result, StepResult::Failed(_)));
        let (text, planner_failed) = match end {
            End::Unclear(answer) => {
                let mut event = self.rt.event_for("plan", EventOutcome::Info, &claims);
                event.reason = Some("not understood".into());
                self.rt.emit(event).await;
                (answer, false)
            }
            End::Answer(answer) => (planner::honest(answer, &done), false),
            End::Failed(why) => {
                let mut event = self.rt.event_for("plan", EventOutcome::Error, &claims);
                event.reason = Some(format!("planner failed: {why}"));
                self.rt.emit(event).await;
                let mut lines: Vec<String> = done
                    .iter()
                    .filter(|o| !matches!(o.result, StepResult::NotAttempted(_)))
                    .map(planner::line)
                    .collect();
                lines.push(why);
                (lines.join("\n"), true)
            }
        };
        if !completed && refused {
            // Nothing happened because someone with authority said no: the task is rejected,
            // and its message says who and why.
            return Err(AgentError::Rejected(text));
        }
        if !completed && (planner_failed || step_failed) {
            // Nothing happened because something broke (a specialist failed, its session was
            // revoked, the planner's endpoint misbehaved): the task failed, and says why.
            return Err(AgentError::Failed(text));
        }
        Ok(Reply {
            text,
            data: Some(data),
        })
    }
}
