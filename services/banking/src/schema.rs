//! The `banking` schema, and the design that binds a credential to one transaction.
//!
//! # Binding a credential to its transaction, inside Postgres
//!
//! The issuer (verify-rar) does not just create a role with privileges: in the same database
//! transaction that creates `v-banking-transfers-…`, it writes one row into `banking.grants`
//! (pg user, `jti`, grant id, RAR fingerprint, owner, source, destination, amount in cents,
//! expiry). The ledger then enforces that row on every write the role makes:
//!
//! 1. **Privileges** come only from a group role holding what one mapping needs:
//!    `banking_transfers` may update `accounts.balance_cents` and insert the business columns of
//!    `transactions`; `banking_accounts` may only call `banking.open_account(kind)`;
//!    `banking_reader` may only read. Nobody but the ledger's owner touches `grants`.
//! 2. **Row-level security** hides every row that is not the grant owner's, so another
//!    customer's accounts are not even visible.
//! 3. **A `BEFORE UPDATE` trigger on `accounts`** (security definer, keyed on `session_user`,
//!    which neither `SET ROLE` nor a definer function can change) accepts a balance change only
//!    if it is exactly `-amount` on the granted source or `+amount` on the granted destination,
//!    of the granted owner, in the granted currency, each at most once, while the grant is
//!    unexpired and unused. It locks the grant row (`FOR UPDATE`), so two sessions holding the
//!    same leaked password serialize and the second sees the grant spent.
//! 4. **A `BEFORE INSERT` trigger on `transactions`** accepts the audit row only after both
//!    legs, only for the granted values, stamps `audit_pg_user`, `audit_jti`, `audit_grant_id`
//!    and `audit_rar_fingerprint` from the grant (the client cannot choose them), and marks the
//!    grant used. `audit_grant_id` is `UNIQUE`: one transaction per grant, ever.
//! 5. **Deferred constraint triggers** check at commit that a transfer grant is either untouched
//!    or complete (debited, credited, recorded): a debit alone, or a debit and credit without
//!    the audit row, rolls back. `SET CONSTRAINTS` can only make the check earlier.
//!
//! So a leaked credential can do exactly what the user approved, once, within its TTL: not a
//! different amount, not another account, not a second time, not half of it. Superusers and the
//! schema's owner (the migrating role) are exempt, as they could disable triggers anyway.
//!
//! Group roles are cluster-wide; the migration tolerates them already existing (several
//! databases on one cluster, as in tests).

use kit::pg::Migration;

/// The ledger's schema name.
pub const SCHEMA: &str = "banking";

/// The ledger's migrations, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "ledger",
        sql: include_str!("migrations/0001_ledger.sql"),
    },
    Migration {
        version: 2,
        name: "seed",
        sql: include_str!("migrations/0002_seed.sql"),
    },
    Migration {
        version: 3,
        name: "events",
        sql: include_str!("migrations/0003_events.sql"),
    },
    Migration {
        version: 4,
        name: "seed_sarah",
        sql: include_str!("migrations/0004_seed_sarah.sql"),
    },
];

/// Applies the ledger's migrations (idempotent; safe for replicas starting together).
pub async fn migrate(pool: &deadpool_postgres::Pool) -> anyhow::Result<()> {
    kit::pg::migrate(pool, SCHEMA, MIGRATIONS).await
}
