//! Replay protection and revocation lists: single-use assertion ids, revoked access tokens.

use tokio_postgres::Client;

/// What the token endpoint learns about a hop in the one statement that consumes the actor
/// token's `jti`.
#[derive(Debug, Clone, Copy)]
pub struct Consumed {
    /// The `jti` was not used before.
    pub fresh: bool,
    /// The actor's registry row now: `None` if it is gone; its status and version otherwise.
    pub agent: Option<(bool, i64)>,
    /// The subject token is not revoked and its session (if any) is alive.
    pub live: bool,
    /// The requested audience is a registered agent's SPIFFE id.
    pub target_is_agent: bool,
}

/// What an exchange also asks in the same round trip.
#[derive(Debug, Clone, Copy)]
pub struct HopFacts<'a> {
    pub subject_jti: &'a str,
    pub sid: Option<&'a str>,
    pub audience: &'a str,
}

/// Marks the actor token's `jti` used and, in the same statement, reads the actor's current
/// status and version, the subject token's liveness and whether the audience is an agent: one
/// round trip for everything the hop needs from the store before policy.
///
/// The commit is asynchronous (`synchronous_commit = off` for this statement only). A crash
/// of Postgres or the machine can forget a `jti` consumed in the last few hundred milliseconds;
/// the token it came with could then be presented again for the rest of its minute, by whoever
/// holds it — which is the agent that made it, since actor tokens travel only from the agent to
/// us. And every answer that hands something out for it (a token) first writes its issuance
/// event, whose commit is ordered after this one in the WAL. See `docs/BENCHMARKS.md`.
///
/// The prune takes expired ids in `expires_at` order: with `ORDER BY … LIMIT` the planner walks
/// the `used_jtis (expires_at)` index and stops at the first live row. Without it, and with the
/// table's statistics lagging behind its growth (one row per hop), it chose a sequential scan
/// of the whole table on every hop: the cost of a hop grew with the table.
pub async fn consume(
    client: &deadpool_postgres::Client,
    issuer: &str,
    jti: &str,
    exp: i64,
    hop: Option<HopFacts<'_>>,
) -> anyhow::Result<Consumed> {
    let stmt = client
        .prepare_cached(
            "WITH pruned AS (DELETE FROM used_jtis WHERE jti IN
                 (SELECT jti FROM used_jtis WHERE expires_at < now() - interval '5 minutes'
                  ORDER BY expires_at LIMIT 100)),
             ins AS (INSERT INTO used_jtis (jti, issuer, expires_at) VALUES ($1, $2, to_timestamp($3))
                 ON CONFLICT (jti) DO NOTHING RETURNING 1),
             agent AS (SELECT status = 'active' AS active, (extract(epoch FROM updated_at) * 1000000)::bigint AS version
                 FROM agents WHERE spiffe_id = $2)
             SELECT EXISTS (SELECT 1 FROM ins),
                 (SELECT active FROM agent), (SELECT version FROM agent),
                 NOT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $4)
                     AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM sessions WHERE id = $5 AND revoked_at IS NULL AND expires_at > now())),
                 EXISTS (SELECT 1 FROM agents WHERE spiffe_id = $6),
                 set_config('synchronous_commit', 'off', true)",
        )
        .await?;
    let (subject_jti, sid, audience) = match hop {
        Some(h) => (Some(h.subject_jti), h.sid, Some(h.audience)),
        None => (None, None, None),
    };
    let row = client
        .query_one(
            &stmt,
            &[
                &format!("{issuer}#{jti}"),
                &issuer,
                &(exp as f64),
                &subject_jti,
                &sid,
                &audience,
            ],
        )
        .await?;
    let active: Option<bool> = row.try_get(1)?;
    let version: Option<i64> = row.try_get(2)?;
    Ok(Consumed {
        fresh: row.try_get(0)?,
        agent: active.zip(version),
        live: row.try_get(3)?,
        target_is_agent: row.try_get(4)?,
    })
}

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
                 (SELECT jti FROM used_jtis WHERE expires_at < now() - interval '5 minutes'
                  ORDER BY expires_at LIMIT 100))
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
/// (if it has one) alive? One round trip (the statement is prepared once per pooled
/// connection), used on every introspection and by our own APIs.
pub async fn token_is_live(
    client: &deadpool_postgres::Client,
    jti: &str,
    sid: Option<&str>,
) -> anyhow::Result<bool> {
    let stmt = client
        .prepare_cached(
            "SELECT NOT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $1)
                AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM sessions WHERE id = $2 AND revoked_at IS NULL AND expires_at > now()))",
        )
        .await?;
    let row = client.query_one(&stmt, &[&jti, &sid]).await?;
    Ok(row.try_get(0)?)
}
