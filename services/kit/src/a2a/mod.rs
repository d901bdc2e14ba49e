//! A2A 1.0 over JSON-RPC, as the official SDK clients speak it: the ProtoJSON types, a server
//! that makes a specialist small (it verifies the bearer token, runs the task, streams its
//! progress, maps "waiting for the user's approval" to `TASK_STATE_AUTH_REQUIRED`), and a
//! client for the supervisor.
//!
//! Tool calls travel as a `data` part `{"skill": ..., "arguments": {...}}` beside a text part.

pub mod client;
pub mod server;
pub mod types;

pub use types::*;

/// `A2A-Version` header value this runtime speaks.
pub const VERSION: &str = "1.0";
pub const VERSION_HEADER: &str = "A2A-Version";
pub const CARD_PATH: &str = "/.well-known/agent-card.json";
/// Path of the JSON-RPC endpoint on every agent.
pub const RPC_PATH: &str = "/a2a";
