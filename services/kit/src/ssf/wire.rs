//! The JSON of the SSF management API and of RFC 8936 poll delivery, defined once for both the
//! transmitter (which writes it) and the receivers (which read it).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::claims::Audience;

/// `GET /.well-known/ssf-configuration` (SSF §7.1). Empty arrays are left out, as §7.1 asks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransmitterMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_version: Option<String>,
    pub issuer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delivery_methods_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_subject_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_subject_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub critical_subject_members: Vec<String>,
    /// `[{"spec_urn": "urn:ietf:rfc:6749"}]`
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_schemes: Vec<Value>,
    /// `ALL` or `NONE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_subjects: Option<String>,
    /// Members SSF does not define (this transmitter adds `events_supported`).
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

/// `delivery` of a stream (SSF §8.1.1): push to the receiver's URL, or poll at the
/// transmitter's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamDelivery {
    /// [`super::PUSH`] or [`super::POLL`].
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// For push: the `Authorization` value the transmitter sends with every SET. Write-only:
    /// the transmitter never echoes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_header: Option<String>,
}

/// A stream's configuration as the transmitter answers it (SSF §8.1.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamConfig {
    pub stream_id: String,
    pub iss: String,
    pub aud: Audience,
    #[serde(default)]
    pub events_supported: Vec<String>,
    #[serde(default)]
    pub events_requested: Vec<String>,
    #[serde(default)]
    pub events_delivered: Vec<String>,
    pub delivery: StreamDelivery,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_verification_interval: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inactivity_timeout: Option<u64>,
}

/// A stream's status (SSF §8.1.2): `paused` holds events for later, `disabled` drops them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamStatus {
    Enabled,
    Paused,
    Disabled,
}

impl StreamStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::Paused => "paused",
            Self::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "enabled" => Some(Self::Enabled),
            "paused" => Some(Self::Paused),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }
}

/// The body of `GET`/`POST status_endpoint`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusBody {
    pub stream_id: String,
    pub status: StreamStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An RFC 8935 / 8936 SET error: `{"err": "...", "description": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetErr {
    pub err: String,
    #[serde(default)]
    pub description: String,
}

/// An RFC 8936 poll request. `{}` is a valid default poll (long poll, transmitter's batch size).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PollRequest {
    /// At most this many SETs; 0 = acknowledge only.
    #[serde(rename = "maxEvents", default, skip_serializing_if = "Option::is_none")]
    pub max_events: Option<u32>,
    /// `false` (the default) asks the transmitter to wait for SETs (long poll).
    #[serde(
        rename = "returnImmediately",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub return_immediately: Option<bool>,
    /// `jti`s of SETs the receiver has processed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ack: Vec<String>,
    /// `jti` → why the receiver refused that SET.
    #[serde(
        rename = "setErrs",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub set_errs: BTreeMap<String, SetErr>,
}

/// An RFC 8936 poll response: `jti` → compact SET.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PollResponse {
    pub sets: BTreeMap<String, String>,
    #[serde(
        rename = "moreAvailable",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub more_available: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn poll_members_use_rfc_8936_names() {
        let req: PollRequest = serde_json::from_value(json!({
            "maxEvents": 5, "returnImmediately": true, "ack": ["a"],
            "setErrs": {"b": {"err": "invalid_key", "description": "x"}}
        }))
        .unwrap();
        assert_eq!(req.max_events, Some(5));
        assert_eq!(req.set_errs["b"].err, "invalid_key");
        assert_eq!(
            serde_json::to_value(PollRequest::default()).unwrap(),
            json!({})
        );
        let resp = PollResponse {
            sets: BTreeMap::from([("j".into(), "t".into())]),
            more_available: Some(false),
        };
        assert_eq!(
            serde_json::to_value(resp).unwrap(),
            json!({"sets": {"j": "t"}, "moreAvailable": false})
        );
    }
}
