//! The iam specialist: for each tool call, one delegation hop (the token the concierge gave us →
//! a token for the SCIM API carrying exactly this operation), then the SCIM requests of that one
//! operation, made with that token, each recorded as a security event.
//!
//! The agent holds no standing credential for the directory. If the policy says no, or the user
//! does, or the SCIM API does, it reports that refusal in plain words and changes nothing.

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
    scim::{Scim, ScimError},
    skills::{self, SKILLS, Skill},
};

/// The audience of hop 2: the idp's SCIM API (`audiences = ["scim"]` in the agent registry).
pub const SCIM_AUDIENCE: &str = "scim";

/// What the directory is called in replies.
const DIRECTORY: &str = "Verify";

pub struct Iam {
    rt: Runtime,
    /// The S6 attack toggles this agent takes (off unless configured): hop 2 asking for more,
    /// or with a forged token (`kit::agent::attack`).
    attacks: Toggles,
    scim: Scim,
}

impl std::fmt::Debug for Iam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iam")
            .field("scim", &self.scim)
            .finish_non_exhaustive()
    }
}

impl Iam {
    pub fn new(rt: Runtime, scim: Scim, attacks: Toggles) -> Self {
        Self { rt, scim, attacks }
    }

    pub fn runtime(&self) -> &Runtime {
        &self.rt
    }

    /// One request to the SCIM API, timed and recorded with the token's `jti`.
    async fn scim<T>(
        &self,
        grant: &Grant,
        request: &str,
        call: impl Future<Output = Result<T, ScimError>>,
    ) -> Result<T, ScimError> {
        let started = Instant::now();
        let result = call.await;
        let outcome = match &result {
            Ok(_) => Outcome::Allowed,
            Err(e)
                if e.status()
                    .is_some_and(|s| matches!(s.as_u16(), 401 | 403 | 409)) =>
            {
                Outcome::Denied
            }
            Err(_) => Outcome::Error,
        };
        let mut e = self.rt.event_for_grant("scim_call", outcome, grant);
        if let Err(err) = &result {
            e.reason = Some(match err.status() {
                Some(s) => format!("{request}: HTTP {}: {err}", s.as_u16()),
                None => format!("{request}: {err}"),
            });
        }
        self.rt.emit(e.timed(started)).await;
        result
    }

    /// The user's SCIM resource, looked up by email under the operation's own token.
    async fn user(&self, grant: &Grant) -> Result<Value, AgentError> {
        let email = grant.field("email");
        self.scim(
            grant,
            "GET /Users?filter=userName",
            self.scim.find_user(&grant.token, email),
        )
        .await
        .map_err(refusal)?
        .ok_or_else(|| AgentError::Rejected(format!("There is no user {email} in {DIRECTORY}.")))
    }

    /// Carries out the granted operation.
    async fn perform(&self, grant: &Grant) -> Result<Reply, AgentError> {
        let email = grant.field("email").to_owned();
        let action = grant.detail.action().unwrap_or_default();
        match action {
            "list_users" => {
                let list = self
                    .scim(grant, "GET /Users", self.scim.list_users(&grant.token))
                    .await
                    .map_err(refusal)?;
                let names: Vec<&str> = resources(&list)
                    .iter()
                    .filter_map(|u| u.get("userName").and_then(Value::as_str))
                    .collect();
                let total = list
                    .get("totalResults")
                    .and_then(Value::as_u64)
                    .unwrap_or(names.len() as u64);
                let text = format!(
                    "{DIRECTORY} has {total} user{}: {}.",
                    if total == 1 { "" } else { "s" },
                    names.join(", ")
                );
                Ok(Reply {
                    text,
                    data: Some(list),
                })
            }
            "get_user" => {
                let found = self
                    .scim(
                        grant,
                        "GET /Users?filter=userName",
                        self.scim.find_user(&grant.token, &email),
                    )
                    .await
                    .map_err(refusal)?;
                Ok(match found {
                    None => Reply {
                        text: format!("There is no user {email} in {DIRECTORY}."),
                        data: Some(json!({"userName": email, "found": false})),
                    },
                    Some(user) => Reply {
                        text: describe(&user, &email),
                        data: Some(user),
                    },
                })
            }
            "create_user" => {
                let display_name = grant
                    .detail
                    .field("display_name")
                    .map(str::to_owned)
                    .unwrap_or_else(|| display_name_from(&email));
                let user = self
                    .scim(
                        grant,
                        "POST /Users",
                        self.scim.create_user(&grant.token, &email, &display_name),
                    )
                    .await
                    .map_err(refusal)?;
                Ok(Reply {
                    text: format!("Created {email} in {DIRECTORY}."),
                    data: Some(user),
                })
            }
            "add_user_to_group" => {
                let group_name = grant.detail.field("group").unwrap_or_default().to_owned();
                let user = self.user(grant).await?;
                let group = self
                    .scim(
                        grant,
                        "GET /Groups?filter=displayName",
                        self.scim.find_group(&grant.token, &group_name),
                    )
                    .await
                    .map_err(refusal)?
                    .ok_or_else(|| {
                        AgentError::Rejected(format!(
                            "There is no group {group_name} in {DIRECTORY}."
                        ))
                    })?;
                let group = self
                    .scim(
                        grant,
                        "PATCH /Groups/{id}",
                        self.scim.add_member(&grant.token, id(&group)?, id(&user)?),
                    )
                    .await
                    .map_err(refusal)?;
                Ok(Reply {
                    text: format!("Added {email} to the group {group_name} in {DIRECTORY}."),
                    data: Some(group),
                })
            }
            "deactivate_user" => {
                let user = self.user(grant).await?;
                let user = self
                    .scim(
                        grant,
                        "PATCH /Users/{id}",
                        self.scim.deactivate(&grant.token, id(&user)?),
                    )
                    .await
                    .map_err(refusal)?;
                Ok(Reply {
                    text: format!(
                        "Deactivated {email} in {DIRECTORY}; every one of their sessions has ended."
                    ),
                    data: Some(user),
                })
            }
            "revoke_user_sessions" => {
                let user = self.user(grant).await?;
                let answer = self
                    .scim(
                        grant,
                        "DELETE /Users/{id}/sessions",
                        self.scim.revoke_sessions(&grant.token, id(&user)?),
                    )
                    .await
                    .map_err(refusal)?;
                let n = answer
                    .get("revokedSessions")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                let text = match n {
                    0 => format!("{email} had no open session in {DIRECTORY}; nothing to end."),
                    1 => format!("Ended the one session of {email} in {DIRECTORY}."),
                    n => format!("Ended {n} sessions of {email} in {DIRECTORY}."),
                };
                Ok(Reply {
                    text,
                    data: Some(answer),
                })
            }
            "delete_user" => {
                let user = self.user(grant).await?;
                self.scim(
                    grant,
                    "DELETE /Users/{id}",
                    self.scim.delete_user(&grant.token, id(&user)?),
                )
                .await
                .map_err(refusal)?;
                Ok(Reply {
                    text: format!("Deleted {email} from {DIRECTORY}."),
                    data: Some(json!({"userName": email, "deleted": true})),
                })
            }
            "grant_admin_role" => {
                let user = self.user(grant).await?;
                let user = self
                    .scim(
                        grant,
                        "PATCH /Users/{id}",
                        self.scim.grant_admin(&grant.token, id(&user)?),
                    )
                    .await
                    .map_err(refusal)?;
                Ok(Reply {
                    text: format!("Granted the admin role to {email} in {DIRECTORY}."),
                    data: Some(user),
                })
            }
            other => Err(AgentError::Failed(format!(
                "the skill {other} has no implementation"
            ))),
        }
    }
}

impl Agent for Iam {
    fn card(&self, base_url: &str) -> AgentCard {
        AgentCard {
            name: "IAM specialist".into(),
            description: "Administers users and groups in the Verify directory over SCIM 2.0, with a token minted for each operation and approved by the user where policy asks.".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            supported_interfaces: vec![AgentInterface { url: format!("{base_url}{RPC_PATH}"), protocol_binding: "JSONRPC".into(), protocol_version: "1.0".into() }],
            provider: None,
            capabilities: AgentCapabilities { streaming: Some(true), push_notifications: Some(false), extensions: vec![kit::rar::tool_schemas_extension(kit::rar::IAM)], ..Default::default() },
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
            "Asking the identity provider for a token for {DIRECTORY}'s SCIM API: {summary}"
        ));
        let grant = self
            .rt
            .grant(&task, SCIM_AUDIENCE, detail, &self.attacks)
            .await?;
        task.working(format!("Calling {DIRECTORY}: {summary}"));
        self.perform(&grant).await
    }
}

/// A SCIM failure in plain words: a refusal by the directory is the task's rejection (with its
/// reason); anything else is a failure.
fn refusal(e: ScimError) -> AgentError {
    match &e {
        ScimError::Api { status, .. } if matches!(status.as_u16(), 401 | 403 | 404 | 409) => {
            AgentError::Rejected(format!("{DIRECTORY} refused: {e}"))
        }
        ScimError::Api { status, .. } => AgentError::Failed(format!(
            "{DIRECTORY} answered HTTP {}: {e}",
            status.as_u16()
        )),
        ScimError::Unavailable(_) => AgentError::Failed(e.to_string()),
    }
}

fn id(resource: &Value) -> Result<&str, AgentError> {
    resource
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| AgentError::Failed(format!("{DIRECTORY} answered a resource without an id")))
}

fn resources(list: &Value) -> &[Value] {
    list.get("Resources")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// One user in a sentence: "bob@example.com is in Verify: Bob, active, in the groups traders."
fn describe(user: &Value, email: &str) -> String {
    let name = user
        .get("displayName")
        .and_then(Value::as_str)
        .unwrap_or(email);
    let active = if user.get("active").and_then(Value::as_bool).unwrap_or(false) {
        "active"
    } else {
        "inactive"
    };
    let groups: Vec<&str> = user
        .get("groups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|g| g.get("display").and_then(Value::as_str))
        .collect();
    let groups = match groups.as_slice() {
        [] => "in no group".to_owned(),
        [one] => format!("in the group {one}"),
        many => format!("in the groups {}", many.join(", ")),
    };
    format!("{email} is in {DIRECTORY}: {name}, {active}, {groups}.")
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
        assert_eq!(display_name_from("j_doe+test@example.com"), "J Doe Test");
    }

    #[test]
    fn a_user_reads_as_a_sentence() {
        let user = json!({"userName": "bob@example.com", "displayName": "Bob", "active": false, "groups": [{"display": "traders"}]});
        assert_eq!(
            describe(&user, "bob@example.com"),
            "bob@example.com is in Verify: Bob, inactive, in the group traders."
        );
    }

    #[test]
    fn the_directory_s_refusals_reject_and_its_failures_fail() {
        let api = |status: StatusCode| ScimError::Api {
            status,
            scim_type: None,
            detail: "why".into(),
        };
        assert!(
            matches!(refusal(api(StatusCode::FORBIDDEN)), AgentError::Rejected(m) if m == "Verify refused: why")
        );
        assert!(matches!(
            refusal(api(StatusCode::CONFLICT)),
            AgentError::Rejected(_)
        ));
        assert!(matches!(
            refusal(api(StatusCode::INTERNAL_SERVER_ERROR)),
            AgentError::Failed(_)
        ));
        assert!(matches!(
            refusal(ScimError::Unavailable("down".into())),
            AgentError::Failed(_)
        ));
    }
}
