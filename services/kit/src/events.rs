//! The structured security event every decision writes: one shape for every service, stored in
//! the deciding service's own `events` table and published with `NOTIFY security_events`.

use serde::{Deserialize, Serialize};

/// The Postgres channel every service publishes its events on.
pub const CHANNEL: &str = "security_events";

/// How a decision came out. The UI colours by this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Granted without asking anyone.
    #[default]
    Allowed,
    /// Refused; `reason` says by which rule.
    Denied,
    /// Waiting for the user's approval.
    Pending,
    /// The user approved on their device.
    Approved,
    /// Granted under an approval the session already holds (tier 2, remembered 30 minutes).
    HitlCached,
    /// Something that is neither a grant nor a refusal (a login, a session ending, a reload).
    Info,
    /// A failure of ours, not a decision.
    Error,
}

/// One security decision. Fields that do not apply stay `None` and are left out of the JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SecurityEvent {
    pub id: String,
    /// RFC 3339 with milliseconds.
    pub time: String,
    pub service: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Current actor first, the user last: `["banking", "concierge", "alice@example.com"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actor_chain: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rar_summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pg_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The token this decision issued, decoded: `{"header": {..}, "claims": {..}}`. Never the
    /// signature, so the record cannot be presented as the token. Set by the idp on issuance,
    /// for the UI's token inspector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<serde_json::Value>,
}

impl SecurityEvent {
    /// A new event stamped now, with a fresh id.
    pub fn new(service: &str, kind: &str, outcome: Outcome) -> Self {
        let now = time::OffsetDateTime::now_utc();
        let time = now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| now.unix_timestamp().to_string());
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            time,
            service: service.into(),
            kind: kind.into(),
            outcome,
            ..Self::default()
        }
    }

    /// Sets `duration_ms` from a start instant.
    pub fn timed(mut self, started: std::time::Instant) -> Self {
        self.duration_ms =
            Some((started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0);
        self
    }
}

/// When an event's commit may return: after its WAL record is on disk, or before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// `synchronous_commit = on`: the event survives any crash once `emit` returns.
    Durable,
    /// `synchronous_commit = off` for this one statement: the commit returns before the disk
    /// write, and a crash of Postgres or the machine (not of the service) can lose the last
    /// few hundred milliseconds of such events. Only for decisions whose every consequence is
    /// recorded durably elsewhere; see `docs/BENCHMARKS.md` ("What a crash may lose").
    Deferred,
}

impl Commit {
    fn setting(self) -> &'static str {
        match self {
            Commit::Durable => "on",
            Commit::Deferred => "off",
        }
    }
}

/// Insert and publish in one statement; `$7` is this transaction's `synchronous_commit`.
const EMIT_SQL: &str = "WITH ins AS (
         INSERT INTO events (id, at, kind, outcome, jti, session, body)
         VALUES ($1::text::uuid, now(), $2, $3, $4, $5, $6) RETURNING body)
     SELECT pg_notify('security_events', body::text), set_config('synchronous_commit', $7, true) FROM ins";

/// Writes `event` into `events` of the connection's schema (the service's own store) and
/// publishes it on [`CHANNEL`], in one statement, durably.
pub async fn emit(
    client: &tokio_postgres::Client,
    event: &SecurityEvent,
) -> Result<(), tokio_postgres::Error> {
    let stmt = client.prepare(EMIT_SQL).await?;
    run_emit(client, &stmt, event, Commit::Durable).await
}

/// [`emit`] on a pooled connection, with the statement prepared once per connection (one
/// round trip instead of two) and the commit mode chosen by the caller.
pub async fn emit_on(
    client: &deadpool_postgres::Client,
    event: &SecurityEvent,
    commit: Commit,
) -> Result<(), tokio_postgres::Error> {
    let stmt = client.prepare_cached(EMIT_SQL).await?;
    run_emit(client, &stmt, event, commit).await
}

async fn run_emit(
    client: &tokio_postgres::Client,
    stmt: &tokio_postgres::Statement,
    event: &SecurityEvent,
    commit: Commit,
) -> Result<(), tokio_postgres::Error> {
    let body = serde_json::to_value(event).unwrap_or_default();
    client
        .execute(
            stmt,
            &[
                &event.id,
                &event.kind,
                &outcome_text(event),
                &event.jti,
                &event.session,
                &body,
                &commit.setting(),
            ],
        )
        .await?;
    log(event);
    Ok(())
}

fn outcome_text(event: &SecurityEvent) -> Option<String> {
    serde_json::to_value(event.outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
}

/// The decision's line in the service's log.
fn log(event: &SecurityEvent) {
    tracing::info!(
        target: "security_event",
        kind = %event.kind,
        outcome = ?event.outcome,
        user = event.user.as_deref().unwrap_or("-"),
        tool = event.tool.as_deref().unwrap_or("-"),
        reason = event.reason.as_deref().unwrap_or("-"),
        "decision"
    );
}

/// [`emit`] for many events in one statement and one commit: each row inserted and published
/// (one `NOTIFY` per event, in insertion order) exactly as `emit` would, for a writer that
/// groups the events of concurrent requests. `$7` is the transaction's `synchronous_commit`.
const EMIT_MANY_SQL: &str = "WITH ins AS (
         INSERT INTO events (id, at, kind, outcome, jti, session, body)
         SELECT id::uuid, now(), kind, outcome, jti, session, body
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[])
              WITH ORDINALITY AS t(id, kind, outcome, jti, session, body, n)
         ORDER BY n
         RETURNING body)
     SELECT pg_notify('security_events', body::text), set_config('synchronous_commit', $7, true)
     FROM ins";

/// Writes and publishes `events` in one statement on a pooled connection, committing as
/// `commit` says; see [`emit_on`]. All or none: one failure fails the whole group.
pub async fn emit_many(
    client: &deadpool_postgres::Client,
    events: &[SecurityEvent],
    commit: Commit,
) -> Result<(), tokio_postgres::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let stmt = client.prepare_cached(EMIT_MANY_SQL).await?;
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    let outcomes: Vec<Option<String>> = events.iter().map(outcome_text).collect();
    let jtis: Vec<Option<&str>> = events.iter().map(|e| e.jti.as_deref()).collect();
    let sessions: Vec<Option<&str>> = events.iter().map(|e| e.session.as_deref()).collect();
    let bodies: Vec<serde_json::Value> = events
        .iter()
        .map(|e| serde_json::to_value(e).unwrap_or_default())
        .collect();
    client
        .execute(
            &stmt,
            &[
                &ids,
                &kinds,
                &outcomes,
                &jtis,
                &sessions,
                &bodies,
                &commit.setting(),
            ],
        )
        .await?;
    events.iter().for_each(log);
    Ok(())
}

/// The DDL of the `events` table each service creates in its own schema.
pub const EVENTS_TABLE_SQL: &str = "
CREATE TABLE IF NOT EXISTS events (
    id uuid PRIMARY KEY,
    at timestamptz NOT NULL,
    kind text NOT NULL,
    outcome text,
    jti text,
    session text,
    body jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS events_jti ON events (jti) WHERE jti IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_at ON events (at);
";
