//! The ledger operations the agent runs as the ephemeral user. Each is plain SQL against the
//! `banking` schema; what the credential may actually do is decided by the ledger (see
//! [`crate::schema`]), not by this code.

use tokio_postgres::{Client, GenericClient, Row, error::SqlState};

/// Why the ledger refused or failed an operation.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("account {0} was not found")]
    AccountNotFound(String),
    #[error("insufficient funds in {0}")]
    InsufficientFunds(String),
    /// The ledger's binding rules refused the operation (wrong amount, other account, reuse,
    /// incomplete transfer, no grant); the message is the ledger's.
    #[error("refused by the ledger: {0}")]
    Refused(String),
    #[error("ledger database error: {0}")]
    Database(tokio_postgres::Error),
}

impl LedgerError {
    fn from_db(e: tokio_postgres::Error, account: &str) -> Self {
        let Some(db) = e.as_db_error() else {
            return Self::Database(e);
        };
        let code = db.code();
        if *code == SqlState::INSUFFICIENT_PRIVILEGE
            || *code == SqlState::INTEGRITY_CONSTRAINT_VIOLATION
            || *code == SqlState::UNIQUE_VIOLATION
        {
            Self::Refused(db.message().to_owned())
        } else if *code == SqlState::CHECK_VIOLATION {
            Self::InsufficientFunds(account.to_owned())
        } else {
            Self::Database(e)
        }
    }
}

/// A transfer between two accounts of one owner, in integer cents.
#[derive(Debug, Clone)]
pub struct Transfer<'a> {
    pub owner: &'a str,
    pub source: &'a str,
    pub destination: &'a str,
    pub amount_cents: i64,
}

/// The audit row of a completed transfer: the ids that join it to the idp's and the issuer's
/// logs. All of them were stamped by the ledger from the grant, not supplied by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub transaction_id: i64,
    pub pg_user: String,
    pub jti: String,
    pub grant_id: uuid::Uuid,
    pub rar_fingerprint: String,
}

/// One account as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Account {
    pub owner: String,
    pub name: String,
    pub kind: String,
    pub balance_cents: i64,
    pub currency: String,
}

impl Account {
    fn from_row(r: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            owner: r.try_get("owner")?,
            name: r.try_get("name")?,
            kind: r.try_get("kind")?,
            balance_cents: r.try_get("balance_cents")?,
            currency: r.try_get("currency")?,
        })
    }
}

/// One leg of a transfer: `$3` cents (negative for the debit) on account `$2` of owner `$1`.
pub const LEG_SQL: &str =
    "UPDATE banking.accounts SET balance_cents = balance_cents + $3 WHERE owner = $1 AND name = $2";
/// The audit row; the ledger's triggers fill the `audit_*` columns from the credential's grant.
pub const AUDIT_SQL: &str =
    "INSERT INTO banking.transactions (owner, source, destination, amount_cents)
     VALUES ($1, $2, $3, $4)
     RETURNING id, audit_pg_user, audit_jti, audit_grant_id, audit_rar_fingerprint";
/// The accounts the connection may see.
pub const BALANCES_SQL: &str = "SELECT owner, name, kind, balance_cents, currency::text AS currency
     FROM banking.accounts ORDER BY owner, name";

/// The two legs of `t` as `(account, cents)`, in the order [`transfer`] runs them: by account
/// name, not debit first. Each leg locks its account's row until the commit, so two transfers
/// between the same two accounts in opposite directions, run at the same time, would each hold
/// one row and wait for the other's (Postgres breaks such a deadlock after a second by failing
/// one of them). Taking the rows in one fixed order makes the second transfer wait for the
/// first instead. The ledger accepts the legs in either order.
pub fn legs<'a>(t: &Transfer<'a>) -> [(&'a str, i64); 2] {
    let debit = (t.source, -t.amount_cents);
    let credit = (t.destination, t.amount_cents);
    if t.source <= t.destination {
        [debit, credit]
    } else {
        [credit, debit]
    }
}

/// Moves money: exactly three statements (the two legs, in [`legs`] order, then the audit row)
/// in one transaction.
pub async fn transfer(client: &mut Client, t: &Transfer<'_>) -> Result<Receipt, LedgerError> {
    let tx = client.transaction().await.map_err(LedgerError::Database)?;
    for (account, cents) in legs(t) {
        let changed = tx
            .execute(LEG_SQL, &[&t.owner, &account, &cents])
            .await
            .map_err(|e| LedgerError::from_db(e, account))?;
        if changed != 1 {
            return Err(LedgerError::AccountNotFound(account.to_owned()));
        }
    }
    let row = tx
        .query_one(
            AUDIT_SQL,
            &[&t.owner, &t.source, &t.destination, &t.amount_cents],
        )
        .await
        .map_err(|e| LedgerError::from_db(e, t.source))?;
    let receipt = Receipt {
        transaction_id: row.try_get(0).map_err(LedgerError::Database)?,
        pg_user: row.try_get(1).map_err(LedgerError::Database)?,
        jti: row.try_get(2).map_err(LedgerError::Database)?,
        grant_id: row.try_get(3).map_err(LedgerError::Database)?,
        rar_fingerprint: row.try_get(4).map_err(LedgerError::Database)?,
    };
    // The deferred completeness check runs here.
    tx.commit()
        .await
        .map_err(|e| LedgerError::from_db(e, t.source))?;
    Ok(receipt)
}

/// Opens an account of `kind` for the grant's owner (named after the kind, `-2`, `-3`… if taken).
pub async fn open_account(client: &impl GenericClient, kind: &str) -> Result<Account, LedgerError> {
    let row = client
        .query_one("SELECT owner, name, kind, balance_cents, currency::text AS currency FROM banking.open_account($1)", &[&kind])
        .await
        .map_err(|e| LedgerError::from_db(e, kind))?;
    Account::from_row(&row).map_err(LedgerError::Database)
}

/// The accounts this connection may see (for an ephemeral user: its grant's owner's only).
pub async fn balances(client: &impl GenericClient) -> Result<Vec<Account>, LedgerError> {
    let rows = client
        .query(BALANCES_SQL, &[])
        .await
        .map_err(LedgerError::Database)?;
    rows.iter()
        .map(Account::from_row)
        .collect::<Result<_, _>>()
        .map_err(LedgerError::Database)
}
