//! verify-rar integration tests: real embedded Postgres (a database per test), real HTTP on
//! port 0, real ES256 signatures, and Vault clients nobody here wrote (vaultrs, Python hvac).

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly at the first thing that goes wrong"
)]

mod admin;
mod audit;
mod crash;
mod harness;
mod interop;
mod issue;
mod refusals;
mod revocation;
mod test_idp;
