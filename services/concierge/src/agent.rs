//! The concierge ("Charlie"): plans the user's sentence, and for each tool call exchanges the
//! user's token for one addressed to that specialist and that one operation (hop 1), then
//! hands the call over A2A and relays what the specialist reports, approval waits included.
//! It answers in plain words, and when something is refused it says by whom and why.

use std::{collections::HashMap, sync::Arc};

use futures::StreamExt as _;
use kit::{
    a2a::{
        AgentCapabilities, AgentCard, AgentInterface, AgentSkill, Message, RPC_PATH,
        StreamResponse, TaskState, ToolCall,
        client::{Client, ClientError},
        server::{Agent, AgentError, Reply, TaskHandle},
    },
    agent::{Runtime, spiffe_id},
    events::Outcome,
};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::{
    planner::{Plan, Planner, Specialist, Step},
    steps::Steps,
};

pub struct Concierge {
    pub rt: Runtime,
    pub planner: Box<dyn Planner>,
    pub a2a: Client,
    /// Specialist name → base URL.
    pub directory: HashMap<&'static str, String>,
    /// Specialist name → its JSON-RPC endpoint, from its card (fetched once).
    endpoints: Mutex<HashMap<&'static str, String>>,
    pub steps: Arc<Steps>,
}

impl std::fmt::Debug for Concierge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Concierge")
            .field("planner", &self.planner.name())
            .finish_non_exhaustive()
    }
}

/// How one step ended.
#[derive(Debug, Clone)]
enum StepOutcome {
    Done(String, Option<Value>),
    Refused(String),
    Failed(String),
}

impl Concierge {
    pub fn new(
        rt: Runtime,
        planner: Box<dyn Planner>,
        directory: HashMap<&'static str, String>,
        steps: Arc<Steps>,
    ) -> Self {
        let a2a = Client::new(rt.http.clone());
        Self {
            rt,
            planner,
            a2a,
            directory,
            endpoints: Mutex::default(),
            steps,
        }
    }

    async fn endpoint(&self, who: Specialist) -> Result<String, String> {
        if let Some(e) = self.endpoints.lock().await.get(who.name()) {
            return Ok(e.clone());
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
        let url = card
            .jsonrpc_url()
            .ok_or_else(|| format!("{} offers no A2A 1.0 JSON-RPC interface", who.display()))?
            .to_owned();
        self.endpoints.lock().await.insert(who.name(), url.clone());
        Ok(url)
    }

    async fn pause(
        &self,
        task: &TaskHandle,
        step_mode: bool,
        hop: &str,
        narration: String,
        artifact: Value,
    ) {
        if step_mode {
            task.working(format!("Paused before {hop}: {narration}"));
            self.steps
                .pause(
                    task.id(),
                    &task.principal().claims.sub,
                    hop,
                    narration,
                    artifact,
                )
                .await;
        }
    }

    /// One tool call: hop 1, then the specialist over A2A.
    async fn perform(&self, task: &TaskHandle, step: &Step, step_mode: bool) -> StepOutcome {
        let who = step.agent;
        let detail = match step.authorization() {
            Ok(d) => d,
            Err(e) => return StepOutcome::Failed(format!("I could not phrase that request: {e}")),
        };
        let summary = detail.summary();
        self.pause(task, step_mode, "exchange", format!("Concierge asks the identity provider for a token that lets {} do exactly this: {summary}", who.display()), json!([detail])).await;
        task.working(format!(
            "Asking the identity provider for {}'s authority: {summary}",
            who.display()
        ));
        let t1 = match self
            .rt
            .delegate(task, &spiffe_id(who.name()), std::slice::from_ref(&detail))
            .await
        {
            Ok(t) => t,
            Err(AgentError::Rejected(why)) => return StepOutcome::Refused(why),
            Err(AgentError::Failed(why)) => return StepOutcome::Failed(why),
        };
        let claims = kit::jwt::decode_unverified(&t1.access_token)
            .map(|(_, c)| c)
            .unwrap_or_default();
        self.pause(
            task,
            step_mode,
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
            Err(e) => return StepOutcome::Failed(e),
        };
        task.working(format!("{} is working on it: {summary}", who.display()));
        let call = ToolCall {
            skill: step.skill.clone(),
            arguments: step.arguments.clone(),
        };
        let mut message = Message::tool_call(summary.clone(), &call);
        if step_mode {
            message.metadata = Some(json!({"step_mode": true}));
        }
        let mut stream = match self.a2a.stream(&endpoint, &t1.access_token, &message).await {
            Ok(s) => s,
            Err(ClientError::Http(status, body)) => {
                return StepOutcome::Refused(format!(
                    "{} refused the call ({status}): {body}",
                    who.display()
                ));
            }
            Err(e) => {
                return StepOutcome::Failed(format!("{} could not be reached: {e}", who.display()));
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
                        TaskState::Completed => return StepOutcome::Done(text, data),
                        TaskState::Rejected => return StepOutcome::Refused(text),
                        TaskState::Failed | TaskState::Canceled => {
                            return StepOutcome::Failed(format!("{}: {text}", who.display()));
                        }
                        _ => {}
                    }
                }
                Ok(StreamResponse::ArtifactUpdate(a)) => {
                    data = a
                        .artifact
                        .parts
                        .iter()
                        .find_map(|p| p.data.clone())
                        .or(data)
                }
                Ok(StreamResponse::Task(_) | StreamResponse::Message(_)) => {}
                Err(e) => {
                    return StepOutcome::Failed(format!("{} stopped answering: {e}", who.display()));
                }
            }
        }
        StepOutcome::Failed(format!(
            "{} closed the stream before finishing",
            who.display()
        ))
    }
}

impl Agent for Concierge {
    fn card(&self, base_url: &str) -> AgentCard {
        AgentCard {
            name: "Charlie, the concierge".into(),
            description: "Plans a request in plain words and delegates each operation to a specialist, with authority minted per operation.".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            supported_interfaces: vec![AgentInterface { url: format!("{base_url}{RPC_PATH}"), protocol_binding: "JSONRPC".into(), protocol_version: "1.0".into() }],
            provider: None,
            capabilities: AgentCapabilities { streaming: Some(true), push_notifications: Some(false), ..Default::default() },
            security_schemes: [("bearer".to_owned(), json!({"httpAuthSecurityScheme": {"scheme": "Bearer", "bearerFormat": "JWT"}}))].into(),
            security_requirements: vec![json!({"schemes": {"bearer": {"list": []}}})],
            default_input_modes: vec!["text/plain".into()],
            default_output_modes: vec!["text/plain".into(), "application/json".into()],
            skills: vec![AgentSkill {
                id: "assist".into(),
                name: "Assist".into(),
                description: "Understands one sentence and carries it out through the specialists (banking, identity administration, Entra).".into(),
                tags: vec!["supervisor".into(), "text".into()],
                examples: vec!["Transfer $1,000 from checking to savings.".into(), "Deactivate bob@example.com".into()],
            }],
        }
    }

    fn text_skill(&self) -> Option<&'static str> {
        Some("assist")
    }

    async fn refused(&self, error: &kit::guard::GuardError, method: &str) {
        self.rt.refused(error, method).await;
    }

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
        let claims = task.principal().claims.clone();
        let plan = self.planner.plan(&text);
        let mut event = self.rt.event_for("plan", Outcome::Info, &claims);
        let steps = match plan {
            Plan::Unclear(answer) => {
                event.reason = Some("not understood".into());
                self.rt.emit(event).await;
                return Ok(Reply {
                    text: answer,
                    data: Some(json!({"planner": self.planner.name(), "steps": []})),
                });
            }
            Plan::Steps(s) => s,
        };
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
        self.pause(
            &task,
            step_mode,
            "plan",
            format!(
                "Charlie planned {} call(s) with the {} planner",
                steps.len(),
                self.planner.name()
            ),
            json!(plan_view),
        )
        .await;

        let mut lines = vec![];
        let mut results = vec![];
        for step in &steps {
            let outcome = self.perform(&task, step, step_mode).await;
            let (state, line) = match &outcome {
                StepOutcome::Done(text, _) => {
                    ("completed", format!("{}: {text}", step.agent.display()))
                }
                StepOutcome::Refused(why) => {
                    ("rejected", format!("I could not do that for you. {why}"))
                }
                StepOutcome::Failed(why) => ("failed", format!("Something went wrong: {why}")),
            };
            results.push(json!({"agent": step.agent.name(), "skill": step.skill, "state": state, "text": line,
                "data": if let StepOutcome::Done(_, d) = &outcome { d.clone() } else { None }}));
            lines.push(line);
            if !matches!(outcome, StepOutcome::Done(..)) {
                break;
            }
        }
        self.steps.finish(task.id());
        let skipped = steps.len() - results.len();
        if skipped > 0 {
            lines.push(format!(
                "I stopped there; {skipped} later step(s) were not attempted."
            ));
        }
        let nothing_done = results.iter().all(|r| r["state"] != "completed");
        if nothing_done && results.first().is_some_and(|r| r["state"] == "rejected") {
            // Nothing happened because someone with authority said no: the task is rejected,
            // and its message says who and why.
            return Err(AgentError::Rejected(lines.join("\n")));
        }
        Ok(Reply {
            text: lines.join("\n"),
            data: Some(json!({"planner": self.planner.name(), "steps": results})),
        })
    }
}
