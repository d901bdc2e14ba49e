//! The UI as a shared-signals receiver: a CAEP `session-revoked` SET for a session signed in
//! here drops its tokens at once and puts the banner on every page of it. The same SET reaches
//! the idp, the issuer and every agent; the UI is one more receiver, not a special case.

use std::time::Duration;

use axum::Router;
use kit::ssf::{self, EventType, Receiver, SetEvent};

use crate::{
    state::AppState,
    views::{self, Banner},
};

/// Where pushed SETs arrive.
pub const PUSH_PATH: &str = "/ssf/events";

/// With `SSF_URL` / `SSF_TOKEN`: creates (or reuses) the UI's push stream and returns the push
/// endpoint's router. Otherwise an empty router.
pub async fn start(state: &AppState) -> Router {
    let Some(settings) = &state.config.signals else {
        tracing::info!("SSF_URL is not set: the UI receives no shared signals");
        return Router::new();
    };
    let me = state.clone();
    let receiver = Receiver::new(
        state.http.clone(),
        settings.session_revoked_push("web", format!("{}{PUSH_PATH}", state.config.public_url)),
        move |event: SetEvent| {
            let state = me.clone();
            async move {
                on_signal(&state, &event).await;
                Ok(())
            }
        },
    );
    ssf::start_receiver(&receiver, Duration::from_secs(10)).await;
    receiver.router(PUSH_PATH)
}

async fn on_signal(state: &AppState, event: &SetEvent) {
    if event.kind != EventType::SessionRevoked {
        return;
    }
    let Some(sid) = event.sub_id.session_id() else {
        return;
    };
    let reason = event
        .claims
        .reason_admin_text()
        .map(|r| format!("Reason: {r}."))
        .unwrap_or_default();
    if let Some(account) = state.accounts.get(sid) {
        account
            .end(&format!("the session was revoked. {reason}"))
            .await;
        state
            .hub
            .send(sid, "banner", views::fragment(&Banner { reason }));
        tracing::info!(sid, user = %account.email, "session revoked: tokens dropped, banner shown");
    }
}
