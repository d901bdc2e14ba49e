//! Step-by-step runs (presenter mode) as the concierge runs them. The machinery is
//! `kit::agent::steps`, shared with the specialists (`GET /steps/{task_id}`, `POST
//! /steps/{task_id}/next`, the owner check); here is what only a supervisor adds: relaying a
//! specialist's pauses, so the presenter talks to the concierge alone.

pub use kit::agent::steps::{Pause, Stepper, Steps, routes};

/// A specialist announced `pause` on its task `task_id`: the same pause becomes the pending one
/// of the concierge's run (`GET /steps/{concierge_task}` shows it), and the user's "next" here is
/// passed on to the specialist's `POST /steps/{task_id}/next`, with the delegated token the
/// concierge called it with. That token's `sub` is the user, so the specialist's owner check
/// accepts it, and only it: the presenter never holds a token for the specialist. Outside step
/// mode the specialist is told to go on at once.
pub async fn relay(
    stepper: &Stepper,
    http: &reqwest::Client,
    base_url: &str,
    task_id: &str,
    pause: &Pause,
    token: &str,
) {
    stepper.relay(pause).await;
    if let Err(e) = kit::agent::steps::next_at(http, base_url, task_id, pause.seq, token).await {
        // It goes on by itself after `MAX_PAUSE` at the latest.
        tracing::warn!(specialist = base_url, error = %e, "could not pass the user's next on");
    }
}
