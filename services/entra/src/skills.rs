//! The agent's skills, one per `urn:smt:agent:entra` action, and the one rule that ties a tool
//! call to its authority: the call's arguments are exactly the RAR `operationDetails` fields of
//! that action (minus `action`), so the entry this agent asks the idp for is the call itself.

use kit::{
    a2a::{AgentSkill, ToolCall},
    rar::{self, AuthorizationDetail},
};
use serde_json::Value;

/// One skill: its id is the RAR action it performs.
#[derive(Debug)]
pub struct Skill {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    /// The `operationDetails` fields its arguments may carry (the catalogue in `kit::rar` says
    /// which are required and what each must look like).
    pub fields: &'static [&'static str],
    pub example: &'static str,
    pub writes: bool,
}

/// Every skill, in the order the card lists them.
pub static SKILLS: &[Skill] = &[
    Skill {
        id: "graph_user_list",
        name: "List Entra users",
        description: "Lists the users of the Entra tenant.",
        fields: &[],
        example: "Who are the users in Entra?",
        writes: false,
    },
    Skill {
        id: "graph_user_get",
        name: "Get an Entra user",
        description: "Reads one user by email (their userPrincipalName).",
        fields: &["email"],
        example: "Show me sarah.smith@example.com in Entra.",
        writes: false,
    },
    Skill {
        id: "graph_user_create",
        name: "Create an Entra user",
        description: "Creates an enabled user whose userPrincipalName is that email, with that display name.",
        fields: &["email", "display_name"],
        example: "Create sarah.smith@example.com in Entra.",
        writes: true,
    },
];

impl Skill {
    pub fn find(id: &str) -> Option<&'static Skill> {
        SKILLS.iter().find(|s| s.id == id)
    }

    /// The skill as the agent card lists it.
    pub fn card(&self) -> AgentSkill {
        AgentSkill {
            id: self.id.into(),
            name: self.name.into(),
            description: format!(
                "{} Arguments: {}.",
                self.description,
                arguments_text(self.fields)
            ),
            tags: vec![
                "identity".into(),
                "graph".into(),
                if self.writes { "write" } else { "read" }.into(),
            ],
            examples: vec![self.example.into()],
        }
    }
}

fn arguments_text(fields: &[&str]) -> String {
    if fields.is_empty() {
        "none".into()
    } else {
        fields.join(", ")
    }
}

/// The validated, normalized RAR entry a tool call asks for (emails lower-cased): what hop 2
/// requests and what the SCIM API will hold the token to. `Err` says, in words, what is wrong.
pub fn authorization(call: &ToolCall) -> Result<(&'static Skill, AuthorizationDetail), String> {
    let skill =
        Skill::find(&call.skill).ok_or_else(|| format!("there is no skill {}", call.skill))?;
    let arguments = match &call.arguments {
        Value::Null => Default::default(),
        Value::Object(m) => m.clone(),
        _ => return Err("the arguments must be a JSON object".into()),
    };
    let mut fields = Vec::with_capacity(arguments.len());
    for (name, value) in arguments {
        let field = skill.fields.iter().find(|f| **f == name).ok_or_else(|| {
            format!(
                "{} takes no argument {name} (it takes: {})",
                skill.id,
                arguments_text(skill.fields)
            )
        })?;
        fields.push((*field, value));
    }
    let detail = AuthorizationDetail::operation(rar::ENTRA, skill.id, fields)
        .validated()
        .map_err(|e| e.to_string())?;
    Ok((skill, detail))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn call(skill: &str, arguments: Value) -> ToolCall {
        ToolCall {
            skill: skill.into(),
            arguments,
        }
    }

    #[test]
    fn every_skill_is_an_action_of_the_catalogue() {
        let actions = rar::actions_of(rar::ENTRA);
        assert_eq!(SKILLS.len(), actions.len());
        assert!(SKILLS.iter().all(|s| actions.contains(&s.id)));
    }

    #[test]
    fn arguments_become_the_normalized_entry() {
        let (_, d) = authorization(&call(
            "graph_user_create",
            json!({"email": "Sarah.Smith@Example.com", "display_name": "Sarah Smith"}),
        ))
        .unwrap();
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            json!({"type": rar::ENTRA, "operationDetails": {"action": "graph_user_create", "email": "sarah.smith@example.com", "display_name": "Sarah Smith"}})
        );
        let (_, d) = authorization(&call("graph_user_list", Value::Null)).unwrap();
        assert_eq!(d.action(), Some("graph_user_list"));
    }

    #[test]
    fn anything_beyond_the_action_s_fields_is_refused() {
        let e = authorization(&call(
            "graph_user_get",
            json!({"email": "bob@example.com", "group": "admins"}),
        ))
        .unwrap_err();
        assert!(e.contains("takes no argument group"), "{e}");
        let e = authorization(&call(
            "graph_user_get",
            json!({"email": "bob@example.com", "action": "graph_user_create"}),
        ))
        .unwrap_err();
        assert!(e.contains("takes no argument action"), "{e}");
        let e = authorization(&call("graph_user_get", json!({}))).unwrap_err();
        assert!(e.contains("email is required"), "{e}");
        assert!(authorization(&call("graph_user_get", json!(["bob@example.com"]))).is_err());
        assert!(authorization(&call("delete_user", json!({"email": "bob@example.com"}))).is_err());
    }
}
