//! The entra specialist: for each tool call, one delegation hop (the token the concierge gave us
//! → a token for the Graph API carrying exactly this operation), then the Graph request of that
//! one operation, made with that token and recorded as a security event.
//!
//! The agent holds no standing credential for the tenant. If the policy says no, or the user
//! does, or Graph does, it reports that refusal in plain words and changes nothing.

use std::{future::Future, time::Instant};

use kit::{
    a2a::{
        AgentCapabilities, AgentCard, AgentInterface, RPC_PATH, ToolCall,
        server::{Agent, AgentError, Reply, TaskHandle},
    },
    agent::{Grant, Runtime, attack::Toggles},
    events::Outcome,
    guard::GuardError,
};
use serde_json::{Value, json};

use crate::{
    graph::{Graph, GraphError},
    skills::{self, SKILLS, Skill},
};

/// The audience of hop 2: the Graph API (`audiences = ["graph"]` in the agent registry).
pub const GRAPH_AUDIENCE: &str = "graph";

/// What the tenant is called in replies.
const TENANT: &str = "Entra";

pub struct Entra {
    rt: Runtime,
    /// The S6 attack toggles this agent takes (off unless configured): hop 2 asking for more,
    /// or with a forged token (`kit::agent::attack`).
    attacks: Toggles,
    graph: Graph,
}

impl std::fmt::Debug for Entra {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entra")
            .field("graph", &self.graph)
            .finish_non_exhaustive()
    }
}

impl Entra {
    pub fn new(rt: Runtime, graph: Graph, attacks: Toggles) -> Self {
        Self { rt, graph, attacks }
    }

    pub fn runtime(&self) -> &Runtime {
        &self.rt
    }

    /// One request to the Graph API, timed and recorded with the token's `jti`.
    async fn graph<T>(
        &self,
        grant: &Grant,
        request: &str,
        call: impl Future<Output = Result<T, GraphError>>,
    ) -> Result<T, GraphError> {
        let started = Instant::now();
        let result = call.await;
        let outcome = match &result {
            Ok(_) => Outcome::Allowed,
            Err(e) if e.status().is_some_and(|s| matches!(s.as_u16(), 401 | 403)) => {
                Outcome::Denied
            }
            Err(_) => Outcome::Error,
        };
        let mut e = self.rt.event_for_grant("graph_call", outcome, grant);
        if let Err(err) = &result {
            e.reason = Some(match err {
                GraphError::Api { status, code, .. } => {
                    format!("{request}: HTTP {} {code}: {err}", status.as_u16())
                }
                GraphError::Unavailable(_) => format!("{request}: {err}"),
            });
        }
        self.rt.emit(e.timed(started)).await;
        result
    }

    /// Carries out the granted operation.
    async fn perform(&self, grant: &Grant) -> Result<Reply, AgentError> {
        let email = grant.detail.field("email").unwrap_or_default().to_owned();
        match grant.detail.action().unwrap_or_default() {
            "graph_user_list" => {
                let list = self
                    .graph(
                        grant,
                        "GET /v1.0/users",
                        self.graph.list_users(&grant.token),
                    )
                    .await
                    .map_err(refusal)?;
                let names: Vec<&str> = list["value"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|u| u["userPrincipalName"].as_str())
                    .collect();
                let more = if list.get("@odata.nextLink").is_some() {
                    " (first page)"
                } else {
                    ""
                };
                let text = match names.as_slice() {
                    [] => format!("{TENANT} has no users."),
                    [one] => format!("{TENANT} has 1 user{more}: {one}."),
                    many => format!(
                        "{TENANT} has {} users{more}: {}.",
                        many.len(),
                        many.join(", ")
                    ),
                };
                Ok(Reply {
                    text,
                    data: Some(list),
                })
            }
            "graph_user_get" => {
                let found = self
                    .graph(
                        grant,
                        "GET /v1.0/users/{upn}",
                        self.graph.get_user(&grant.token, &email),
                    )
                    .await
                    .map_err(refusal)?;
                Ok(match found {
                    None => Reply {
                        text: format!("There is no user {email} in {TENANT}."),
                        data: Some(json!({"userPrincipalName": email, "found": false})),
                    },
                    Some(user) => Reply {
                        text: describe(&user, &email),
                        data: Some(user),
                    },
                })
            }
            "graph_user_create" => {
                let display_name = grant
                    .detail
                    .field("display_name")
                    .map(str::to_owned)
                    .unwrap_or_else(|| display_name_from(&email));
                let user = self
                    .graph(
                        grant,
                        "POST /v1.0/users",
                        self.graph.create_user(&grant.token, &email, &display_name),
                    )
                    .await
                    .map_err(refusal)?;
                Ok(Reply {
                    text: format!("Created {email} in {TENANT}."),
                    data: Some(user),
                })
            }
            other => Err(AgentError::Failed(format!(
                "the skill {other} has no implementation"
            ))),
        }
    }
}

impl Agent for Entra {
    fn card(&self, base_url: &str) -> AgentCard {
        AgentCard {
            name: "Entra specialist".into(),
            description: "Administers users in the Entra tenant through the Microsoft Graph users API, with a token minted for each operation and approved by the user where policy asks.".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            supported_interfaces: vec![AgentInterface { url: format!("{base_url}{RPC_PATH}"), protocol_binding: "JSONRPC".into(), protocol_version: "1.0".into() }],
            provider: None,
            capabilities: AgentCapabilities { streaming: Some(true), push_notifications: Some(false), extensions: vec![kit::rar::tool_schemas_extension(kit::rar::ENTRA)], ..Default::default() },
            security_schemes: [("bearer".to_owned(), json!({"httpAuthSecurityScheme": {"scheme": "Bearer", "bearerFormat": "JWT"}}))].into(),
            security_requirements: vec![json!({"schemes": {"bearer": {"list": []}}})],
            default_input_modes: vec!["application/json".into()],
            default_output_modes: vec!["text/plain".into(), "application/json".into()],
            skills: SKILLS.iter().map(Skill::card).collect(),
        }
    }

    async fn refused(&self, error: &GuardError, method: &str) {
        self.rt.refused(error, method).await;
    }

    async fn run(&self, call: ToolCall, task: TaskHandle) -> Result<Reply, AgentError> {
        let detail = match skills::authorization(&call) {
            Ok((_, d)) => d,
            Err(why) => return Err(self.rt.refuse_arguments(&task, &call.skill, why).await),
        };
        let summary = detail.summary();
        task.working(format!(
            "Asking the identity provider for a token for the Graph API: {summary}"
        ));
        let grant = self
            .rt
            .grant(&task, GRAPH_AUDIENCE, detail, &self.attacks)
            .await?;
        task.working(format!("Calling {TENANT}: {summary}"));
        self.perform(&grant).await
    }
}

/// A Graph failure in plain words: a refusal by the tenant is the task's rejection (with its
/// reason); anything else is a failure.
fn refusal(e: GraphError) -> AgentError {
    match &e {
        // 400 is how Graph says "that userPrincipalName is taken", among other refusals.
        GraphError::Api { status, .. }
            if matches!(status.as_u16(), 400 | 401 | 403 | 404 | 409) =>
        {
            AgentError::Rejected(format!("{TENANT} refused: {e}"))
        }
        GraphError::Api { status, code, .. } => AgentError::Failed(format!(
            "{TENANT} answered HTTP {} {code}: {e}",
            status.as_u16()
        )),
        GraphError::Unavailable(_) => AgentError::Failed(e.to_string()),
    }
}

/// One user in a sentence: "sarah.smith@example.com is in Entra: Sarah Smith, enabled."
fn describe(user: &Value, email: &str) -> String {
    let name = user["displayName"].as_str().unwrap_or(email);
    let enabled = if user["accountEnabled"].as_bool().unwrap_or(false) {
        "enabled"
    } else {
        "disabled"
    };
    format!("{email} is in {TENANT}: {name}, {enabled}.")
}

/// "sarah.smith@example.com" → "Sarah Smith", for a create that names no display name.
pub fn display_name_from(email: &str) -> String {
    let local = email.split('@').next().unwrap_or(email);
    let words: Vec<String> = local
        .split(['.', '_', '-', '+'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect())
                .unwrap_or_default()
        })
        .collect();
    if words.is_empty() {
        email.to_owned()
    } else {
        words.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use reqwest::StatusCode;

    use super::*;

    #[test]
    fn display_names_come_from_the_address() {
        assert_eq!(display_name_from("sarah.smith@example.com"), "Sarah Smith");
        assert_eq!(display_name_from("bob@example.com"), "Bob");
    }

    #[test]
    fn a_user_reads_as_a_sentence() {
        let user = json!({"userPrincipalName": "sarah.smith@example.com", "displayName": "Sarah Smith", "accountEnabled": true});
        assert_eq!(
            describe(&user, "sarah.smith@example.com"),
            "sarah.smith@example.com is in Entra: Sarah Smith, enabled."
        );
    }

    #[test]
    fn the_tenant_s_refusals_reject_and_its_failures_fail() {
        let api = |status: StatusCode| GraphError::Api {
            status,
            code: "Authorization_RequestDenied".into(),
            message: "why".into(),
        };
        assert!(
            matches!(refusal(api(StatusCode::FORBIDDEN)), AgentError::Rejected(m) if m == "Entra refused: why")
        );
        assert!(matches!(
            refusal(api(StatusCode::SERVICE_UNAVAILABLE)),
            AgentError::Failed(_)
        ));
        assert!(matches!(
            refusal(GraphError::Unavailable("down".into())),
            AgentError::Failed(_)
        ));
    }
}
