//! The SET queue. A row is `pending` until a push is answered 202 or a poll acknowledges it
//! (`delivered`), or until the receiver refuses it or pushes keep failing (`failed`). Push
//! workers claim due rows with `FOR UPDATE SKIP LOCKED` and a lease (`next_attempt_at` moved
//! ahead), so replicas never push the same row at once, and a replica that dies mid-push only
//! delays its rows by the lease.

use std::time::Duration;

use tokio_postgres::GenericClient;

/// One SET to queue.
#[derive(Debug, Clone)]
pub struct NewSet<'a> {
    pub jti: &'a str,
    pub stream_id: &'a str,
    pub event_type: &'a str,
    pub txn: Option<&'a str>,
    pub token: &'a str,
}

pub async fn enqueue(db: &impl GenericClient, s: &NewSet<'_>) -> Result<(), tokio_postgres::Error> {
    db.execute(
        "INSERT INTO sets (jti, stream_id, event_type, txn, token) VALUES ($1, $2, $3, $4, $5)",
        &[&s.jti, &s.stream_id, &s.event_type, &s.txn, &s.token],
    )
    .await?;
    Ok(())
}

/// A SET claimed for one push attempt.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub seq: i64,
    pub jti: String,
    pub stream_id: String,
    pub token: String,
    pub attempts: i32,
    pub endpoint_url: String,
    pub authorization_header: Option<String>,
}

/// Claims up to `limit` due SETs of enabled push streams, oldest first, for `lease`.
pub async fn claim_push(
    db: &impl GenericClient,
    limit: i64,
    lease: Duration,
) -> Result<Vec<Claimed>, tokio_postgres::Error> {
    let rows = db
        .query(
            "WITH due AS (
                 SELECT s.seq FROM sets s JOIN streams st ON st.stream_id = s.stream_id
                 WHERE s.state = 'pending' AND s.next_attempt_at <= now()
                   AND st.status = 'enabled' AND st.delivery_method = $1
                   AND st.endpoint_url IS NOT NULL
                 ORDER BY s.seq LIMIT $2
                 FOR UPDATE OF s SKIP LOCKED)
             UPDATE sets s SET next_attempt_at = now() + make_interval(secs => $3),
                 attempts = s.attempts + 1
             FROM due, streams st
             WHERE s.seq = due.seq AND st.stream_id = s.stream_id
             RETURNING s.seq, s.jti, s.stream_id, s.token, s.attempts, st.endpoint_url,
                 st.authorization_header",
            &[&kit::ssf::PUSH, &limit, &lease.as_secs_f64()],
        )
        .await?;
    let mut out: Vec<Claimed> = rows
        .iter()
        .map(|r| Claimed {
            seq: r.get(0),
            jti: r.get(1),
            stream_id: r.get(2),
            token: r.get(3),
            attempts: r.get(4),
            endpoint_url: r.get(5),
            authorization_header: r.get(6),
        })
        .collect();
    out.sort_by_key(|c| c.seq);
    Ok(out)
}

pub async fn delivered(db: &impl GenericClient, jti: &str) -> Result<(), tokio_postgres::Error> {
    db.execute(
        "UPDATE sets SET state = 'delivered', finished_at = now(), last_error = NULL
         WHERE jti = $1 AND state = 'pending'",
        &[&jti],
    )
    .await?;
    Ok(())
}

pub async fn failed(
    db: &impl GenericClient,
    jti: &str,
    error: &str,
) -> Result<(), tokio_postgres::Error> {
    db.execute(
        "UPDATE sets SET state = 'failed', finished_at = now(), last_error = $2
         WHERE jti = $1 AND state = 'pending'",
        &[&jti, &error],
    )
    .await?;
    Ok(())
}

/// Schedules another attempt after `after`; `attempted` = false gives back the attempt the
/// claim counted (the SET was never sent).
pub async fn retry(
    db: &impl GenericClient,
    jti: &str,
    after: Duration,
    error: &str,
    attempted: bool,
) -> Result<(), tokio_postgres::Error> {
    let give_back: i32 = if attempted { 0 } else { 1 };
    db.execute(
        "UPDATE sets SET next_attempt_at = now() + make_interval(secs => $2), last_error = $3,
             attempts = attempts - $4
         WHERE jti = $1 AND state = 'pending'",
        &[&jti, &after.as_secs_f64(), &error, &give_back],
    )
    .await?;
    Ok(())
}

/// Poll: marks the stream's SETs named in `jtis` delivered.
pub async fn ack(
    db: &impl GenericClient,
    stream_id: &str,
    jtis: &[String],
) -> Result<u64, tokio_postgres::Error> {
    db.execute(
        "UPDATE sets SET state = 'delivered', finished_at = now()
         WHERE stream_id = $1 AND jti = ANY($2) AND state = 'pending'",
        &[&stream_id, &jtis],
    )
    .await
}

/// Poll: marks one of the stream's SETs refused by the receiver.
pub async fn refused(
    db: &impl GenericClient,
    stream_id: &str,
    jti: &str,
    error: &str,
) -> Result<bool, tokio_postgres::Error> {
    Ok(db
        .execute(
            "UPDATE sets SET state = 'failed', finished_at = now(), last_error = $3
             WHERE stream_id = $1 AND jti = $2 AND state = 'pending'",
            &[&stream_id, &jti, &error],
        )
        .await?
        > 0)
}

/// Poll: up to `limit` pending SETs of an enabled stream, oldest first, as (jti, token).
pub async fn pending(
    db: &impl GenericClient,
    stream_id: &str,
    limit: i64,
) -> Result<Vec<(String, String)>, tokio_postgres::Error> {
    let rows = db
        .query(
            "SELECT s.jti, s.token FROM sets s JOIN streams st ON st.stream_id = s.stream_id
             WHERE s.stream_id = $1 AND s.state = 'pending' AND st.status = 'enabled'
             ORDER BY s.seq LIMIT $2",
            &[&stream_id, &limit],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// A disabled stream holds nothing (SSF §8.1.2): its queue is dropped.
pub async fn drop_pending(
    db: &impl GenericClient,
    stream_id: &str,
) -> Result<u64, tokio_postgres::Error> {
    db.execute(
        "DELETE FROM sets WHERE stream_id = $1 AND state = 'pending'",
        &[&stream_id],
    )
    .await
}

/// Settled SETs are kept for a while (forensics), then removed.
pub async fn purge(
    db: &impl GenericClient,
    older_than: Duration,
) -> Result<u64, tokio_postgres::Error> {
    db.execute(
        "DELETE FROM sets WHERE state <> 'pending' AND finished_at < now() - make_interval(secs => $1)",
        &[&older_than.as_secs_f64()],
    )
    .await
}
