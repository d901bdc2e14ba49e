//! The agent registry: which agents exist, how each proves who it is (its public key), which
//! audiences it may ask for, its ceiling, whose actor it may become, and whether it is active.
//!
//! Seeded from `infra/agents.toml` at start (definitions are refreshed, a suspension made over
//! the admin API is kept), stored in Postgres so replicas agree, managed over the admin API.

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, RwLock},
};

use anyhow::Context as _;
use jsonwebtoken::{DecodingKey, jwk::Jwk};
use kit::rar::CeilingEntry;
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;

/// `acts_for` entry meaning "may act directly for a signed-in user".
pub const ACTS_FOR_USER: &str = "user";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Active,
    Suspended,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Suspended => "suspended",
        }
    }
}

/// A registered agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Agent {
    pub name: String,
    /// Workload identity: `spiffe://demo.local/agent/<name>`; the `sub` of its actor tokens.
    pub spiffe_id: String,
    pub public_jwk: Jwk,
    /// What it may ask tokens for: other agents' SPIFFE ids, or resource names (`verify-rar`).
    pub audiences: Vec<String>,
    /// The most it can ever be granted, whatever a user approves.
    pub ceiling: Vec<CeilingEntry>,
    /// Whose actor it may become: `user` (directly for a signed-in user) or other agents' names.
    pub acts_for: Vec<String>,
    #[serde(default)]
    pub status: Status,
}

impl Agent {
    pub fn decoding_key(&self) -> anyhow::Result<DecodingKey> {
        Ok(DecodingKey::from_jwk(&self.public_jwk)?)
    }

    /// May this agent become the actor when `current_actor` (an agent name, or `None` for the
    /// user's own token) is the subject token's actor?
    pub fn may_act_for(&self, current_actor: Option<&str>) -> bool {
        let wanted = current_actor.unwrap_or(ACTS_FOR_USER);
        self.acts_for.iter().any(|a| a == wanted)
    }

    fn from_row(row: &Row) -> anyhow::Result<Self> {
        let status: String = row.try_get("status")?;
        Ok(Self {
            name: row.try_get("name")?,
            spiffe_id: row.try_get("spiffe_id")?,
            public_jwk: serde_json::from_value(row.try_get("public_jwk")?)?,
            audiences: serde_json::from_value(row.try_get("audiences")?)?,
            ceiling: serde_json::from_value(row.try_get("ceiling")?)?,
            acts_for: serde_json::from_value(row.try_get("acts_for")?)?,
            status: if status == "active" {
                Status::Active
            } else {
                Status::Suspended
            },
        })
    }
}

/// One `[[agent]]` of `agents.toml`. Without an inline `public_jwk`, the key is read from
/// `<keys_dir>/<name>.jwk.json` (what the stack writes when it makes dev keys).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Seed {
    name: String,
    spiffe_id: String,
    #[serde(default)]
    public_jwk: Option<Jwk>,
    audiences: Vec<String>,
    ceiling: Vec<CeilingEntry>,
    acts_for: Vec<String>,
    #[serde(default)]
    status: Status,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedFile {
    #[serde(default)]
    agent: Vec<Seed>,
}

/// Loads `file` and writes every agent into the registry. An agent whose key is not there yet is
/// skipped with a warning (it cannot authenticate anyway).
pub async fn seed(
    client: &tokio_postgres::Client,
    file: &Path,
    keys_dir: &Path,
) -> anyhow::Result<usize> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let seeds: SeedFile =
        toml::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
    let mut n = 0;
    for s in seeds.agent {
        let jwk = match s.public_jwk {
            Some(j) => j,
            None => {
                let path = keys_dir.join(format!("{}.jwk.json", s.name));
                match std::fs::read_to_string(&path) {
                    Ok(t) => serde_json::from_str(&t)
                        .with_context(|| format!("parsing {}", path.display()))?,
                    Err(_) => {
                        tracing::warn!(agent = %s.name, path = %path.display(), "no public key; agent not registered");
                        continue;
                    }
                }
            }
        };
        let agent = Agent {
            name: s.name,
            spiffe_id: s.spiffe_id,
            public_jwk: jwk,
            audiences: s.audiences,
            ceiling: s.ceiling,
            acts_for: s.acts_for,
            status: s.status,
        };
        upsert(client, &agent, false).await?;
        n += 1;
    }
    Ok(n)
}

/// Inserts or updates an agent. `set_status` false keeps an existing row's status, so a
/// restart does not undo a suspension.
pub async fn upsert(
    client: &tokio_postgres::Client,
    a: &Agent,
    set_status: bool,
) -> anyhow::Result<()> {
    agent_is_valid(a)?;
    client
        .execute(
            "INSERT INTO agents (name, spiffe_id, public_jwk, audiences, ceiling, acts_for, status)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (name) DO UPDATE SET spiffe_id = $2, public_jwk = $3, audiences = $4, ceiling = $5,
                 acts_for = $6, status = CASE WHEN $8 THEN $7 ELSE agents.status END, updated_at = now()",
            &[
                &a.name,
                &a.spiffe_id,
                &serde_json::to_value(&a.public_jwk)?,
                &serde_json::to_value(&a.audiences)?,
                &serde_json::to_value(&a.ceiling)?,
                &serde_json::to_value(&a.acts_for)?,
                &a.status.as_str(),
                &set_status,
            ],
        )
        .await?;
    Ok(())
}

fn agent_is_valid(a: &Agent) -> anyhow::Result<()> {
    anyhow::ensure!(
        !a.name.is_empty()
            && a.name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
        "agent name must be lower-case letters, digits and -"
    );
    anyhow::ensure!(
        a.spiffe_id.starts_with("spiffe://"),
        "spiffe_id must be a spiffe:// URI"
    );
    a.decoding_key()
        .context("public_jwk is not a usable EC P-256 key")?;
    Ok(())
}

pub async fn by_spiffe_id(
    client: &tokio_postgres::Client,
    id: &str,
) -> anyhow::Result<Option<Agent>> {
    client
        .query_opt("SELECT * FROM agents WHERE spiffe_id = $1", &[&id])
        .await?
        .as_ref()
        .map(Agent::from_row)
        .transpose()
}

pub async fn by_name(client: &tokio_postgres::Client, name: &str) -> anyhow::Result<Option<Agent>> {
    client
        .query_opt("SELECT * FROM agents WHERE name = $1", &[&name])
        .await?
        .as_ref()
        .map(Agent::from_row)
        .transpose()
}

pub async fn list(client: &tokio_postgres::Client) -> anyhow::Result<Vec<Agent>> {
    client
        .query("SELECT * FROM agents ORDER BY name", &[])
        .await?
        .iter()
        .map(Agent::from_row)
        .collect()
}

/// An agent as the token endpoint needs it on every hop: its registry row, its public key
/// already parsed, and the row's version (`updated_at`, in microseconds) it was read at.
#[derive(Debug)]
pub struct Known {
    pub agent: Agent,
    pub key: DecodingKey,
    pub version: i64,
}

/// Agents by SPIFFE id, each read and its key parsed once. Never trusted on its own: every
/// use compares the cached version with the row's current one in the same statement that
/// consumes the actor token's `jti` (see `store::replay::consume`), and reloads on a
/// difference, so a suspension or a new key takes effect at the very next hop on every replica.
#[derive(Debug, Default)]
pub struct Cache {
    agents: RwLock<HashMap<String, Arc<Known>>>,
}

impl Cache {
    pub fn get(&self, spiffe_id: &str) -> Option<Arc<Known>> {
        self.agents
            .read()
            .ok()
            .and_then(|m| m.get(spiffe_id).cloned())
    }

    /// Reads the agent from the store into the cache; `None` when it is not registered.
    pub async fn load(
        &self,
        client: &tokio_postgres::Client,
        spiffe_id: &str,
    ) -> anyhow::Result<Option<Arc<Known>>> {
        let Some(row) = client
            .query_opt(
                "SELECT *, (extract(epoch FROM updated_at) * 1000000)::bigint AS version
                 FROM agents WHERE spiffe_id = $1",
                &[&spiffe_id],
            )
            .await?
        else {
            if let Ok(mut m) = self.agents.write() {
                m.remove(spiffe_id);
            }
            return Ok(None);
        };
        let agent = Agent::from_row(&row)?;
        let known = Arc::new(Known {
            key: agent.decoding_key()?,
            version: row.try_get("version")?,
            agent,
        });
        if let Ok(mut m) = self.agents.write() {
            m.insert(spiffe_id.to_owned(), known.clone());
        }
        Ok(Some(known))
    }
}

/// Is `aud` the SPIFFE id of a registered agent (as opposed to a resource such as `verify-rar`)?
pub async fn is_agent(client: &tokio_postgres::Client, aud: &str) -> anyhow::Result<bool> {
    Ok(client
        .query_opt("SELECT 1 FROM agents WHERE spiffe_id = $1", &[&aud])
        .await?
        .is_some())
}

pub async fn set_status(
    client: &tokio_postgres::Client,
    name: &str,
    status: Status,
) -> anyhow::Result<bool> {
    Ok(client
        .execute(
            "UPDATE agents SET status = $2, updated_at = now() WHERE name = $1",
            &[&name, &status.as_str()],
        )
        .await?
        == 1)
}
