//! Faults and load, against the real stack (every service its own process, started by the same
//! launcher as `just up`): a service killed mid-scenario and started again
//! ([`stack::launch::Stack::kill_service`] / `start_service`: same port, same configuration),
//! Postgres crashed and restarted under the running services
//! ([`stack::launch::Stack::restart_postgres`]), and a bounded soak of concurrent sessions.
//! Each test asserts what must hold afterwards: no transfer half-applied or applied twice, no
//! ephemeral role left behind, no approval lost or applied twice, no signal lost, and every
//! issuer audit chain verifying. `docs/SECURITY.md` ("Faults injected") lists them.
//!
//! - `kill`: verify-rar killed between creating a role and recording its lease; banking killed
//!   while it holds a credential; the concierge killed while its delegated transfer waits; the idp killed while an approval is pending and right after
//!   it was given; the signals transmitter (and
//!   the idp) killed while a session revocation is queued.
//! - `postgres`: Postgres crashed and restarted while an approval waits; pooled connections
//!   carry statement and lock timeouts.
//! - `soak`: a few hundred transfers from several concurrent sessions, mixed with denied
//!   approvals, policy refusals, a session killed mid-approval and one ended by the anomaly rule.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly where it stands"
)]

mod kill;
mod postgres;
mod soak;

use std::time::Duration;

pub use e2e::eventually;
use e2e::{Platform, User};
use serde_json::Value;

/// The sum of every balance in the ledger, in cents.
pub async fn ledger_total(p: &Platform) -> i64 {
    p.query(
        "SELECT sum(balance_cents)::bigint FROM banking.accounts",
        &[],
    )
    .await[0]
        .get(0)
}

/// How many ledger rows record the transfer minted under approval `approval_id` (the idp's
/// `token_exchange` event of that approval names the token's `jti`; the ledger stamps it).
pub async fn transfers_of_approval(p: &Platform, approval_id: &str) -> i64 {
    p.query(
        "SELECT count(*) FROM banking.transactions t
         JOIN idp.events e ON e.jti = t.audit_jti
         WHERE e.kind = 'token_exchange' AND e.body->>'approval_id' = $1",
        &[&approval_id],
    )
    .await[0]
        .get(0)
}

/// Tokens the idp minted under approval `approval_id`.
pub async fn tokens_of_approval(p: &Platform, approval_id: &str) -> i64 {
    p.query(
        "SELECT count(*) FROM idp.events
         WHERE kind = 'token_exchange' AND outcome = 'approved' AND body->>'approval_id' = $1",
        &[&approval_id],
    )
    .await[0]
        .get(0)
}

/// Waits until the issuer holds no live lease and no role it minted exists any more.
pub async fn no_ephemeral_role_left(p: &Platform) {
    eventually("every lease ended and its role dropped", || async {
        let live: i64 = p
            .query(
                "SELECT count(*) FROM verify_rar.leases WHERE state IN ('active', 'creating')",
                &[],
            )
            .await[0]
            .get(0);
        live == 0 && p.leftover_roles().await.is_empty()
    })
    .await;
    // Every role carrying this database's issuer marker, whatever its lease says.
    let marked: i64 = p
        .query(
            "SELECT count(*) FROM pg_roles
             WHERE shobj_description(oid, 'pg_authid') = 'verify-rar@' || current_database()",
            &[],
        )
        .await[0]
        .get(0);
    assert_eq!(marked, 0, "roles minted by this issuer still exist");
}

/// The services that receive the platform's CAEP stream, by the schema their events live in.
pub const RECEIVERS: &[&str] = &["idp", "verify_rar", "banking", "iam", "entra", "concierge"];

/// Waits until the revocation of session `sid` was handed to the transmitter, every SET it
/// queued was delivered, and every receiver recorded the signal; asserts each stream got one
/// SET for it, not two.
pub async fn signal_delivered_everywhere(p: &Platform, sid: &str) {
    eventually(&format!("the idp's outbox delivering {sid}"), || async {
        let undelivered: i64 = p
            .query(
                "SELECT count(*) FROM idp.signal_outbox WHERE session_id = $1 AND delivered_at IS NULL",
                &[&sid],
            )
            .await[0]
            .get(0);
        let queued: i64 = p
            .query(
                "SELECT count(*) FROM idp.signal_outbox WHERE session_id = $1",
                &[&sid],
            )
            .await[0]
            .get(0);
        queued == 1 && undelivered == 0
    })
    .await;
    for schema in RECEIVERS {
        eventually(&format!("{schema} receiving the revocation of {sid}"), || async {
            p.query(
                &format!(
                    "SELECT count(*) FROM {schema}.events WHERE kind = 'signal_received' AND session = $1"
                ),
                &[&sid],
            )
            .await[0]
                .get::<_, i64>(0)
                > 0
        })
        .await;
    }
    eventually("the transmitter delivering every SET", || async {
        p.query(
            "SELECT count(*) FROM ssf.sets WHERE state <> 'delivered'",
            &[],
        )
        .await[0]
            .get::<_, i64>(0)
            == 0
    })
    .await;
    // The transmitter signed one SET per stream for this revocation: none lost, none doubled.
    let per_stream: Vec<i64> = p
        .query(
            "SELECT count(*) FROM ssf.sets s
             WHERE s.event_type LIKE '%session-revoked'
               AND s.txn = (SELECT txn FROM idp.signal_outbox WHERE session_id = $1)
             GROUP BY s.stream_id",
            &[&sid],
        )
        .await
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        !per_stream.is_empty() && per_stream.iter().all(|n| *n == 1),
        "SETs per stream for {sid}: {per_stream:?}"
    );
}

/// The pending approval on `user`'s phone whose summary is exactly `summary` (waits for it).
pub async fn approval_for(p: &Platform, user: &User, summary: &str) -> Value {
    for _ in 0..600 {
        if let Some(a) = p
            .pending_approvals(user)
            .await
            .into_iter()
            .find(|a| a["summary"] == summary)
        {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no approval {summary:?} arrived on {}'s phone", user.email)
}

/// Decides approval `id` on `user`'s phone (`approve` or `deny`); the HTTP status.
pub async fn decide(p: &Platform, user: &User, id: &str, decision: &str) -> u16 {
    p.http
        .post(format!("{}/api/approvals/{id}/{decision}", p.idp()))
        .bearer_auth(&user.device_token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}
