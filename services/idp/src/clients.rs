//! OAuth clients (the web app, the issuer's introspection client, CIBA clients), loaded from
//! `infra/clients.toml`. Agents are not listed here: they authenticate with their own keys
//! (`private_key_jwt`) and live in the agent registry.

use std::{collections::HashMap, path::Path};

use anyhow::Context as _;
use serde::Deserialize;
use subtle::ConstantTimeEq as _;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    pub id: String,
    secret: String,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub grant_types: Vec<String>,
    /// Audiences this client's user tokens may carry; the first is the default. `{issuer}`
    /// stands for the idp itself (the user's own APIs: approvals, sessions).
    #[serde(default)]
    pub audiences: Vec<String>,
    /// The one actor allowed to delegate for users of this client (`may_act.sub`).
    #[serde(default)]
    pub may_act: Option<String>,
}

impl Client {
    pub fn secret_matches(&self, presented: &str) -> bool {
        self.secret.as_bytes().ct_eq(presented.as_bytes()).into()
    }

    pub fn allows_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }

    /// Exact match, except that for loopback redirect URIs the port may differ (RFC 8252 §7.3):
    /// the demo and the tests run the web app on whatever port is free.
    pub fn redirect_allowed(&self, uri: &str) -> bool {
        let Ok(asked) = url::Url::parse(uri) else {
            return false;
        };
        if asked.fragment().is_some() {
            return false;
        }
        self.redirect_uris.iter().any(|r| {
            if r == uri {
                return true;
            }
            let Ok(reg) = url::Url::parse(r) else {
                return false;
            };
            let loopback = matches!(reg.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
            loopback
                && reg.scheme() == asked.scheme()
                && reg.host_str() == asked.host_str()
                && reg.path() == asked.path()
                && reg.query() == asked.query()
        })
    }
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// All configured clients, by id.
#[derive(Clone, Default)]
pub struct Clients(HashMap<String, Client>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    client: Vec<Client>,
}

impl Clients {
    pub fn load(path: &Path, issuer: &str) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let file: File =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let mut map = HashMap::new();
        for mut c in file.client {
            for a in &mut c.audiences {
                *a = a.replace("{issuer}", issuer);
            }
            anyhow::ensure!(
                c.secret.len() >= 12,
                "client {} needs a secret of at least 12 characters",
                c.id
            );
            map.insert(c.id.clone(), c);
        }
        Ok(Self(map))
    }

    pub fn get(&self, id: &str) -> Option<&Client> {
        self.0.get(id)
    }
}
