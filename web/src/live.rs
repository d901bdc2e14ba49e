//! `GET /live`: one server-sent event stream per open page, merging
//! - `security`: every service's security events as they are emitted (one `LISTEN` for the
//!   whole process, fed by each service's `NOTIFY security_events`), rendered as rows;
//! - `approvals`: the user's pending approvals, relayed from the idp's own approvals stream
//!   with the user's token (so a change on any idp replica arrives here at once);
//! - `chat` and `banner`: what this session's conversations and signals push (see `hub`).

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::{Query, State},
    response::sse::{Event, KeepAlive, Sse},
};
use futures::{Stream, StreamExt as _, stream};
use kit::events::SecurityEvent;
use serde_json::Value;
use tokio_stream::wrappers::{BroadcastStream, ReceiverStream};

use crate::{
    auth::SignedIn,
    state::AppState,
    views::{self, ApprovalView, Approvals, EventRow, EventView},
};

#[derive(Debug, serde::Deserialize)]
pub struct LiveQuery {
    /// The phone page wants approvals and the banner only.
    #[serde(default)]
    phone: Option<String>,
}

pub async fn live(
    State(state): State<AppState>,
    me: SignedIn,
    Query(q): Query<LiveQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let account = me.account.clone();
    let hub = BroadcastStream::new(state.hub.subscribe(&account.sid))
        .filter_map(|m| async move { m.ok().map(|p| Event::default().event(p.event).data(p.html)) })
        .boxed();
    let approvals = ReceiverStream::new(relay_approvals(state.clone(), account.clone()))
        .map(|html| Event::default().event("approvals").data(html))
        .boxed();
    let security = if q.phone.is_some() {
        stream::empty().boxed()
    } else {
        let (email, sid) = (account.email.clone(), account.sid.clone());
        BroadcastStream::new(state.events.subscribe())
            .filter_map(move |m| {
                let (email, sid) = (email.clone(), sid.clone());
                async move {
                    let event: SecurityEvent = serde_json::from_str(&m.ok()?).ok()?;
                    Some(
                        Event::default()
                            .event("security")
                            .data(event_row(&event, &email, &sid)),
                    )
                }
            })
            .boxed()
    };
    let merged = stream::select_all([hub, approvals, security]).map(Ok);
    Sse::new(merged).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// A security event as the stream's row; "mine" when it is this user's or this session's.
pub fn event_row(e: &SecurityEvent, email: &str, sid: &str) -> String {
    let mine = e.user.as_deref() == Some(email) || e.session.as_deref() == Some(sid);
    views::fragment(&EventRow {
        e: EventView::new(e),
        mine,
    })
}

/// The approvals panel's HTML for a pending list from the idp.
pub fn approvals_html(list: &[Value]) -> String {
    views::fragment(&Approvals {
        approvals: list.iter().map(ApprovalView::from_api).collect(),
    })
}

/// Follows the idp's `GET /api/approvals/stream` for this user (reconnecting, with a renewed
/// token, if it drops) and yields the panel's HTML each time the list changes. Ends when the
/// page goes away (the receiver is dropped) or the session ends.
fn relay_approvals(
    state: AppState,
    account: std::sync::Arc<crate::accounts::Account>,
) -> tokio::sync::mpsc::Receiver<String> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        let url = format!("{}/api/approvals/stream", state.config.idp);
        let mut backoff = Duration::from_millis(200);
        while !tx.is_closed() {
            let Ok(token) = account.device_token(&state.oidc).await else {
                return;
            };
            let resp = state
                .http
                .get(&url)
                .bearer_auth(&token)
                .header("accept", "text/event-stream")
                .send()
                .await;
            match resp {
                Ok(r) if r.status().is_success() => {
                    backoff = Duration::from_millis(200);
                    let mut bytes = r.bytes_stream();
                    let mut buf: Vec<u8> = vec![];
                    loop {
                        tokio::select! {
                            () = tx.closed() => return,
                            chunk = bytes.next() => match chunk {
                                Some(Ok(c)) => {
                                    buf.extend_from_slice(&c);
                                    for ev in kit::sse::take_events(&mut buf) {
                                        let list: Vec<Value> = serde_json::from_str(&ev.data).unwrap_or_default();
                                        if tx.send(approvals_html(&list)).await.is_err() {
                                            return;
                                        }
                                    }
                                }
                                Some(Err(_)) | None => break,
                            },
                        }
                    }
                }
                Ok(r) => {
                    tracing::warn!(status = %r.status(), "the idp refused the approvals stream")
                }
                Err(e) => tracing::warn!(error = %e, "the approvals stream could not be opened"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    });
    rx
}
