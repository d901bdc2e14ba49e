//! Banking agent integration tests: real embedded Postgres (one database per test, shared by the
//! idp, the issuer and the agent in their own schemas), the real idp and the real verify-rar
//! in-process on port 0, and the agent itself on port 0. The tests play the concierge: they sign
//! alice in through the login form, do hop 1 with the concierge's key, and call banking over A2A
//! with that T1; approvals go through the approvals API with alice's device token.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly at the first thing that goes wrong"
)]

mod accounts;
mod harness;
mod idp;
mod interop;
mod reads;
mod refusals;
mod transfer;
