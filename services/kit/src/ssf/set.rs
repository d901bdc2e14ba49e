//! Security Event Tokens as RFC 8417 and the SSF profile (SSF §4) shape them, and the event types
//! this platform sends: four CAEP events and SSF's two stream events, each with the members CAEP
//! 1.0 requires of it.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::subject::SubjectId;
use crate::claims::Audience;

const CAEP: &str = "https://schemas.openid.net/secevent/caep/event-type/";
const SSF: &str = "https://schemas.openid.net/secevent/ssf/event-type/";

/// An event type this platform knows. On the wire it is always the full URI; the short name
/// (`session-revoked`) is what the transmitter's source endpoint accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    SessionRevoked,
    CredentialChange,
    TokenClaimsChange,
    AssuranceLevelChange,
    /// SSF §8.1.4: the answer to a verification request; `sub_id` is the stream.
    Verification,
    /// SSF §8.1.5: the stream's status changed; `sub_id` is the stream.
    StreamUpdated,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        Self::SessionRevoked,
        Self::CredentialChange,
        Self::TokenClaimsChange,
        Self::AssuranceLevelChange,
        Self::Verification,
        Self::StreamUpdated,
    ];

    /// The CAEP events: what a source may raise and a receiver may request.
    pub const CAEP: [EventType; 4] = [
        Self::SessionRevoked,
        Self::CredentialChange,
        Self::TokenClaimsChange,
        Self::AssuranceLevelChange,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::SessionRevoked => "session-revoked",
            Self::CredentialChange => "credential-change",
            Self::TokenClaimsChange => "token-claims-change",
            Self::AssuranceLevelChange => "assurance-level-change",
            Self::Verification => "verification",
            Self::StreamUpdated => "stream-updated",
        }
    }

    /// The event-type URI, the key of the SET's `events` object.
    pub fn uri(self) -> String {
        let base = if self.is_stream_event() { SSF } else { CAEP };
        format!("{base}{}", self.name())
    }

    /// Whether this is one of SSF's own stream events (sent whatever the stream requested).
    pub fn is_stream_event(self) -> bool {
        matches!(self, Self::Verification | Self::StreamUpdated)
    }

    pub fn from_uri(uri: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.uri() == uri)
    }

    /// Accepts either the short name or the URI.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .or_else(|| Self::from_uri(s))
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.uri())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown event type {s}")))
    }
}

/// The members of one event: CAEP's common optional claims, then each type's own. Members that
/// do not apply stay `None` and are left out of the JSON; anything else is kept in `other`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EventClaims {
    /// When the event happened (NumericDate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_timestamp: Option<i64>,
    /// `admin`, `user`, `policy` or `system`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiating_entity: Option<String>,
    /// Language tag → message, for administrators. A plain string is read as English.
    #[serde(
        default,
        deserialize_with = "localized",
        skip_serializing_if = "Option::is_none"
    )]
    pub reason_admin: Option<BTreeMap<String, String>>,
    /// Language tag → message, for the user.
    #[serde(
        default,
        deserialize_with = "localized",
        skip_serializing_if = "Option::is_none"
    )]
    pub reason_user: Option<BTreeMap<String, String>>,
    // credential-change
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub friendly_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x509_issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x509_serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fido2_aaguid: Option<String>,
    // token-claims-change
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<serde_json::Map<String, Value>>,
    // assurance-level-change
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_level: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_level: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_direction: Option<String>,
    // verification
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    // stream-updated
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Members this platform does not interpret, kept as they came.
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

fn localized<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Localized {
        Plain(String),
        ByLanguage(BTreeMap<String, String>),
    }
    Ok(match Option::<Localized>::deserialize(d)? {
        None => None,
        Some(Localized::Plain(s)) => Some(BTreeMap::from([("en".to_owned(), s)])),
        Some(Localized::ByLanguage(m)) => Some(m),
    })
}

const INITIATING: [&str; 4] = ["admin", "user", "policy", "system"];
const CHANGE_TYPES: [&str; 4] = ["create", "revoke", "update", "delete"];

impl EventClaims {
    /// The English administrator reason, or the first one given.
    pub fn reason_admin_text(&self) -> Option<&str> {
        let m = self.reason_admin.as_ref()?;
        m.get("en")
            .or_else(|| m.values().next())
            .map(String::as_str)
    }

    /// Checks the members CAEP 1.0 requires of `kind`, and the closed enumerations it defines
    /// (`initiating_entity`, `change_type`, `change_direction`, `status`). `credential_type` and
    /// the assurance `namespace` are open (CAEP allows agreed values), so only their presence
    /// is checked.
    pub fn validate(&self, kind: EventType) -> Result<(), String> {
        let require = |name: &str, v: &Option<String>| match v.as_deref() {
            Some(s) if !s.trim().is_empty() => Ok(()),
            _ => Err(format!("{} requires {name}", kind.name())),
        };
        if let Some(e) = &self.initiating_entity
            && !INITIATING.contains(&e.as_str())
        {
            return Err(format!("initiating_entity must be one of {INITIATING:?}"));
        }
        if self.event_timestamp.is_some_and(|t| t < 0) {
            return Err("event_timestamp must be a NumericDate".into());
        }
        match kind {
            EventType::SessionRevoked => Ok(()),
            EventType::CredentialChange => {
                require("credential_type", &self.credential_type)?;
                require("change_type", &self.change_type)?;
                let ct = self.change_type.as_deref().unwrap_or_default();
                if !CHANGE_TYPES.contains(&ct) {
                    return Err(format!("change_type must be one of {CHANGE_TYPES:?}"));
                }
                Ok(())
            }
            EventType::TokenClaimsChange => match &self.claims {
                Some(c) if !c.is_empty() => Ok(()),
                _ => Err("token-claims-change requires a non-empty claims object".into()),
            },
            EventType::AssuranceLevelChange => {
                require("namespace", &self.namespace)?;
                require("current_level", &self.current_level)?;
                if let Some(d) = &self.change_direction
                    && d != "increase"
                    && d != "decrease"
                {
                    return Err("change_direction must be increase or decrease".into());
                }
                Ok(())
            }
            EventType::Verification => Ok(()),
            EventType::StreamUpdated => {
                require("status", &self.status)?;
                match self.status.as_deref() {
                    Some("enabled" | "paused" | "disabled") => Ok(()),
                    _ => Err("status must be enabled, paused or disabled".into()),
                }
            }
        }
    }
}

/// The claims of a SET as the SSF profile has them. There is no `sub` and no `exp`: the profile
/// forbids both, and a receiver refuses a SET carrying either.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetClaims {
    pub iss: String,
    pub iat: i64,
    pub jti: String,
    pub aud: Audience,
    /// Correlates the SETs one underlying event caused (one per stream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn: Option<String>,
    pub sub_id: SubjectId,
    /// Exactly one entry: event-type URI → its members.
    pub events: BTreeMap<String, Value>,
}

impl SetClaims {
    /// A SET carrying the one event `kind` with `claims`, issued now.
    pub fn new(
        iss: &str,
        aud: Audience,
        txn: Option<String>,
        sub_id: SubjectId,
        kind: EventType,
        claims: &EventClaims,
    ) -> Self {
        let body =
            serde_json::to_value(claims).unwrap_or_else(|_| Value::Object(Default::default()));
        Self {
            iss: iss.to_owned(),
            iat: crate::now_secs(),
            jti: crate::random_id(16),
            aud,
            txn,
            sub_id,
            events: BTreeMap::from([(kind.uri(), body)]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_types_read_short_names_and_uris() {
        assert_eq!(
            EventType::SessionRevoked.uri(),
            "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
        );
        assert_eq!(
            EventType::Verification.uri(),
            "https://schemas.openid.net/secevent/ssf/event-type/verification"
        );
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.name()), Some(t));
            assert_eq!(EventType::parse(&t.uri()), Some(t));
        }
        assert_eq!(EventType::parse("session-established"), None);
    }

    #[test]
    fn required_members_are_checked_per_type() {
        let c = EventClaims::default();
        assert!(c.validate(EventType::SessionRevoked).is_ok());
        assert!(c.validate(EventType::CredentialChange).is_err());
        assert!(c.validate(EventType::TokenClaimsChange).is_err());
        assert!(c.validate(EventType::AssuranceLevelChange).is_err());
        let cred: EventClaims = serde_json::from_value(
            json!({"credential_type":"password","change_type":"update","reason_admin":"reset"}),
        )
        .unwrap();
        assert!(cred.validate(EventType::CredentialChange).is_ok());
        assert_eq!(cred.reason_admin_text(), Some("reset"));
        let bad: EventClaims =
            serde_json::from_value(json!({"initiating_entity":"robot"})).unwrap();
        assert!(bad.validate(EventType::SessionRevoked).is_err());
    }

    #[test]
    fn set_claims_carry_one_event_and_no_sub_or_exp() {
        let claims = EventClaims {
            event_timestamp: Some(1),
            ..EventClaims::default()
        };
        let set = SetClaims::new(
            "https://ssf",
            Audience::one("idp"),
            Some("t".into()),
            SubjectId::opaque("s"),
            EventType::SessionRevoked,
            &claims,
        );
        let v = serde_json::to_value(&set).unwrap();
        assert!(v.get("sub").is_none() && v.get("exp").is_none());
        assert_eq!(v["events"].as_object().unwrap().len(), 1);
        assert_eq!(v["aud"], "idp");
        assert_eq!(
            v["events"][EventType::SessionRevoked.uri()],
            json!({"event_timestamp":1})
        );
    }
}
