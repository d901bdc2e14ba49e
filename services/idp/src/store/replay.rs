//! Replay protection and revocation lists: single-use assertion ids, revoked access tokens.

use tokio_postgres::Client;

/// Marks `jti` (from `issuer`) as used until `exp`. `Ok(false)` means it was used before: a
/// replay. Expired rows are pruned here, on the write path, so the table stays small.
pub async fn consume_jti(
    client: &Client,
    issuer: &str,
    jti: &str,
    exp: i64,
) -> anyhow::Result<bool> {
    let n = client
        .execute(
            "WITH pruned AS (DELETE FROM used_jtis WHERE jti IN
                 (SELECT jti FROM used_jtis WHERE expires_at < now() - interval '5 minutes' LIMIT 100))
             INSERT INTO used_jtis (jti, issuer, expires_at) VALUES ($1, $2, to_timestamp($3))
             ON CONFLICT (jti) DO NOTHING",
            &[&format!("{issuer}#{jti}"), &issuer, &(exp as f64)],
        )
        .await?;
    Ok(n == 1)
}

pub async fn revoke_token(client: &Client, jti: &str, exp: i64) -> anyhow::Result<()> {
    client
        .execute("INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, to_timestamp($2)) ON CONFLICT DO NOTHING", &[&jti, &(exp as f64)])
        .await?;
    Ok(())
}

/// Is the access token still good as far as the store knows: not revoked, and its session
/// (if it has one) alive? One round trip, used on every exchange and introspection.
pub async fn token_is_live(client: &Client, jti: &str, sid: Option<&str>) -> anyhow::Result<bool> {
    let row = client
        .query_one(
            "SELECT NOT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $1)
                AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM sessions WHERE id = $2 AND revoked_at IS NULL AND expires_at > now()))",
            &[&jti, &sid],
        )
        .await?;
    Ok(row.get(0))
}
