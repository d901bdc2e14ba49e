//! Ledger tests: the grant rules enforced by Postgres itself, exercised through real login roles
//! with real password authentication on the embedded test cluster (no issuer involved).

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly at the first thing that goes wrong"
)]

use std::str::FromStr as _;

use banking::{LedgerError, Transfer};
use tokio_postgres::{Client, NoTls};

/// A test database with the ledger migrated, and a superuser connection to it.
struct Ledger {
    url: String,
    admin: Client,
}

async fn connect(cfg: &tokio_postgres::Config) -> Client {
    let (client, conn) = cfg.connect(NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

impl Ledger {
    async fn new() -> Self {
        let url = stack::testing::fresh_database().await.unwrap();
        let pool = kit::pg::pool(&url, banking::SCHEMA, 2).unwrap();
        banking::migrate(&pool).await.unwrap();
        // Applying twice is a no-op.
        banking::migrate(&pool).await.unwrap();
        let admin = connect(&tokio_postgres::Config::from_str(&url).unwrap()).await;
        Self { url, admin }
    }

    /// Creates a login role in `group` with a grant row, the way the issuer does, and connects as it.
    async fn credential(&self, group: &str, grant: &str) -> (String, Client) {
        let name = format!(
            "v-test-{}",
            kit::random_id(12)
                .to_ascii_lowercase()
                .replace(['-', '_'], "x")
        );
        let password = kit::random_id(15).replace(['-', '_'], "x");
        self.admin
            .batch_execute(&format!(
                "CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}' VALID UNTIL 'infinity'; GRANT {group} TO \"{name}\";"
            ))
            .await
            .unwrap();
        let sql = format!(
            "INSERT INTO banking.grants (id, pg_user, jti, rar_fingerprint, action, owner, source, destination, amount_cents, currency, kind, account, expires_at)
             SELECT gen_random_uuid(), $1, 'jti-' || $1, 'fp-' || $1, action, owner, source, destination, amount_cents, currency, kind, account, now() + interval '5 minutes'
             FROM (VALUES {grant}) AS g(action, owner, source, destination, amount_cents, currency, kind, account)"
        );
        self.admin.execute(&sql, &[&name]).await.unwrap();
        let mut cfg = tokio_postgres::Config::from_str(&self.url).unwrap();
        cfg.user(&name).password(&password);
        (name, connect(&cfg).await)
    }

    async fn balance(&self, owner: &str, name: &str) -> i64 {
        self.admin
            .query_one(
                "SELECT balance_cents FROM banking.accounts WHERE owner = $1 AND name = $2",
                &[&owner, &name],
            )
            .await
            .unwrap()
            .get(0)
    }

    async fn drop_role(&self, name: &str) {
        self.admin
            .batch_execute(&format!("DROP OWNED BY \"{name}\"; DROP ROLE \"{name}\""))
            .await
            .unwrap();
    }
}

const ALICE: &str = "alice@example.com";
const ALICE_1000: &str = "('transfer_funds', 'alice@example.com', 'checking', 'savings', 100000::bigint, 'USD', NULL, NULL)";

fn alice(amount_cents: i64) -> Transfer<'static> {
    Transfer {
        owner: ALICE,
        source: "checking",
        destination: "savings",
        amount_cents,
    }
}

/// The server's message for a statement that must fail.
fn db_error<T: std::fmt::Debug>(r: Result<T, tokio_postgres::Error>) -> String {
    let e = r.unwrap_err();
    e.as_db_error()
        .map(|d| d.message().to_owned())
        .unwrap_or_else(|| e.to_string())
}

fn refused(r: Result<impl std::fmt::Debug, LedgerError>) -> String {
    match r {
        Err(LedgerError::Refused(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn seeds_the_demo_tenant() {
    let l = Ledger::new().await;
    let all = banking::balances(&l.admin).await.unwrap();
    let got: Vec<(&str, &str, i64)> = all
        .iter()
        .map(|a| (a.owner.as_str(), a.name.as_str(), a.balance_cents))
        .collect();
    assert_eq!(
        got,
        [
            (ALICE, "checking", 500_000),
            (ALICE, "savings", 1_000_000),
            ("bob@example.com", "checking", 500_000),
            ("bob@example.com", "savings", 1_000_000),
            ("sarah.smith@example.com", "checking", 200_000)
        ]
    );
}

#[tokio::test]
async fn bound_credential_moves_the_granted_amount_once() {
    let l = Ledger::new().await;
    let (name, mut c) = l.credential("banking_transfers", ALICE_1000).await;
    let receipt = banking::transfer(&mut c, &alice(100_000)).await.unwrap();
    assert_eq!(receipt.pg_user, name);
    assert_eq!(receipt.jti, format!("jti-{name}"));
    assert_eq!(receipt.rar_fingerprint, format!("fp-{name}"));
    assert_eq!(
        (
            l.balance(ALICE, "checking").await,
            l.balance(ALICE, "savings").await
        ),
        (400_000, 1_100_000)
    );
    assert!(refused(banking::transfer(&mut c, &alice(100_000)).await).contains("already used"));
    assert_eq!(l.balance(ALICE, "checking").await, 400_000);
    l.drop_role(&name).await;
}

#[tokio::test]
async fn bound_credential_cannot_change_amount_account_or_owner() {
    let l = Ledger::new().await;
    let (name, mut c) = l.credential("banking_transfers", ALICE_1000).await;
    assert!(refused(banking::transfer(&mut c, &alice(100_001)).await).contains("may only move"));
    assert!(refused(banking::transfer(&mut c, &alice(50_000)).await).contains("may only move"));
    let other_dest = Transfer {
        destination: "trading",
        ..alice(100_000)
    };
    l.admin
        .execute(
            "INSERT INTO banking.accounts (owner, name, kind) VALUES ($1, 'trading', 'trading')",
            &[&ALICE],
        )
        .await
        .unwrap();
    assert!(refused(banking::transfer(&mut c, &other_dest).await).contains("may only move"));
    // Bob's accounts are invisible to a credential bound to Alice.
    let bob = Transfer {
        owner: "bob@example.com",
        ..alice(100_000)
    };
    assert!(matches!(
        banking::transfer(&mut c, &bob).await,
        Err(LedgerError::AccountNotFound(_))
    ));
    // Nothing moved, and the grant is still good for the approved transfer.
    assert_eq!(l.balance(ALICE, "checking").await, 500_000);
    banking::transfer(&mut c, &alice(100_000)).await.unwrap();
    l.drop_role(&name).await;
}

#[tokio::test]
async fn a_transfer_is_all_three_statements_or_nothing() {
    let l = Ledger::new().await;
    let (name, mut c) = l.credential("banking_transfers", ALICE_1000).await;
    // A lone debit in autocommit is rolled back by the deferred check.
    let debit = c
        .execute("UPDATE banking.accounts SET balance_cents = balance_cents - 100000 WHERE owner = $1 AND name = 'checking'", &[&ALICE])
        .await;
    assert!(db_error(debit).contains("one transaction"));
    // Debit and credit without the audit row fail at COMMIT.
    let tx = c.transaction().await.unwrap();
    tx.batch_execute(
        "UPDATE banking.accounts SET balance_cents = balance_cents - 100000 WHERE owner = 'alice@example.com' AND name = 'checking';
         UPDATE banking.accounts SET balance_cents = balance_cents + 100000 WHERE owner = 'alice@example.com' AND name = 'savings';",
    )
    .await
    .unwrap();
    assert!(tx.commit().await.is_err());
    // The audit row cannot come first, nor name its own audit columns.
    let early = c
        .execute("INSERT INTO banking.transactions (owner, source, destination, amount_cents) VALUES ($1, 'checking', 'savings', 100000)", &[&ALICE])
        .await;
    assert!(db_error(early).contains("after the debit"));
    let forged = c
        .execute("INSERT INTO banking.transactions (owner, source, destination, amount_cents, audit_jti) VALUES ($1, 'checking', 'savings', 100000, 'x')", &[&ALICE])
        .await;
    assert!(db_error(forged).contains("permission denied"));
    assert_eq!(
        (
            l.balance(ALICE, "checking").await,
            l.balance(ALICE, "savings").await
        ),
        (500_000, 1_000_000)
    );
    banking::transfer(&mut c, &alice(100_000)).await.unwrap();
    l.drop_role(&name).await;
}

#[tokio::test]
async fn concurrent_sessions_of_one_credential_transfer_once() {
    let l = Ledger::new().await;
    let (name, mut c1) = l.credential("banking_transfers", ALICE_1000).await;
    let mut cfg = tokio_postgres::Config::from_str(&l.url).unwrap();
    // A second session with the same role: same grant, same single use.
    l.admin
        .batch_execute(&format!(
            "ALTER ROLE \"{name}\" PASSWORD 'second-session-pw'"
        ))
        .await
        .unwrap();
    cfg.user(&name).password("second-session-pw");
    let mut c2 = connect(&cfg).await;
    let t = alice(100_000);
    let (a, b) = tokio::join!(
        banking::transfer(&mut c1, &t),
        banking::transfer(&mut c2, &t)
    );
    assert_eq!(
        [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count(),
        1,
        "{a:?} {b:?}"
    );
    assert_eq!(l.balance(ALICE, "checking").await, 400_000);
    drop((c1, c2));
    l.drop_role(&name).await;
}

/// Two transfers between the same two accounts in opposite directions, at the same time, each
/// with its own credential: both complete (neither is failed as a deadlock victim) and the money
/// nets out. Several rounds, so the statements interleave at least once.
#[tokio::test]
async fn opposite_transfers_at_once_both_complete() {
    let l = Ledger::new().await;
    let back = "('transfer_funds', 'alice@example.com', 'savings', 'checking', 100000::bigint, 'USD', NULL, NULL)";
    let reverse = Transfer {
        owner: ALICE,
        source: "savings",
        destination: "checking",
        amount_cents: 100_000,
    };
    for _ in 0..5 {
        let (forth_role, mut forth) = l.credential("banking_transfers", ALICE_1000).await;
        let (back_role, mut backward) = l.credential("banking_transfers", back).await;
        let onward = alice(100_000);
        let (a, b) = tokio::join!(
            banking::transfer(&mut forth, &onward),
            banking::transfer(&mut backward, &reverse)
        );
        assert!(a.is_ok() && b.is_ok(), "{a:?} {b:?}");
        drop((forth, backward));
        l.drop_role(&forth_role).await;
        l.drop_role(&back_role).await;
    }
    assert_eq!(l.balance(ALICE, "checking").await, 500_000);
    assert_eq!(l.balance(ALICE, "savings").await, 1_000_000);
    let rows: i64 = l
        .admin
        .query_one("SELECT count(*) FROM banking.transactions", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 10);
}

#[tokio::test]
async fn reader_sees_only_its_owner_and_cannot_write() {
    let l = Ledger::new().await;
    let (name, c) = l
        .credential(
            "banking_reader",
            "('list_accounts', 'bob@example.com', NULL, NULL, NULL::bigint, NULL, NULL, NULL)",
        )
        .await;
    let seen = banking::balances(&c).await.unwrap();
    assert_eq!(
        seen.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
        ["checking", "savings"]
    );
    assert!(seen.iter().all(|a| a.owner == "bob@example.com"));
    let write = c
        .execute("UPDATE banking.accounts SET balance_cents = 0", &[])
        .await;
    assert!(db_error(write).contains("permission denied"));
    let grants = c.query("SELECT * FROM banking.grants", &[]).await;
    assert!(db_error(grants).contains("permission denied"));
    l.drop_role(&name).await;
}

#[tokio::test]
async fn open_account_opens_the_granted_kind_once() {
    let l = Ledger::new().await;
    let (name, c) = l
        .credential(
            "banking_accounts",
            "('open_account', 'bob@example.com', NULL, NULL, NULL::bigint, NULL, 'trading', NULL)",
        )
        .await;
    assert!(refused(banking::open_account(&c, "savings").await).contains("only open a trading"));
    let opened = banking::open_account(&c, "trading").await.unwrap();
    assert_eq!(
        (
            opened.owner.as_str(),
            opened.name.as_str(),
            opened.balance_cents
        ),
        ("bob@example.com", "trading", 0)
    );
    assert!(refused(banking::open_account(&c, "trading").await).contains("no unused"));
    l.drop_role(&name).await;
}
