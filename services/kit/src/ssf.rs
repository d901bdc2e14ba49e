//! Shared Signals (SSF 1.0 / CAEP 1.0): the contract between the transmitter (`services/ssf`,
//! "Antenna") and every receiver (the idp, verify-rar, each agent).
//!
//! - [`subject`]: RFC 9493 subject identifiers and SSF's `complex` subject, with SSF's matching
//!   rule (a member absent on either side is a wildcard).
//! - [`set`]: the event types, their claims (with each type's required members), and the SET
//!   claims as RFC 8417 and the SSF profile shape them: `typ: secevent+jwt`, top-level `sub_id`,
//!   exactly one event, no `sub`, no `exp`.
//! - [`keys`]: the transmitter's RS256 key (2048-bit RSA, as the CAEP interoperability profile
//!   requires) and the receiver's RS256-pinned verification of a SET.
//! - [`wire`]: transmitter metadata, the stream configuration, status, and the RFC 8936 poll
//!   request and response: one definition for both ends of the wire.
//! - [`receiver`]: what a service embeds to receive signals: it creates (or reuses) its stream,
//!   answers RFC 8935 pushes (or polls), validates every SET, and hands each accepted event to the
//!   service's callback exactly once per `jti`.
//! - [`settings`]: `SSF_URL` / `SSF_TOKEN`, starting a receiver without racing the
//!   transmitter's start, and the one `signal_received` event every receiver writes.
//!
//! Invariants, stated as absences: no SET reaches a callback without a verified RS256 signature
//! by the transmitter's published key, the transmitter's `iss`, this stream's `aud` and exactly
//! one event; no `jti` reaches a callback twice in one receiver process.

pub mod keys;
pub mod receiver;
pub mod set;
pub mod settings;
pub mod subject;
pub mod wire;

pub use keys::RsaSigningKey;
pub use receiver::{Delivery, PushError, Receiver, ReceiverConfig, ReceiverError, SetEvent};
pub use set::{EventClaims, EventType, SetClaims};
pub use settings::{ReceiverSettings, received_event, start_receiver};
pub use subject::{ComplexSubject, SubjectId};
pub use wire::{
    PollRequest, PollResponse, SetErr, StatusBody, StreamConfig, StreamDelivery, StreamStatus,
    TransmitterMetadata,
};

/// `spec_version` of the SSF 1.0 final specification.
pub const SPEC_VERSION: &str = "1_0";
/// The JOSE `typ` of every SET (RFC 8417 §2.3).
pub const SET_TYP: &str = "secevent+jwt";
/// The media type of a pushed SET (RFC 8935 §2).
pub const SET_MEDIA_TYPE: &str = "application/secevent+jwt";
/// Delivery method URN of push (RFC 8935).
pub const PUSH: &str = "urn:ietf:rfc:8935";
/// Delivery method URN of poll (RFC 8936).
pub const POLL: &str = "urn:ietf:rfc:8936";
/// Where transmitter metadata lives, relative to the issuer's host (SSF §7.2).
pub const WELL_KNOWN: &str = "/.well-known/ssf-configuration";
