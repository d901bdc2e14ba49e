//! The `users` table.

use tokio_postgres::{Client, GenericClient, Row};

use crate::user::{NewUser, User};

/// Every user query selects these, so [`from_row`] reads them all the same way.
const COLUMNS: &str = "id, display_name, user_principal_name, mail, mail_nickname, account_enabled,
     to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS created";

fn from_row(row: &Row) -> User {
    User {
        id: row.get("id"),
        display_name: row.get("display_name"),
        user_principal_name: row.get("user_principal_name"),
        mail: row.get("mail"),
        mail_nickname: row.get("mail_nickname"),
        account_enabled: row.get("account_enabled"),
        created_date_time: row.get("created"),
    }
}

/// The case-folded UPN: the list's sort key and cursor.
pub fn sort_key(user: &User) -> String {
    user.user_principal_name.to_lowercase()
}

/// At most `limit` users in UPN order, after `after` (a sort key), optionally only `upn`.
pub async fn list(
    db: &Client,
    limit: i64,
    after: Option<&str>,
    upn: Option<&str>,
) -> Result<Vec<User>, tokio_postgres::Error> {
    let rows = db
        .query(
            &format!(
                "SELECT {COLUMNS} FROM users
                 WHERE ($1::text IS NULL OR upn_key > $1)
                   AND ($2::text IS NULL OR upn_key = lower($2))
                 ORDER BY upn_key LIMIT $3"
            ),
            &[&after, &upn, &limit],
        )
        .await?;
    Ok(rows.iter().map(from_row).collect())
}

/// One user by object id (a GUID) or by UPN (any case).
pub async fn find(db: &Client, key: &str) -> Result<Option<User>, tokio_postgres::Error> {
    let row = match uuid::Uuid::parse_str(key) {
        Ok(id) => {
            db.query_opt(
                &format!("SELECT {COLUMNS} FROM users WHERE id = $1"),
                &[&id],
            )
            .await?
        }
        Err(_) => {
            db.query_opt(
                &format!("SELECT {COLUMNS} FROM users WHERE upn_key = lower($1)"),
                &[&key],
            )
            .await?
        }
    };
    Ok(row.as_ref().map(from_row))
}

/// Inserts `new` with a fresh GUID; `None` if its UPN is taken (in any case).
pub async fn insert(
    db: &impl GenericClient,
    new: &NewUser,
    created_by_jti: &str,
) -> Result<Option<User>, tokio_postgres::Error> {
    let row = db
        .query_opt(
            &format!(
                "INSERT INTO users (id, user_principal_name, display_name, mail_nickname, mail,
                                    account_enabled, created_by_jti)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (upn_key) DO NOTHING
                 RETURNING {COLUMNS}"
            ),
            &[
                &uuid::Uuid::new_v4(),
                &new.user_principal_name,
                &new.display_name,
                &new.mail_nickname,
                &new.mail,
                &new.account_enabled,
                &created_by_jti,
            ],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}
