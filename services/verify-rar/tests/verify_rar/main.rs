//! verify-rar integration tests: real embedded Postgres (a database per test), the real idp and
//! the issuer on port 0, tokens minted through the real sign-in, hops and approvals, and Vault
//! clients nobody here wrote (vaultrs, Python hvac).

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly at the first thing that goes wrong"
)]

mod admin;
mod audit;
mod crash;
mod harness;
mod idp;
mod interop;
mod issue;
mod refusals;
mod revocation;
mod signals;
