//! Authorization codes and refresh tokens. Only their SHA-256 is stored; both are single use.

use std::time::Duration;

use tokio_postgres::Client;

#[derive(Debug, Clone)]
pub struct CodeGrant {
    pub client_id: String,
    pub user_id: String,
    pub session_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scope: String,
    pub nonce: Option<String>,
}

/// Stores a new code (valid 60 seconds) and returns it.
pub async fn create_code(client: &Client, g: &CodeGrant) -> anyhow::Result<String> {
    let code = kit::random_id(32);
    client
        .execute(
            "INSERT INTO auth_codes (code_hash, client_id, user_id, session_id, redirect_uri, code_challenge, scope, nonce, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + interval '60 seconds')",
            &[&kit::sha256_hex(&code), &g.client_id, &g.user_id, &g.session_id, &g.redirect_uri, &g.code_challenge, &g.scope, &g.nonce],
        )
        .await?;
    Ok(code)
}

/// Redeems a code exactly once. `None` if unknown, expired or already used.
pub async fn redeem_code(client: &Client, code: &str) -> anyhow::Result<Option<CodeGrant>> {
    let row = client
        .query_opt(
            "UPDATE auth_codes SET used_at = now()
             WHERE code_hash = $1 AND used_at IS NULL AND expires_at > now()
             RETURNING client_id, user_id, session_id, redirect_uri, code_challenge, scope, nonce",
            &[&kit::sha256_hex(code)],
        )
        .await?;
    Ok(row.map(|r| CodeGrant {
        client_id: r.get(0),
        user_id: r.get(1),
        session_id: r.get(2),
        redirect_uri: r.get(3),
        code_challenge: r.get(4),
        scope: r.get(5),
        nonce: r.get(6),
    }))
}

#[derive(Debug, Clone)]
pub struct RefreshGrant {
    pub session_id: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
}

pub async fn create_refresh(
    client: &Client,
    g: &RefreshGrant,
    ttl: Duration,
) -> anyhow::Result<String> {
    let token = kit::random_id(32);
    client
        .execute(
            "INSERT INTO refresh_tokens (token_hash, session_id, client_id, user_id, scope, expires_at)
             VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))",
            &[&kit::sha256_hex(&token), &g.session_id, &g.client_id, &g.user_id, &g.scope, &ttl.as_secs_f64()],
        )
        .await?;
    Ok(token)
}

/// What presenting a refresh token found.
#[derive(Debug)]
pub enum Refresh {
    /// Valid: it is now rotated and must not be used again.
    Rotated(RefreshGrant),
    /// Already rotated: someone is replaying it (the session should die).
    Reused(RefreshGrant),
    Unknown,
}

pub async fn rotate_refresh(client: &Client, token: &str) -> anyhow::Result<Refresh> {
    let hash = kit::sha256_hex(token);
    let rotated = client
        .query_opt(
            "UPDATE refresh_tokens SET rotated_at = now()
             WHERE token_hash = $1 AND rotated_at IS NULL AND expires_at > now()
             RETURNING session_id, client_id, user_id, scope",
            &[&hash],
        )
        .await?;
    let grant = |r: &tokio_postgres::Row| RefreshGrant {
        session_id: r.get(0),
        client_id: r.get(1),
        user_id: r.get(2),
        scope: r.get(3),
    };
    if let Some(r) = rotated {
        return Ok(Refresh::Rotated(grant(&r)));
    }
    let reused = client
        .query_opt("SELECT session_id, client_id, user_id, scope FROM refresh_tokens WHERE token_hash = $1 AND rotated_at IS NOT NULL", &[&hash])
        .await?;
    Ok(reused
        .map(|r| Refresh::Reused(grant(&r)))
        .unwrap_or(Refresh::Unknown))
}

/// RFC 7009 for refresh tokens: the token stops working. Returns its session if it existed.
pub async fn revoke_refresh(client: &Client, token: &str) -> anyhow::Result<Option<String>> {
    Ok(client
        .query_opt(
            "UPDATE refresh_tokens SET rotated_at = coalesce(rotated_at, now()), expires_at = least(expires_at, now())
             WHERE token_hash = $1 RETURNING session_id",
            &[&kit::sha256_hex(token)],
        )
        .await?
        .map(|r| r.get(0)))
}
