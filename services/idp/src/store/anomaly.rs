//! What the anomaly rule reads: a session's recent refused exchanges, from the events table
//! (every refusal is already one event there, so the rule needs no store of its own).

use std::time::Duration;

use tokio_postgres::Client;

/// Refused token exchanges of `session` within the last `window`, not counting refusals because
/// the session had already ended.
pub async fn denied_exchanges(
    client: &Client,
    session: &str,
    window: Duration,
) -> Result<i64, tokio_postgres::Error> {
    let secs = window.as_secs_f64();
    let row = client
        .query_one(
            "SELECT count(*) FROM events
             WHERE session = $1 AND kind = 'token_exchange' AND outcome = 'denied'
               AND at > now() - make_interval(secs => $2)
               AND coalesce(body->>'reason', '') NOT LIKE 'session\\_revoked%'",
            &[&session, &secs],
        )
        .await?;
    Ok(row.get(0))
}
