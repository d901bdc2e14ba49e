//! The token endpoint's issuance events, written in groups: one statement and one commit for
//! the events of every exchange that finished while the previous group was being written.
//!
//! Each caller still waits until its own event is stored and published (a token is answered
//! only after its event is written, as before); what changes is that concurrent exchanges share
//! a statement, a commit and a `log_statement` line instead of each paying for its own. With no
//! other exchange in flight a group is one event, written at once: no timer, no added wait.
//!
//! The writer has a connection of its own, outside the request pool: an exchange holds a pooled
//! connection while it waits for its event, so a writer that also needed one could wait for a
//! connection held by the very requests waiting for it.

use deadpool_postgres::Pool;
use kit::events::{Commit, SecurityEvent};
use tokio::sync::{mpsc, oneshot};

/// The most events one statement carries.
const MAX_GROUP: usize = 64;
/// Events waiting for the writer before callers wait to hand theirs over.
const QUEUE: usize = 1024;

type Reply = oneshot::Sender<Result<(), String>>;

/// A handle to the writer task; cheap to clone.
#[derive(Debug, Clone)]
pub struct EventWriter {
    tx: mpsc::Sender<(SecurityEvent, Reply)>,
}

impl EventWriter {
    /// Starts the writer on `pool` (its own, of one connection), committing as `commit` says.
    pub fn start(pool: Pool, commit: Commit) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, rx, commit));
        Self { tx }
    }

    /// Stores and publishes `event`; returns once it is written (or failed to be).
    pub async fn write(&self, event: SecurityEvent) -> anyhow::Result<()> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((event, reply))
            .await
            .map_err(|_| anyhow::anyhow!("the event writer has stopped"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the event writer has stopped"))?
            .map_err(|e| anyhow::anyhow!("writing the security event: {e}"))
    }
}

async fn run(pool: Pool, mut rx: mpsc::Receiver<(SecurityEvent, Reply)>, commit: Commit) {
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let (events, replies): (Vec<_>, Vec<_>) = group.into_iter().unzip();
        let result = match pool.get().await {
            Ok(client) => kit::events::emit_many(&client, &events, commit)
                .await
                .map_err(|e| format!("{e:#}")),
            Err(e) => Err(format!("{e:#}")),
        };
        if let Err(e) = &result {
            tracing::error!(error = %e, events = events.len(), "security events not written");
        }
        for reply in replies {
            let _ = reply.send(result.clone());
        }
    }
}
