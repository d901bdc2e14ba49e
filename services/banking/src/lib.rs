//! The banking specialist's ledger: accounts and transactions in Postgres, written only through
//! per-transaction credentials that the ledger itself binds to one approved operation.
//!
//! A short tour:
//!
//! - [`schema`]: the `banking` schema as ordered migrations, the group roles, and how a
//!   credential is bound to its transaction inside Postgres (read its doc comment first).
//! - [`ledger`]: the operations the agent runs as the ephemeral user: [`ledger::transfer`]
//!   (exactly three statements in one transaction), [`ledger::open_account`],
//!   [`ledger::balances`].
//!
//! The agent server (A2A, token exchange, Vault client) comes later; this crate is its storage.

pub mod ledger;
pub mod schema;

pub use ledger::{Account, LedgerError, Receipt, Transfer, balances, open_account, transfer};
pub use schema::{MIGRATIONS, SCHEMA, migrate};
