//! Queries on the issuer's own tables: Vault tokens and roles. (Leases live in [`crate::leases`],
//! next to the lifecycle they record.)

use deadpool_postgres::Pool;
use kit::rar::AuthorizationDetail;
use sha2::{Digest as _, Sha256};

use crate::{error::Error, roles::RoleConfig};

/// A Vault token minted at login, as stored (the token itself is only known to its holder).
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub accessor: String,
    pub jti: String,
    pub sid: Option<String>,
    pub sub: String,
    pub email: Option<String>,
    pub approval_id: Option<String>,
    pub actor_chain: Vec<String>,
    pub login_role: Option<String>,
    pub jwt: String,
    pub rar: Vec<AuthorizationDetail>,
    pub paths: Vec<String>,
    pub issued_at: i64,
    pub expires_at: i64,
}

impl TokenRecord {
    /// The user as events name them.
    pub fn user(&self) -> String {
        self.email.clone().unwrap_or_else(|| self.sub.clone())
    }
}

pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A random string of `n` lower-case letters and digits (role-name suffixes, passwords, ids).
pub fn random_alnum(n: usize) -> String {
    use rand::Rng as _;
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect()
}

/// Stores a Vault token minted at login. The commit does not wait for the disk: a crash that
/// forgets the token makes its holder log in again, nothing more (the login itself is in the
/// audit log, written durably right after).
pub async fn insert_token(pool: &Pool, token: &str, t: &TokenRecord) -> Result<(), Error> {
    let client = pool.get().await?;
    let rar = serde_json::to_value(&t.rar).map_err(anyhow::Error::from)?;
    // One statement, prepared once per connection: the insert, the sweep of expired tokens (of
    // no use to anyone) and `synchronous_commit = off` for this statement's transaction only.
    let stmt = client
        .prepare_cached(
            "WITH ins AS (
                 INSERT INTO tokens (accessor, token_hash, jti, sid, sub, email, approval_id, actor_chain, login_role, jwt, rar, paths, issued_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, to_timestamp($13::bigint), to_timestamp($14::bigint))),
             swept AS (DELETE FROM tokens WHERE expires_at < now() - interval '1 hour')
             SELECT set_config('synchronous_commit', 'off', true)",
        )
        .await?;
    client
        .query_one(
            &stmt,
            &[
                &t.accessor,
                &hash_token(token),
                &t.jti,
                &t.sid,
                &t.sub,
                &t.email,
                &t.approval_id,
                &t.actor_chain,
                &t.login_role,
                &t.jwt,
                &rar,
                &t.paths,
                &t.issued_at,
                &t.expires_at,
            ],
        )
        .await?;
    Ok(())
}

/// The live token `token`, if any.
pub async fn find_token(pool: &Pool, token: &str) -> Result<Option<TokenRecord>, Error> {
    let client = pool.get().await?;
    // Prepared once per pooled connection: one round trip per request instead of two.
    let stmt = client
        .prepare_cached(
            "SELECT accessor, jti, sid, sub, email, approval_id, actor_chain, login_role, jwt, rar, paths,
                    extract(epoch FROM issued_at)::bigint, extract(epoch FROM expires_at)::bigint
             FROM tokens WHERE token_hash = $1 AND expires_at > now()",
        )
        .await?;
    let Some(r) = client.query_opt(&stmt, &[&hash_token(token)]).await? else {
        return Ok(None);
    };
    let rar: serde_json::Value = r.try_get(9)?;
    Ok(Some(TokenRecord {
        accessor: r.try_get(0)?,
        jti: r.try_get(1)?,
        sid: r.try_get(2)?,
        sub: r.try_get(3)?,
        email: r.try_get(4)?,
        approval_id: r.try_get(5)?,
        actor_chain: r.try_get(6)?,
        login_role: r.try_get(7)?,
        jwt: r.try_get(8)?,
        rar: serde_json::from_value(rar).map_err(anyhow::Error::from)?,
        paths: r.try_get(10)?,
        issued_at: r.try_get(11)?,
        expires_at: r.try_get(12)?,
    }))
}

pub async fn put_role(pool: &Pool, role: &RoleConfig, source: &str) -> Result<(), Error> {
    let config = serde_json::to_value(role).map_err(anyhow::Error::from)?;
    pool.get()
        .await?
        .execute(
            "INSERT INTO roles (name, config, source) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET config = excluded.config, source = excluded.source, updated_at = now()",
            &[&role.name, &config, &source],
        )
        .await?;
    Ok(())
}

pub async fn get_role(pool: &Pool, name: &str) -> Result<Option<RoleConfig>, Error> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached("SELECT config FROM roles WHERE name = $1")
        .await?;
    let row = client.query_opt(&stmt, &[&name]).await?;
    row.map(|r| {
        let v: serde_json::Value = r.try_get(0)?;
        Ok(serde_json::from_value(v).map_err(anyhow::Error::from)?)
    })
    .transpose()
}

pub async fn delete_role(pool: &Pool, name: &str) -> Result<(), Error> {
    pool.get()
        .await?
        .execute("DELETE FROM roles WHERE name = $1", &[&name])
        .await?;
    Ok(())
}

pub async fn list_roles(pool: &Pool) -> Result<Vec<String>, Error> {
    let rows = pool
        .get()
        .await?
        .query("SELECT name FROM roles ORDER BY name", &[])
        .await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?)
}
