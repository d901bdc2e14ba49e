//! Streams and their subjects. Every query that reads or changes a stream names its receiver:
//! a receiver's token can only ever reach its own streams.

use kit::ssf::{StreamStatus, SubjectId};
use tokio_postgres::{GenericClient, Row};

use crate::stream::Stream;

const COLUMNS: &str = "stream_id, receiver, aud, events_requested, events_delivered, \
    delivery_method, endpoint_url, authorization_header, description, status, status_reason";

fn from_row(r: &Row) -> Stream {
    let status: String = r.get("status");
    Stream {
        stream_id: r.get("stream_id"),
        receiver: r.get("receiver"),
        aud: r.get("aud"),
        events_requested: r.get("events_requested"),
        events_delivered: r.get("events_delivered"),
        delivery_method: r.get("delivery_method"),
        endpoint_url: r.get("endpoint_url"),
        authorization_header: r.get("authorization_header"),
        description: r.get("description"),
        status: StreamStatus::parse(&status).unwrap_or(StreamStatus::Disabled),
        status_reason: r.get("status_reason"),
    }
}

pub async fn insert(db: &impl GenericClient, s: &Stream) -> Result<(), tokio_postgres::Error> {
    db.execute(
        "INSERT INTO streams (stream_id, receiver, aud, events_requested, events_delivered,
             delivery_method, endpoint_url, authorization_header, description, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &s.stream_id,
            &s.receiver,
            &s.aud,
            &s.events_requested,
            &s.events_delivered,
            &s.delivery_method,
            &s.endpoint_url,
            &s.authorization_header,
            &s.description,
            &s.status.as_str(),
        ],
    )
    .await?;
    Ok(())
}

/// The stream `id` if `receiver` owns it; `for_update` locks it for the transaction.
pub async fn get(
    db: &impl GenericClient,
    receiver: &str,
    id: &str,
    for_update: bool,
) -> Result<Option<Stream>, tokio_postgres::Error> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let sql = format!("SELECT {COLUMNS} FROM streams WHERE stream_id = $1 AND receiver = $2{lock}");
    Ok(db
        .query_opt(&sql, &[&id, &receiver])
        .await?
        .map(|r| from_row(&r)))
}

pub async fn list(
    db: &impl GenericClient,
    receiver: &str,
) -> Result<Vec<Stream>, tokio_postgres::Error> {
    let sql =
        format!("SELECT {COLUMNS} FROM streams WHERE receiver = $1 ORDER BY created_at, stream_id");
    Ok(db
        .query(&sql, &[&receiver])
        .await?
        .iter()
        .map(from_row)
        .collect())
}

/// Saves the receiver-supplied fields (and the `events_delivered` they imply).
pub async fn update_fields(
    db: &impl GenericClient,
    s: &Stream,
) -> Result<(), tokio_postgres::Error> {
    db.execute(
        "UPDATE streams SET events_requested = $2, events_delivered = $3, delivery_method = $4,
             endpoint_url = $5, authorization_header = $6, description = $7, updated_at = now()
         WHERE stream_id = $1",
        &[
            &s.stream_id,
            &s.events_requested,
            &s.events_delivered,
            &s.delivery_method,
            &s.endpoint_url,
            &s.authorization_header,
            &s.description,
        ],
    )
    .await?;
    Ok(())
}

pub async fn delete(
    db: &impl GenericClient,
    receiver: &str,
    id: &str,
) -> Result<bool, tokio_postgres::Error> {
    Ok(db
        .execute(
            "DELETE FROM streams WHERE stream_id = $1 AND receiver = $2",
            &[&id, &receiver],
        )
        .await?
        > 0)
}

pub async fn set_status(
    db: &impl GenericClient,
    id: &str,
    status: StreamStatus,
    reason: Option<&str>,
) -> Result<(), tokio_postgres::Error> {
    db.execute(
        "UPDATE streams SET status = $2, status_reason = $3, updated_at = now() WHERE stream_id = $1",
        &[&id, &status.as_str(), &reason],
    )
    .await?;
    Ok(())
}

/// Records a verification request unless the last one was less than `min_secs` ago.
pub async fn try_verification(
    db: &impl GenericClient,
    id: &str,
    min_secs: u64,
) -> Result<bool, tokio_postgres::Error> {
    let secs = min_secs as f64;
    Ok(db
        .execute(
            "UPDATE streams SET last_verification_at = now()
             WHERE stream_id = $1 AND (last_verification_at IS NULL
                 OR last_verification_at <= now() - make_interval(secs => $2))",
            &[&id, &secs],
        )
        .await?
        > 0)
}

/// Every stream that would receive `event_uri` now or later (enabled or paused), locked
/// against a concurrent status change while its SETs are queued.
pub async fn receiving(
    db: &impl GenericClient,
    event_uri: &str,
) -> Result<Vec<Stream>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM streams WHERE status <> 'disabled' AND $1 = ANY(events_delivered)
         ORDER BY stream_id FOR SHARE"
    );
    Ok(db
        .query(&sql, &[&event_uri])
        .await?
        .iter()
        .map(from_row)
        .collect())
}

/// Whether a subject was added to or removed from a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectMode {
    Added,
    Removed,
}

pub async fn put_subject(
    db: &impl GenericClient,
    id: &str,
    subject: &SubjectId,
    mode: SubjectMode,
    verified: Option<bool>,
) -> Result<(), tokio_postgres::Error> {
    let json = serde_json::to_value(subject).unwrap_or_default();
    // serde_json's maps are ordered, so this text is canonical.
    let key = kit::sha256_hex(json.to_string());
    let mode = match mode {
        SubjectMode::Added => "added",
        SubjectMode::Removed => "removed",
    };
    db.execute(
        "INSERT INTO stream_subjects (stream_id, subject_key, subject, mode, verified)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (stream_id, subject_key)
         DO UPDATE SET mode = EXCLUDED.mode, verified = EXCLUDED.verified, updated_at = now()",
        &[&id, &key, &json, &mode, &verified],
    )
    .await?;
    Ok(())
}

/// The subjects of `ids`: (stream id, subject, mode).
pub async fn subjects(
    db: &impl GenericClient,
    ids: &[String],
) -> Result<Vec<(String, SubjectId, SubjectMode)>, tokio_postgres::Error> {
    let rows = db
        .query(
            "SELECT stream_id, subject, mode FROM stream_subjects WHERE stream_id = ANY($1)",
            &[&ids],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let subject = serde_json::from_value(r.get::<_, serde_json::Value>(1)).ok()?;
            let mode = if r.get::<_, String>(2) == "added" {
                SubjectMode::Added
            } else {
                SubjectMode::Removed
            };
            Some((r.get(0), subject, mode))
        })
        .collect())
}
