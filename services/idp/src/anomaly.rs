//! The anomaly rule: a session whose exchanges keep being refused is probably being driven by
//! something that should not hold it (a compromised agent, an injected instruction), so after
//! `IDP_ANOMALY_DENIALS` refusals (default 3) within `IDP_ANOMALY_WINDOW_SECS` (default 60) the
//! session is revoked, through the same path as the "Kill session" button: the CAEP
//! `session-revoked` (initiating entity `policy`) reaches every receiver.
//!
//! [`record_denial`] is the one call the exchange makes when it refuses a hop.

use kit::events::{Commit, Outcome, SecurityEvent};

use crate::{
    state::AppState,
    store::{anomaly, outbox::RevokedBy, sessions},
};

/// Records the refusal's event, then applies the rule to its session. Like the event itself,
/// the rule never replaces the refusal the client must see: its failures are logged.
pub async fn record_denial(state: &AppState, event: SecurityEvent) {
    let session = event.session.clone();
    let user = event.user.clone();
    state.emit_best_effort(event).await;
    if let Some(sid) = session
        && let Err(e) = check(state, &sid, user).await
    {
        tracing::error!(error = %format!("{e:#}"), session = %sid, "the anomaly rule could not run");
    }
}

async fn check(state: &AppState, sid: &str, user: Option<String>) -> anyhow::Result<()> {
    let rule = &state.config.signals;
    if !rule.anomaly_enabled() {
        return Ok(());
    }
    let mut db = state.pool.get().await?;
    let denied = anomaly::denied_exchanges(&db, sid, rule.anomaly_window).await?;
    if denied < i64::from(rule.anomaly_denials) {
        return Ok(());
    }
    let reason = format!(
        "anomaly: {} denied exchanges in {} s",
        rule.anomaly_denials,
        rule.anomaly_window.as_secs()
    );
    if sessions::revoke(&mut db, sid, &reason, RevokedBy::Policy).await? {
        let mut event = state.event("session_revoked", Outcome::Denied);
        event.user = user;
        event.session = Some(sid.to_owned());
        event.reason = Some(format!("policy: {reason}"));
        // On the connection this check already holds: asking the pool for a second one while
        // holding the first can wait out the pool's timeout when every request is doing the
        // same (a burst of refusals), and the event was then lost with only a log line. One
        // more try on a fresh connection if this one failed (it may be the broken one).
        if let Err(e) = state.emit_on(&db, &event, Commit::Durable).await {
            tracing::warn!(error = %format!("{e:#}"), session = %sid, "session_revoked event: retrying");
            drop(db);
            state.emit_best_effort(event).await;
        }
    }
    Ok(())
}
