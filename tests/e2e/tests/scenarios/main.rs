//! The scenarios of SCENARIOS.md against the real stack: every service its own process, started
//! by the same launcher as `just up`, driven over A2A and HTTP the way the UI and the phone will.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly where it stands"
)]

mod llm_planner;
mod s1_transfer;
mod s2_delete;
mod s3_onboard;
mod s4_sensitive;
mod s5_session_killed;
mod steps;
