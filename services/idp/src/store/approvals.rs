//! Push approvals (CIBA-shaped step-up) and the tier-2 write grants sessions hold.
//!
//! An approval holds everything needed to mint the token once the user says yes
//! (`pending_token`), so the poll that collects it cannot change what was approved. The
//! `auth_req_id` the client polls with is a bearer secret: only its hash is stored. The
//! approval's public `id` is what the user's devices see and act on.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio_postgres::{Client, Row};

#[derive(Debug, Clone, Serialize)]
pub struct Approval {
    pub id: String,
    #[serde(skip)]
    pub user_id: String,
    #[serde(skip)]
    pub session_id: String,
    #[serde(skip)]
    pub client_id: String,
    pub requested_by: String,
    pub chain: Vec<String>,
    pub audience: String,
    pub authorization_details: Value,
    pub fingerprint: String,
    pub summary: String,
    pub binding_code: String,
    pub tier: i32,
    pub status: String,
    #[serde(skip)]
    pub pending_token: Value,
    #[serde(skip)]
    pub poll_interval: i32,
    pub created_at: i64,
    pub expires_at: i64,
    #[serde(skip)]
    pub expired: bool,
    #[serde(skip)]
    pub polled_too_soon: bool,
}

const SELECT: &str = "SELECT id, user_id, session_id, client_id, requested_by, chain, audience, authorization_details,
        fingerprint, summary, binding_code, tier, status, pending_token, poll_interval,
        extract(epoch FROM created_at)::bigint AS created, extract(epoch FROM expires_at)::bigint AS expires,
        expires_at <= now() AS expired,
        coalesce(last_polled_at > now() - make_interval(secs => poll_interval) + interval '100 milliseconds', false) AS too_soon
    FROM approvals";

fn from_row(r: &Row) -> Approval {
    Approval {
        id: r.get("id"),
        user_id: r.get("user_id"),
        session_id: r.get("session_id"),
        client_id: r.get("client_id"),
        requested_by: r.get("requested_by"),
        chain: serde_json::from_value(r.get("chain")).unwrap_or_default(),
        audience: r.get("audience"),
        authorization_details: r.get("authorization_details"),
        fingerprint: r.get("fingerprint"),
        summary: r.get("summary"),
        binding_code: r.get("binding_code"),
        tier: r.get("tier"),
        status: r.get("status"),
        pending_token: r.get("pending_token"),
        poll_interval: r.get("poll_interval"),
        created_at: r.get("created"),
        expires_at: r.get("expires"),
        expired: r.get("expired"),
        polled_too_soon: r.get("too_soon"),
    }
}

#[derive(Debug)]
pub struct NewApproval<'a> {
    pub user_id: &'a str,
    pub session_id: &'a str,
    pub client_id: &'a str,
    pub requested_by: &'a str,
    pub chain: &'a [String],
    pub audience: &'a str,
    pub authorization_details: Value,
    pub fingerprint: &'a str,
    pub summary: &'a str,
    pub tier: u8,
    pub pending_token: Value,
    pub ttl: Duration,
    pub poll_interval: Duration,
}

/// Creates a pending approval; returns it with the `auth_req_id` the client will poll with.
pub async fn create(client: &Client, n: &NewApproval<'_>) -> anyhow::Result<(Approval, String)> {
    let id = format!("apr_{}", kit::random_id(12));
    let auth_req_id = kit::random_id(32);
    let code = binding_code();
    let row = client
        .query_one(
            "INSERT INTO approvals (id, auth_req_hash, user_id, session_id, client_id, requested_by, chain, audience,
                 authorization_details, fingerprint, summary, binding_code, tier, status, pending_token, poll_interval, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'pending', $14, $15, now() + make_interval(secs => $16))
             RETURNING id",
            &[
                &id,
                &kit::sha256_hex(&auth_req_id),
                &n.user_id,
                &n.session_id,
                &n.client_id,
                &n.requested_by,
                &serde_json::to_value(n.chain)?,
                &n.audience,
                &n.authorization_details,
                &n.fingerprint,
                &n.summary,
                &code,
                &i32::from(n.tier),
                &n.pending_token,
                &(n.poll_interval.as_secs() as i32),
                &n.ttl.as_secs_f64(),
            ],
        )
        .await?;
    let id: String = row.get(0);
    notify(client, n.user_id).await?;
    let approval = get(client, &id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("approval vanished"))?;
    Ok((approval, auth_req_id))
}

/// Benchmark mode only (`IDP_BENCH_AUTO_APPROVE`): records an approval that nobody was asked
/// for, already decided and consumed by the token `jti` minted under it, so the audit trail
/// still has an approval id to join on; with `write_window` (tier 2) the session's writes are
/// covered as after a real approval. Returns its id.
pub async fn create_auto_approved(
    tx: &tokio_postgres::Transaction<'_>,
    n: &NewApproval<'_>,
    jti: &str,
    write_window: Option<Duration>,
) -> anyhow::Result<String> {
    let id = format!("apr_{}", kit::random_id(12));
    tx.execute(
        "INSERT INTO approvals (id, auth_req_hash, user_id, session_id, client_id, requested_by, chain, audience,
             authorization_details, fingerprint, summary, binding_code, tier, status, pending_token, poll_interval,
             expires_at, decided_at, issued_jti)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'consumed', $14, $15,
             now() + make_interval(secs => $16), now(), $17)",
        &[
            &id,
            &kit::sha256_hex(kit::random_id(32)),
            &n.user_id,
            &n.session_id,
            &n.client_id,
            &n.requested_by,
            &serde_json::to_value(n.chain)?,
            &n.audience,
            &n.authorization_details,
            &n.fingerprint,
            &n.summary,
            &binding_code(),
            &i32::from(n.tier),
            &n.pending_token,
            &(n.poll_interval.as_secs() as i32),
            &n.ttl.as_secs_f64(),
            &jti,
        ],
    )
    .await?;
    if let Some(window) = write_window {
        tx.execute(
            "INSERT INTO session_write_grants (session_id, approval_id, valid_until)
             VALUES ($1, $2, now() + make_interval(secs => $3))
             ON CONFLICT (session_id) DO UPDATE SET approval_id = $2, valid_until = now() + make_interval(secs => $3)",
            &[&n.session_id, &id, &window.as_secs_f64()],
        )
        .await?;
    }
    Ok(id)
}

/// A short code shown both where the agent waits and on the phone, so the user can tell that
/// the request on the phone is the one they started.
fn binding_code() -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    let mut s: String = (0..4)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    s.insert(2, '-');
    s
}

pub async fn get(client: &Client, id: &str) -> anyhow::Result<Option<Approval>> {
    Ok(client
        .query_opt(&format!("{SELECT} WHERE id = $1"), &[&id])
        .await?
        .as_ref()
        .map(from_row))
}

/// Looks up an approval by the polling client's `auth_req_id` and records the poll time
/// (returning whether this poll came sooner than the interval allows).
pub async fn poll(client: &Client, auth_req_id: &str) -> anyhow::Result<Option<Approval>> {
    let hash = kit::sha256_hex(auth_req_id);
    let Some(row) = client
        .query_opt(&format!("{SELECT} WHERE auth_req_hash = $1"), &[&hash])
        .await?
    else {
        return Ok(None);
    };
    client
        .execute(
            "UPDATE approvals SET last_polled_at = now() WHERE auth_req_hash = $1",
            &[&hash],
        )
        .await?;
    Ok(Some(from_row(&row)))
}

/// Marks an approved approval consumed, recording the jti minted under it. Exactly one poll
/// wins; `Ok(false)` for every other.
pub async fn consume(client: &Client, id: &str, jti: &str) -> anyhow::Result<bool> {
    Ok(client
        .execute("UPDATE approvals SET status = 'consumed', issued_jti = $2 WHERE id = $1 AND status = 'approved'", &[&id, &jti])
        .await?
        == 1)
}

/// The user's decision. Only a pending, unexpired approval of this user can be decided, once.
pub async fn decide(
    client: &Client,
    id: &str,
    user_id: &str,
    approve: bool,
) -> anyhow::Result<Option<Approval>> {
    let status = if approve { "approved" } else { "denied" };
    let n = client
        .execute(
            "UPDATE approvals SET status = $3, decided_at = now()
             WHERE id = $1 AND user_id = $2 AND status = 'pending' AND expires_at > now()",
            &[&id, &user_id, &status],
        )
        .await?;
    if n == 0 {
        return Ok(None);
    }
    notify(client, user_id).await?;
    get(client, id).await
}

pub async fn pending_for_user(client: &Client, user_id: &str) -> anyhow::Result<Vec<Approval>> {
    Ok(client
        .query(&format!("{SELECT} WHERE user_id = $1 AND status = 'pending' AND expires_at > now() ORDER BY created_at"), &[&user_id])
        .await?
        .iter()
        .map(from_row)
        .collect())
}

async fn notify(client: &Client, user_id: &str) -> anyhow::Result<()> {
    client
        .execute("SELECT pg_notify('idp_approvals', $1)", &[&user_id])
        .await?;
    Ok(())
}

/// The session's tier-2 grant, if it has one still valid: the approval that covers it.
pub async fn write_grant(client: &Client, session_id: &str) -> anyhow::Result<Option<String>> {
    Ok(client
        .query_opt("SELECT approval_id FROM session_write_grants WHERE session_id = $1 AND valid_until > now()", &[&session_id])
        .await?
        .map(|r| r.get(0)))
}

/// After a tier-2 approval: the session's writes are covered for `window`.
pub async fn grant_writes(
    client: &Client,
    session_id: &str,
    approval_id: &str,
    window: Duration,
) -> anyhow::Result<()> {
    client
        .execute(
            "INSERT INTO session_write_grants (session_id, approval_id, valid_until)
             VALUES ($1, $2, now() + make_interval(secs => $3))
             ON CONFLICT (session_id) DO UPDATE SET approval_id = $2, valid_until = now() + make_interval(secs => $3)",
            &[&session_id, &approval_id, &window.as_secs_f64()],
        )
        .await?;
    Ok(())
}
