//! A stream (SSF §8.1.1) and the rules for the fields a receiver may set: `events_requested`,
//! `delivery`, `description`. Everything else is ours (transmitter-supplied): a receiver may
//! echo it back on update, but only unchanged.

use kit::{
    claims::Audience,
    ssf::{EventType, POLL, PUSH, StreamConfig, StreamDelivery, StreamStatus},
};
use serde_json::{Map, Value};

use crate::{error::Error, state::AppState};

/// A stream as stored.
#[derive(Debug, Clone)]
pub struct Stream {
    pub stream_id: String,
    pub receiver: String,
    pub aud: Vec<String>,
    pub events_requested: Vec<String>,
    pub events_delivered: Vec<String>,
    pub delivery_method: String,
    /// Push only: the receiver's URL.
    pub endpoint_url: Option<String>,
    pub authorization_header: Option<String>,
    pub description: Option<String>,
    pub status: StreamStatus,
    pub status_reason: Option<String>,
}

impl Stream {
    /// The configuration as the management API answers it. The push `authorization_header` is
    /// write-only: it is never echoed.
    pub fn to_config(&self, state: &AppState) -> StreamConfig {
        let endpoint_url = if self.delivery_method == POLL {
            Some(state.poll_url(&self.stream_id))
        } else {
            self.endpoint_url.clone()
        };
        StreamConfig {
            stream_id: self.stream_id.clone(),
            iss: state.issuer.clone(),
            aud: Audience(self.aud.clone()),
            events_supported: events_supported(),
            events_requested: self.events_requested.clone(),
            events_delivered: self.events_delivered.clone(),
            delivery: StreamDelivery {
                method: self.delivery_method.clone(),
                endpoint_url,
                authorization_header: None,
            },
            min_verification_interval: Some(state.config.min_verification_interval),
            description: self.description.clone(),
            inactivity_timeout: None,
        }
    }

    /// Applies receiver-supplied fields and recomputes `events_delivered`.
    pub fn apply(&mut self, fields: ReceiverFields) {
        self.events_requested = fields.events_requested;
        self.events_delivered = events_delivered(&self.events_requested);
        self.delivery_method = fields.delivery.method;
        self.endpoint_url = fields.delivery.endpoint_url;
        self.authorization_header = fields.delivery.authorization_header;
        self.description = fields.description;
    }
}

/// The CAEP events this transmitter can send. The stream events (verification,
/// stream-updated) are sent to every stream whatever it requested.
pub fn events_supported() -> Vec<String> {
    EventType::CAEP.iter().map(|e| e.uri()).collect()
}

/// Supported ∩ requested, in the order requested, without repeats.
pub fn events_delivered(requested: &[String]) -> Vec<String> {
    let supported = events_supported();
    let mut out: Vec<String> = Vec::new();
    for r in requested {
        if supported.contains(r) && !out.contains(r) {
            out.push(r.clone());
        }
    }
    out
}

/// The fields a receiver controls, validated.
#[derive(Debug, Clone)]
pub struct ReceiverFields {
    pub events_requested: Vec<String>,
    pub delivery: StreamDelivery,
    pub description: Option<String>,
}

impl ReceiverFields {
    /// From a create or replace body: a missing field takes its default (no events, poll
    /// delivery, no description).
    pub fn from_body(body: &Map<String, Value>) -> Result<Self, Error> {
        Ok(Self {
            events_requested: match body.get("events_requested") {
                None | Some(Value::Null) => Vec::new(),
                Some(v) => parse_events(v)?,
            },
            delivery: match body.get("delivery") {
                None | Some(Value::Null) => poll(),
                Some(v) => parse_delivery(v)?,
            },
            description: match body.get("description") {
                None | Some(Value::Null) => None,
                Some(v) => Some(parse_description(v)?),
            },
        })
    }

    /// For an update: the stream's current fields, with those present in `body` replaced.
    pub fn patched(stream: &Stream, body: &Map<String, Value>) -> Result<Self, Error> {
        let mut f = Self {
            events_requested: stream.events_requested.clone(),
            delivery: StreamDelivery {
                method: stream.delivery_method.clone(),
                endpoint_url: stream.endpoint_url.clone(),
                authorization_header: stream.authorization_header.clone(),
            },
            description: stream.description.clone(),
        };
        if let Some(v) = body.get("events_requested") {
            f.events_requested = if v.is_null() {
                Vec::new()
            } else {
                parse_events(v)?
            };
        }
        if let Some(v) = body.get("delivery") {
            f.delivery = if v.is_null() {
                poll()
            } else {
                parse_delivery(v)?
            };
        }
        if let Some(v) = body.get("description") {
            f.description = if v.is_null() {
                None
            } else {
                Some(parse_description(v)?)
            };
        }
        Ok(f)
    }
}

/// On update and replace, transmitter-supplied fields may be echoed, but must match.
pub fn check_transmitter_fields(
    state: &AppState,
    stream: &Stream,
    body: &Map<String, Value>,
) -> Result<(), Error> {
    let current = serde_json::to_value(stream.to_config(state)).unwrap_or_default();
    for field in ["iss", "aud", "events_supported", "events_delivered"] {
        if let Some(given) = body.get(field) {
            let same = match field {
                // `aud` may be a string or a one-element array.
                "aud" => serde_json::from_value::<Audience>(given.clone())
                    .is_ok_and(|a| a.0 == stream.aud),
                _ => Some(given) == current.get(field),
            };
            if !same {
                return Err(Error::bad_request(format!(
                    "{field} is set by the transmitter and cannot be changed"
                )));
            }
        }
    }
    Ok(())
}

fn poll() -> StreamDelivery {
    StreamDelivery {
        method: POLL.into(),
        endpoint_url: None,
        authorization_header: None,
    }
}

fn parse_events(v: &Value) -> Result<Vec<String>, Error> {
    let items = v.as_array().ok_or_else(|| {
        Error::bad_request("events_requested must be an array of event-type URIs")
    })?;
    if items.len() > 32 {
        return Err(Error::bad_request("events_requested lists too many events"));
    }
    items
        .iter()
        .map(|i| match i.as_str() {
            Some(s) if !s.is_empty() && s.len() <= 256 => Ok(s.to_owned()),
            _ => Err(Error::bad_request(
                "events_requested must be an array of event-type URIs",
            )),
        })
        .collect()
}

fn parse_delivery(v: &Value) -> Result<StreamDelivery, Error> {
    let d: StreamDelivery = serde_json::from_value(v.clone())
        .map_err(|e| Error::bad_request(format!("delivery is invalid: {e}")))?;
    match d.method.as_str() {
        PUSH => {
            let url = d
                .endpoint_url
                .as_deref()
                .ok_or_else(|| Error::bad_request("push delivery needs an endpoint_url"))?;
            let parsed = url::Url::parse(url)
                .map_err(|_| Error::bad_request("delivery.endpoint_url is not a URL"))?;
            if !matches!(parsed.scheme(), "http" | "https") || url.len() > 2048 {
                return Err(Error::bad_request(
                    "delivery.endpoint_url must be an http(s) URL",
                ));
            }
            if let Some(h) = &d.authorization_header
                && (h.len() > 4096 || axum::http::HeaderValue::from_str(h).is_err())
            {
                return Err(Error::bad_request(
                    "delivery.authorization_header is not a valid header value",
                ));
            }
            Ok(d)
        }
        // The poll URL is ours to give; whatever the receiver sent is ignored.
        POLL => Ok(poll()),
        other => Err(Error::bad_request(format!(
            "delivery method {other} is not supported (use {PUSH} or {POLL})"
        ))),
    }
}

fn parse_description(v: &Value) -> Result<String, Error> {
    match v.as_str() {
        Some(s) if s.len() <= 256 => Ok(s.to_owned()),
        _ => Err(Error::bad_request(
            "description must be a string of at most 256 bytes",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn delivered_is_supported_intersect_requested() {
        let requested = vec![
            EventType::SessionRevoked.uri(),
            "https://example.com/unknown".into(),
            EventType::SessionRevoked.uri(),
            EventType::Verification.uri(),
        ];
        assert_eq!(
            events_delivered(&requested),
            vec![EventType::SessionRevoked.uri()]
        );
    }

    #[test]
    fn push_needs_a_url_and_poll_ignores_one() {
        let obj = |v: Value| v.as_object().cloned().unwrap_or_default();
        let no_url = obj(json!({"delivery": {"method": PUSH}}));
        assert!(ReceiverFields::from_body(&no_url).is_err());
        let ftp = obj(json!({"delivery": {"method": PUSH, "endpoint_url": "ftp://x"}}));
        assert!(ReceiverFields::from_body(&ftp).is_err());
        let p = obj(json!({"delivery": {"method": POLL, "endpoint_url": "http://evil"}}));
        let f = ReceiverFields::from_body(&p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.delivery.endpoint_url, None);
        let none = ReceiverFields::from_body(&Map::new()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(none.delivery.method, POLL);
    }
}
