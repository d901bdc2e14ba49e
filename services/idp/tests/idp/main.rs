//! Integration tests of the idp against a real Postgres, over real HTTP, with real signatures.
//! One binary, modules by topic; `support::spawn_app()` starts an idp on port 0.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly where it stands"
)]

mod approvals;
mod exchange;
mod oidc;
mod policy;
mod scim;
mod sessions;
mod signals;
mod support;
