//! The signals outbox: CAEP events waiting for the transmitter. A row is written in the
//! transaction of the change it reports ([`session_revoked`] is called by
//! [`super::sessions::revoke`]); [`crate::signals`] delivers it. Every write also `NOTIFY`s
//! `idp_signals`, so a worker on any replica sends it at once.

use std::time::Duration;

use serde_json::Value;
use tokio_postgres::{Client, GenericClient};

/// The channel a new outbox row is announced on.
pub const CHANNEL: &str = "idp_signals";

/// Who ended a session: CAEP's `initiating_entity`, plus the transmitter itself (a signal from
/// elsewhere reporting a session we then end), which is not reported back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokedBy {
    /// The administrator (sessions API, SCIM).
    Admin,
    /// The user, ending their own session.
    User,
    /// A rule: the anomaly rule.
    Policy,
    /// The platform itself: a reused refresh token, a failure that must not leave a session half-set-up.
    System,
    /// A session-revoked SET from the transmitter: no outbox row (it would only echo back).
    Transmitter,
}

impl RevokedBy {
    /// CAEP `initiating_entity`; `None` for [`RevokedBy::Transmitter`].
    pub fn initiating_entity(self) -> Option<&'static str> {
        match self {
            Self::Admin => Some("admin"),
            Self::User => Some("user"),
            Self::Policy => Some("policy"),
            Self::System => Some("system"),
            Self::Transmitter => None,
        }
    }
}

/// Queues `session-revoked` for session `id`, with the user it belongs to. Call it inside the
/// transaction that revokes the session.
pub async fn session_revoked(
    tx: &impl GenericClient,
    id: &str,
    reason: &str,
    by: RevokedBy,
) -> Result<(), tokio_postgres::Error> {
    let Some(entity) = by.initiating_entity() else {
        return Ok(());
    };
    tx.execute(
        "WITH ins AS (
             INSERT INTO signal_outbox (kind, user_id, email, session_id, initiating_entity, reason_admin)
             SELECT 'session-revoked', s.user_id, u.email, s.id, $2, $3
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1
             RETURNING id)
         SELECT pg_notify('idp_signals', id::text) FROM ins",
        &[&id, &entity, &reason],
    )
    .await?;
    Ok(())
}

/// Queues `credential-change` (`change_type`: `revoke`, `credential_type`: `password`) for a
/// user whose credentials stopped working (SCIM deactivation).
pub async fn credential_revoked(
    client: &impl GenericClient,
    user_id: &str,
    email: &str,
    reason: &str,
    by: RevokedBy,
) -> Result<(), tokio_postgres::Error> {
    let Some(entity) = by.initiating_entity() else {
        return Ok(());
    };
    let extra = serde_json::json!({"credential_type": "password", "change_type": "revoke"});
    client
        .execute(
            "WITH ins AS (
                 INSERT INTO signal_outbox (kind, user_id, email, initiating_entity, reason_admin, extra)
                 VALUES ('credential-change', $1, $2, $3, $4, $5) RETURNING id)
             SELECT pg_notify('idp_signals', id::text) FROM ins",
            &[&user_id, &email, &entity, &reason, &extra],
        )
        .await?;
    Ok(())
}

/// One undelivered event.
#[derive(Debug, Clone)]
pub struct Pending {
    pub id: i64,
    pub kind: String,
    pub user_id: String,
    pub email: Option<String>,
    pub session_id: Option<String>,
    pub initiating_entity: String,
    pub reason_admin: String,
    pub extra: Value,
    /// Unix seconds: CAEP's `event_timestamp`.
    pub occurred_at: i64,
    pub attempts: i32,
}

/// Locks up to `limit` rows that are due, oldest first, skipping rows another worker holds.
/// The lock lasts until `tx` ends.
pub async fn claim_due(
    tx: &impl GenericClient,
    limit: i64,
) -> Result<Vec<Pending>, tokio_postgres::Error> {
    let rows = tx
        .query(
            "SELECT id, kind, user_id, email, session_id, initiating_entity, reason_admin, extra,
                    extract(epoch FROM occurred_at)::bigint, attempts
             FROM signal_outbox
             WHERE delivered_at IS NULL AND next_attempt_at <= now()
             ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
            &[&limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Pending {
            id: r.get(0),
            kind: r.get(1),
            user_id: r.get(2),
            email: r.get(3),
            session_id: r.get(4),
            initiating_entity: r.get(5),
            reason_admin: r.get(6),
            extra: r.get(7),
            occurred_at: r.get(8),
            attempts: r.get(9),
        })
        .collect())
}

pub async fn mark_delivered(
    tx: &impl GenericClient,
    id: i64,
    txn: Option<&str>,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "UPDATE signal_outbox SET delivered_at = clock_timestamp(), attempts = attempts + 1, txn = $2, last_error = NULL WHERE id = $1",
        &[&id, &txn],
    )
    .await?;
    Ok(())
}

/// Records a failed attempt; the row is due again after `retry_in`.
pub async fn mark_failed(
    tx: &impl GenericClient,
    id: i64,
    error: &str,
    retry_in: Duration,
) -> Result<(), tokio_postgres::Error> {
    let secs = retry_in.as_secs_f64();
    tx.execute(
        "UPDATE signal_outbox SET attempts = attempts + 1, last_error = $2,
                next_attempt_at = now() + make_interval(secs => $3) WHERE id = $1",
        &[&id, &error, &secs],
    )
    .await?;
    Ok(())
}

/// How long until the next undelivered row is due (zero if one is due now), if any.
pub async fn next_due_in(client: &Client) -> Result<Option<Duration>, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT greatest(0, extract(epoch FROM min(next_attempt_at) - now()))::float8
             FROM signal_outbox WHERE delivered_at IS NULL",
            &[],
        )
        .await?;
    Ok(row
        .get::<_, Option<f64>>(0)
        .map(|s| Duration::from_secs_f64(s.max(0.0))))
}

/// Forgets rows delivered more than a day ago (their security events stay).
pub async fn prune(client: &Client) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "DELETE FROM signal_outbox WHERE delivered_at < now() - interval '1 day'",
            &[],
        )
        .await
}
