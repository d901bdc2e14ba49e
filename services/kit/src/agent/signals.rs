//! An agent's reaction to shared signals, in one call: [`Runtime::receive_signals`].
//!
//! When the transmitter reports a session revoked (CAEP `session-revoked`), the agent
//! 1. remembers the session in its guard, so the very next call with any token of it is refused
//!    with 401 before the idp is even asked;
//! 2. fails that session's unfinished A2A tasks (their work is aborted);
//! 3. writes one `signal_received` event: the signal, what it did, how long after the event.
//!
//! The agent holds no token between calls, so there is no token cache to drop.

use std::{sync::Arc, time::Duration};

use axum::Router;

use super::Runtime;
use crate::{
    a2a::server::TaskStore,
    ssf::{self, EventType, Receiver, ReceiverSettings, SetEvent},
};

/// Where an agent receives pushed SETs, below its base URL.
pub const PUSH_PATH: &str = "/ssf/events";

impl Runtime {
    /// Receives the platform's signals for this agent: with `SSF_URL` and `SSF_TOKEN` set,
    /// creates (or reuses) the agent's push stream at the transmitter (`<base_url>/ssf/events`)
    /// and returns the router that answers its pushes, to merge into the agent's router.
    /// Without them, an empty router (signals off, logged once). `tasks` is the A2A server's
    /// task store ([`crate::a2a::server::Server::tasks`]).
    pub async fn receive_signals(&self, tasks: Arc<TaskStore>, base_url: &str) -> Router {
        let settings = match ReceiverSettings::from_env() {
            Ok(Some(s)) => s,
            Ok(None) => {
                tracing::info!("SSF_URL is not set: this agent receives no shared signals");
                return Router::new();
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "the signals configuration is invalid; receiving none");
                return Router::new();
            }
        };
        let receiver = self.signal_receiver(&settings, tasks, base_url);
        ssf::start_receiver(&receiver, Duration::from_secs(10)).await;
        receiver.router(PUSH_PATH)
    }

    /// The receiver behind [`Runtime::receive_signals`], for an explicit transmitter.
    pub fn signal_receiver(
        &self,
        settings: &ReceiverSettings,
        tasks: Arc<TaskStore>,
        base_url: &str,
    ) -> Receiver {
        let me = self.clone();
        Receiver::new(
            self.http.clone(),
            settings.session_revoked_push(
                &self.name,
                format!("{}{PUSH_PATH}", base_url.trim_end_matches('/')),
            ),
            move |event: SetEvent| {
                let me = me.clone();
                let tasks = tasks.clone();
                async move {
                    me.on_signal(&tasks, &event).await;
                    Ok(())
                }
            },
        )
    }

    async fn on_signal(&self, tasks: &TaskStore, event: &SetEvent) {
        if event.kind != EventType::SessionRevoked {
            return;
        }
        let Some(sid) = event.sub_id.session_id() else {
            tracing::debug!(jti = %event.jti, "a session-revoked signal without a session id; nothing to do");
            return;
        };
        self.guard.revoke_session(sid);
        let reason = match event.claims.reason_admin_text() {
            Some(r) => format!("The session was revoked ({r}); this task was stopped."),
            None => "The session was revoked; this task was stopped.".to_owned(),
        };
        let failed = tasks.fail_session(sid, &reason);
        let did = format!(
            "refusing the session's tokens; failed {failed} running task{}",
            if failed == 1 { "" } else { "s" }
        );
        self.emit(ssf::received_event(&self.name, event, &did))
            .await;
    }
}
