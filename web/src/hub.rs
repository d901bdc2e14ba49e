//! What the server pushes to a signed-in session's open pages, besides the security events:
//! the chat as Charlie works, and the banner when the session is revoked. Keyed by idp session.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::broadcast;

/// One server-sent event: its name (the htmx `sse-swap` it feeds) and its HTML.
#[derive(Debug, Clone)]
pub struct Push {
    pub event: &'static str,
    pub html: String,
}

#[derive(Default, Clone)]
pub struct Hub {
    channels: Arc<Mutex<HashMap<String, broadcast::Sender<Push>>>>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

impl Hub {
    fn channel(&self, sid: &str) -> broadcast::Sender<Push> {
        let mut map = self
            .channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Forget channels nobody listens to any more.
        map.retain(|_, tx| tx.receiver_count() > 0);
        map.entry(sid.to_owned())
            .or_insert_with(|| broadcast::channel(256).0)
            .clone()
    }

    pub fn subscribe(&self, sid: &str) -> broadcast::Receiver<Push> {
        self.channel(sid).subscribe()
    }

    /// Sends to every open page of the session (none open: dropped, the page reloads history).
    pub fn send(&self, sid: &str, event: &'static str, html: String) {
        let _ = self.channel(sid).send(Push { event, html });
    }
}
