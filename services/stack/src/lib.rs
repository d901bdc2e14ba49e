//! The launcher: starts the embedded Postgres cluster, makes dev keys, and runs the platform's
//! services. `just up` and the end-to-end tests both start the platform through this crate, so
//! what is demonstrated on stage is what is tested.
//!
//! - [`postgres`]: a private cluster from the installed Postgres binaries (or `DATABASE_URL`).
//! - [`testing`]: one cluster per test binary, a fresh database per test.
//! - [`keys`]: the agents' and services' dev signing keys in `.data/keys`.
//! - [`launch`]: every service as its own process, with health waits and a clean stop.

pub mod keys;
pub mod launch;
pub mod postgres;
pub mod testing;
