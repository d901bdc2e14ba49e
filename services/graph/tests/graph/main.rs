//! Integration tests of graph against a real Postgres, over real HTTP, with real tokens from the
//! real idp (started in-process on the same test database, its own schema). One binary, modules
//! by topic; `support::spawn_app()` starts both on port 0.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly where it stands"
)]

mod input;
mod refusals;
mod sessions;
mod support;
mod users;
