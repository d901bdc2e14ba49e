//! Sign-in sessions. Every token carries its session id (`sid`); a revoked session makes every
//! token of it inactive and unexchangeable.

use std::time::Duration;

use serde::Serialize;
use tokio_postgres::Client;

#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub email: String,
    pub client_id: String,
    pub acr: String,
    pub auth_time: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
}

const SELECT: &str = "SELECT s.id, s.user_id, u.email, s.client_id, s.acr,
        extract(epoch FROM s.auth_time)::bigint AS auth_time, extract(epoch FROM s.created_at)::bigint AS created_at,
        extract(epoch FROM s.expires_at)::bigint AS expires_at, extract(epoch FROM s.revoked_at)::bigint AS revoked_at,
        s.revoked_reason
    FROM sessions s JOIN users u ON u.id = s.user_id";

fn from_row(r: &tokio_postgres::Row) -> Session {
    Session {
        id: r.get("id"),
        user_id: r.get("user_id"),
        email: r.get("email"),
        client_id: r.get("client_id"),
        acr: r.get("acr"),
        auth_time: r.get("auth_time"),
        created_at: r.get("created_at"),
        expires_at: r.get("expires_at"),
        revoked_at: r.get("revoked_at"),
        revoked_reason: r.get("revoked_reason"),
    }
}

pub async fn create(
    client: &Client,
    user_id: &str,
    client_id: &str,
    acr: &str,
    ttl: Duration,
) -> anyhow::Result<Session> {
    let id = format!("ses_{}", kit::random_id(16));
    let secs = ttl.as_secs_f64();
    client
        .execute(
            "INSERT INTO sessions (id, user_id, client_id, acr, auth_time, expires_at)
             VALUES ($1, $2, $3, $4, now(), now() + make_interval(secs => $5))",
            &[&id, &user_id, &client_id, &acr, &secs],
        )
        .await?;
    get(client, &id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("session vanished"))
}

pub async fn get(client: &Client, id: &str) -> anyhow::Result<Option<Session>> {
    Ok(client
        .query_opt(&format!("{SELECT} WHERE s.id = $1"), &[&id])
        .await?
        .as_ref()
        .map(from_row))
}

/// Is the session alive: not revoked and not past its end?
pub async fn is_alive(client: &Client, id: &str) -> anyhow::Result<bool> {
    Ok(client
        .query_opt(
            "SELECT 1 FROM sessions WHERE id = $1 AND revoked_at IS NULL AND expires_at > now()",
            &[&id],
        )
        .await?
        .is_some())
}

pub async fn list_for_user(client: &Client, user_id: &str) -> anyhow::Result<Vec<Session>> {
    Ok(client
        .query(
            &format!("{SELECT} WHERE s.user_id = $1 ORDER BY s.created_at DESC"),
            &[&user_id],
        )
        .await?
        .iter()
        .map(from_row)
        .collect())
}

pub async fn list_all(client: &Client) -> anyhow::Result<Vec<Session>> {
    Ok(client
        .query(
            &format!("{SELECT} ORDER BY s.created_at DESC LIMIT 500"),
            &[],
        )
        .await?
        .iter()
        .map(from_row)
        .collect())
}

/// Ends the session. `Ok(false)` if it was already revoked or does not exist. Pending approvals
/// of the session are denied with it, so nothing minted later can outlive it. The CAEP
/// `session-revoked` for the transmitter is queued in the same transaction (`by` names who
/// ended it), so no revocation goes unreported.
pub async fn revoke(
    client: &mut Client,
    id: &str,
    reason: &str,
    by: super::outbox::RevokedBy,
) -> anyhow::Result<bool> {
    let tx = client.transaction().await?;
    let n = tx
        .execute("UPDATE sessions SET revoked_at = now(), revoked_reason = $2 WHERE id = $1 AND revoked_at IS NULL", &[&id, &reason])
        .await?;
    if n == 1 {
        super::outbox::session_revoked(&tx, id, reason, by).await?;
    }
    tx.execute("UPDATE approvals SET status = 'denied', decided_at = now() WHERE session_id = $1 AND status = 'pending'", &[&id])
        .await?;
    tx.execute(
        "DELETE FROM session_write_grants WHERE session_id = $1",
        &[&id],
    )
    .await?;
    tx.commit().await?;
    Ok(n == 1)
}
