//! The tools a planner may ask for: every skill on the specialists' agent cards, with the JSON
//! Schema of its arguments from the card's `urn:smt:a2a:tool-schemas` extension. The cards are
//! the only source, so a specialist that adds a skill (and its schema) offers a new tool without
//! a change here.

use kit::{a2a::AgentCard, rar::TOOL_SCHEMAS_EXTENSION};
use serde_json::{Value, json};

use super::{Specialist, Step};

/// One callable tool: a skill of one specialist.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    /// What the model calls it: the skill id, or `<agent>_<skill>` if two specialists share an id.
    pub name: String,
    pub agent: Specialist,
    pub skill: String,
    pub description: String,
    /// JSON Schema of the arguments (`{"type": "object"}` if the card publishes none; the
    /// arguments are validated against the RAR catalogue either way).
    pub parameters: Value,
}

/// The tools on offer for one message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Toolbox {
    tools: Vec<Tool>,
}

impl Toolbox {
    /// The tools the given cards offer, in card order.
    pub fn from_cards(cards: &[(Specialist, AgentCard)]) -> Self {
        let mut tools = vec![];
        for (agent, card) in cards {
            let schemas = card
                .capabilities
                .extensions
                .iter()
                .find(|e| e.get("uri").and_then(Value::as_str) == Some(TOOL_SCHEMAS_EXTENSION))
                .and_then(|e| e.get("params"));
            for skill in &card.skills {
                let parameters = schemas
                    .and_then(|s| s.get(&skill.id))
                    .filter(|s| s.is_object())
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object"}));
                tools.push(Tool {
                    name: skill.id.clone(),
                    agent: *agent,
                    skill: skill.id.clone(),
                    description: format!("{} (the {} agent)", skill.description, agent.display()),
                    parameters,
                });
            }
        }
        // A model addresses tools by name alone: qualify the names two specialists share.
        let shared: Vec<String> = tools
            .iter()
            .filter(|t| tools.iter().filter(|u| u.name == t.name).count() > 1)
            .map(|t| t.name.clone())
            .collect();
        for t in &mut tools {
            if shared.contains(&t.name) {
                t.name = format!("{}_{}", t.agent.name(), t.skill);
            }
        }
        Self { tools }
    }

    pub fn tools(&self) -> &[Tool] {
        &self.tools
    }

    pub fn find(&self, name: &str) -> Option<&Tool> {
        self.tools.iter().find(|t| t.name == name)
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }
}

impl Tool {
    /// This tool called with `arguments`.
    pub fn step(&self, arguments: Value) -> Step {
        Step::new(self.agent, &self.skill, arguments)
    }
}

/// Cards for tests, without a running specialist.
#[cfg(test)]
pub(crate) mod testing {
    use kit::a2a::{AgentCapabilities, AgentCard, AgentSkill};
    use serde_json::Value;

    use super::{Specialist, Toolbox};

    pub(crate) fn card(skills: &[&str], extensions: Vec<Value>) -> AgentCard {
        AgentCard {
            name: "x".into(),
            description: "x".into(),
            version: "1".into(),
            supported_interfaces: vec![],
            provider: None,
            capabilities: AgentCapabilities {
                extensions,
                ..Default::default()
            },
            security_schemes: Default::default(),
            security_requirements: vec![],
            default_input_modes: vec![],
            default_output_modes: vec![],
            skills: skills
                .iter()
                .map(|id| AgentSkill {
                    id: (*id).into(),
                    name: (*id).into(),
                    description: format!("does {id}"),
                    tags: vec![],
                    examples: vec![],
                })
                .collect(),
        }
    }

    /// Every specialist's skills with the schemas the real cards publish.
    pub(crate) fn toolbox() -> Toolbox {
        let cards: Vec<_> = Specialist::ALL
            .iter()
            .map(|s| {
                let kind = s.rar_type();
                (
                    *s,
                    card(
                        &kit::rar::actions_of(kind),
                        vec![kit::rar::tool_schemas_extension(kind)],
                    ),
                )
            })
            .collect();
        Toolbox::from_cards(&cards)
    }
}

#[cfg(test)]
mod tests {
    use super::{testing::card, *};

    #[test]
    fn schemas_come_from_the_cards_extension() {
        let banking = card(
            &["transfer_funds", "get_balance"],
            vec![kit::rar::tool_schemas_extension(kit::rar::BANKING)],
        );
        let other = card(&["get_balance", "mystery"], vec![]);
        let tb = Toolbox::from_cards(&[(Specialist::Banking, banking), (Specialist::Entra, other)]);
        let transfer = tb.find("transfer_funds").unwrap();
        assert_eq!(transfer.agent, Specialist::Banking);
        assert_eq!(
            transfer.parameters["required"],
            json!(["amount", "source", "destination"])
        );
        // Shared ids are qualified; skills without a schema still get an object schema.
        assert!(tb.find("get_balance").is_none());
        assert_eq!(tb.find("banking_get_balance").unwrap().skill, "get_balance");
        assert_eq!(
            tb.find("entra_get_balance").unwrap().agent,
            Specialist::Entra
        );
        assert_eq!(
            tb.find("mystery").unwrap().parameters,
            json!({"type": "object"})
        );
    }
}
