//! Integration tests of the transmitter against a real Postgres, over real HTTP, with receivers
//! built from `kit::ssf::Receiver`. One binary, modules by topic; `support` starts everything on
//! port 0.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly where it stands"
)]

mod delivery;
mod management;
mod metadata;
mod refusals;
mod restart;
mod support;
