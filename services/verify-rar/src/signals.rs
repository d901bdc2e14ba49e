//! verify-rar as a shared-signals receiver: a CAEP `session-revoked` revokes every live lease
//! of that session through the ordinary revocation path ([`leases::revoke_session`]): the role
//! loses its login, its open connections are terminated, it is dropped, and each lease is one
//! `lease_revoked` event. Then one `signal_received` event says what the signal did and how
//! long after the event it was done.
//!
//! A credential being issued at that very moment (an intent, not yet a lease) is caught by a
//! second sweep [`SETTLE`] later.

use std::time::Duration;

use axum::Router;
use kit::ssf::{self, EventType, Receiver, SetEvent};

use crate::{leases, state::AppState, state::SERVICE};

/// Where pushed SETs arrive.
pub const PUSH_PATH: &str = "/ssf/events";
/// How long after a session's revocation its leases are swept a second time.
pub const SETTLE: Duration = Duration::from_secs(2);

/// With `SSF_URL` / `SSF_TOKEN` configured: creates (or reuses) verify-rar's push stream, with
/// pushes to `<base_url>/ssf/events`, and returns the push endpoint's router. Otherwise an
/// empty router.
pub async fn start(state: &AppState, base_url: &str) -> Router {
    let Some(settings) = &state.config.signals else {
        tracing::info!("SSF_URL is not set: verify-rar receives no shared signals");
        return Router::new();
    };
    let me = state.clone();
    let receiver = Receiver::new(
        state.http.clone(),
        settings.session_revoked_push(
            SERVICE,
            format!("{}{PUSH_PATH}", base_url.trim_end_matches('/')),
        ),
        move |event: SetEvent| {
            let state = me.clone();
            async move { on_signal(&state, &event).await }
        },
    );
    ssf::start_receiver(&receiver, Duration::from_secs(10)).await;
    receiver.router(PUSH_PATH)
}

/// Revokes the session's leases; an error makes the transmitter deliver the SET again.
pub async fn on_signal(state: &AppState, event: &SetEvent) -> anyhow::Result<()> {
    if event.kind != EventType::SessionRevoked {
        return Ok(());
    }
    let Some(sid) = event.sub_id.session_id() else {
        return Ok(());
    };
    let reason = format!(
        "session revoked{}",
        event
            .claims
            .reason_admin_text()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    );
    let revoked = leases::revoke_session(state, sid, &reason).await?;
    let users: Vec<&str> = revoked.iter().map(|l| l.pg_user.as_str()).collect();
    let did = match users.len() {
        0 => "no live lease".to_owned(),
        n => format!(
            "revoked {n} lease{} ({})",
            if n == 1 { "" } else { "s" },
            users.join(", ")
        ),
    };
    state
        .record_denial(&ssf::received_event(SERVICE, event, &did))
        .await;
    let (state, sid, reason) = (state.clone(), sid.to_owned(), reason);
    tokio::spawn(async move {
        tokio::time::sleep(SETTLE).await;
        if let Err(e) = leases::revoke_session(&state, &sid, &reason).await {
            tracing::warn!(error = %e, session = %sid, "second sweep of a revoked session's leases failed");
        }
    });
    Ok(())
}
