//! entra agent integration tests: real embedded Postgres (one database per test, shared by the
//! idp, graph and the agent in their own schemas), the real idp and the real Graph stand-in
//! in-process on port 0, and the agent on port 0. The tests play the concierge: they sign alice in
//! through the login form, do hop 1 with the concierge's own key, call the agent over A2A with
//! that T1, and answer push approvals with alice's device token.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly at the first thing that goes wrong"
)]

mod refusals;
mod support;
mod users;
