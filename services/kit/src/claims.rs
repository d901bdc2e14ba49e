//! Token claim types shared by every service: user access tokens, delegated tokens and agents'
//! actor tokens.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::rar::AuthorizationDetail;

/// `typ` header of access tokens (RFC 9068).
pub const TYP_ACCESS: &str = "at+jwt";
/// `typ` header of agents' actor tokens (the JWT-SVID shape).
pub const TYP_ACTOR: &str = "JWT";

/// The `act` claim (RFC 8693 §4.1): the current actor, with prior actors nested inside.
/// `{sub: banking, act: {sub: concierge}}` reads "banking acts for concierge".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Actor>>,
}

impl Actor {
    /// A new current actor `sub` in front of the chain `prior`.
    pub fn nest(sub: impl Into<String>, prior: Option<&Actor>) -> Self {
        Self {
            sub: sub.into(),
            act: prior.map(|a| Box::new(a.clone())),
        }
    }

    /// Actor ids from the current actor to the least recent one.
    pub fn chain(&self) -> Vec<&str> {
        let mut out = vec![self.sub.as_str()];
        let mut next = self.act.as_deref();
        while let Some(a) = next {
            out.push(a.sub.as_str());
            next = a.act.as_deref();
        }
        out
    }

    pub fn depth(&self) -> usize {
        self.chain().len()
    }
}

/// The `may_act` claim: the one party allowed to become the actor for this token's subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MayAct {
    pub sub: String,
}

/// An `aud` claim: one string or an array of strings on the wire; a list in code.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Audience(pub Vec<String>);

impl Audience {
    pub fn one(aud: impl Into<String>) -> Self {
        Self(vec![aud.into()])
    }
    pub fn contains(&self, aud: &str) -> bool {
        self.0.iter().any(|a| a == aud)
    }
}

impl Serialize for Audience {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => s.serialize_str(one),
            many => many.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        Ok(match OneOrMany::deserialize(d)? {
            OneOrMany::One(a) => Self(vec![a]),
            OneOrMany::Many(v) => Self(v),
        })
    }
}

/// Claims of every access token the idp issues: the user's own, and each delegated hop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    /// The user the token acts for, at every hop.
    pub sub: String,
    pub aud: Audience,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    /// The user's sign-in session; the token dies with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Authentication context class; raised once the user approves on their phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub may_act: Option<MayAct>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_details: Option<Vec<AuthorizationDetail>>,
    /// The push approval this token was minted under, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
}

impl AccessClaims {
    /// The actor chain from the current actor to the user, e.g. `["banking", "concierge", "alice@example.com"]`.
    pub fn chain_names(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .act
            .as_ref()
            .map(|a| {
                a.chain()
                    .into_iter()
                    .map(|s| short_name(s).to_owned())
                    .collect()
            })
            .unwrap_or_default();
        out.push(self.email.clone().unwrap_or_else(|| self.sub.clone()));
        out
    }

    pub fn rar(&self) -> &[AuthorizationDetail] {
        self.authorization_details.as_deref().unwrap_or(&[])
    }
}

/// Claims of an agent's actor token: a JWT-SVID-shaped assertion of the agent's own identity,
/// signed by its own key, addressed to the idp, short-lived and single-use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// The agent's SPIFFE id.
    pub sub: String,
    pub aud: Audience,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
}

/// Longest lifetime an actor token may declare (`exp - iat`).
pub const ACTOR_TOKEN_MAX_LIFETIME_SECS: i64 = 300;

/// The readable name of an actor id: the last path segment of a SPIFFE id
/// (`spiffe://demo.local/agent/banking` → `banking`), or the id itself.
pub fn short_name(id: &str) -> &str {
    if id.starts_with("spiffe://") {
        id.rsplit('/').next().unwrap_or(id)
    } else {
        id
    }
}

/// Renders a chain for people: `banking ← concierge ← alice@example.com`.
pub fn chain_display(chain: &[String]) -> String {
    chain.join(" ← ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn act_chain_nests_most_recent_outermost() {
        let t1 = Actor::nest("spiffe://demo.local/agent/concierge", None);
        let t2 = Actor::nest("spiffe://demo.local/agent/banking", Some(&t1));
        assert_eq!(
            serde_json::to_value(&t2).unwrap(),
            serde_json::json!({"sub":"spiffe://demo.local/agent/banking","act":{"sub":"spiffe://demo.local/agent/concierge"}})
        );
        assert_eq!(t2.depth(), 2);
    }

    #[test]
    fn audience_accepts_string_or_array() {
        let one: Audience = serde_json::from_str(r#""a""#).unwrap();
        let many: Audience = serde_json::from_str(r#"["a","b"]"#).unwrap();
        assert!(one.contains("a") && many.contains("b"));
        assert_eq!(serde_json::to_string(&one).unwrap(), r#""a""#);
    }
}
