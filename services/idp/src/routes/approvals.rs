//! The approvals API for the user's devices: pending approvals as a live SSE stream, and the
//! user's decision. Only the user's own token for the idp passes (see [`Principal`]), never a
//! delegated one: no agent can approve what it asked for.

use std::{convert::Infallible, time::Duration};

use axum::{
    Json,
    extract::{Path, State},
    response::sse::{Event, KeepAlive, Sse},
};
use futures::{Stream, StreamExt as _, stream};
use kit::events::Outcome;
use serde_json::{Value, json};
use tokio_stream::wrappers::BroadcastStream;

use crate::{
    auth::Principal,
    error::Error,
    state::AppState,
    store::approvals::{self, Approval},
};

fn user_of(p: &Principal) -> Result<&kit::claims::AccessClaims, Error> {
    p.user()
        .ok_or_else(|| Error::forbidden("approvals belong to a user; use the user's own token"))
}

pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<Approval>>, Error> {
    let user = user_of(&principal)?;
    let db = state.pool.get().await?;
    Ok(Json(approvals::pending_for_user(&db, &user.sub).await?))
}

/// `text/event-stream`: an `approvals` event with the full pending list now, and again every
/// time it changes on any replica (Postgres `NOTIFY idp_approvals`).
pub async fn stream(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Error> {
    let user_id = user_of(&principal)?.sub.clone();
    let wake = {
        let user_id = user_id.clone();
        BroadcastStream::new(state.approvals_changed.subscribe()).filter(move |m| {
            // A lagging receiver may have missed a change: refresh rather than guess.
            let relevant = m.as_ref().map_or(true, |uid| *uid == user_id);
            async move { relevant }
        })
    };
    let ticks = stream::once(async {}).chain(wake.map(|_| ()));
    let events = ticks.then(move |()| {
        let state = state.clone();
        let user_id = user_id.clone();
        async move {
            let list = match state.pool.get().await {
                Ok(db) => approvals::pending_for_user(&db, &user_id)
                    .await
                    .unwrap_or_default(),
                Err(_) => vec![],
            };
            Ok(Event::default()
                .event("approvals")
                .json_data(&list)
                .unwrap_or_default())
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

pub async fn approve(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    decide(&state, &principal, &id, true).await
}

pub async fn deny(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    decide(&state, &principal, &id, false).await
}

async fn decide(
    state: &AppState,
    principal: &Principal,
    id: &str,
    approve: bool,
) -> Result<Json<Value>, Error> {
    let user = user_of(principal)?;
    if !super::plain_id(id) {
        return Err(Error::api(
            axum::http::StatusCode::CONFLICT,
            "not_pending",
            "no pending approval with this id for you",
        ));
    }
    let db = state.pool.get().await?;
    let a = approvals::decide(&db, id, &user.sub, approve)
        .await?
        .ok_or_else(|| {
            Error::api(
                axum::http::StatusCode::CONFLICT,
                "not_pending",
                "no pending approval with this id for you",
            )
        })?;
    let mut event = state.event(
        if approve {
            "approval_granted"
        } else {
            "approval_denied"
        },
        if approve {
            Outcome::Approved
        } else {
            Outcome::Denied
        },
    );
    event.user = user.email.clone();
    event.session = Some(a.session_id.clone());
    event.actor_chain = a.chain.clone();
    event.tier = Some(a.tier as u8);
    event.rar_summary = Some(a.summary.clone());
    event.fingerprint = Some(a.fingerprint.clone());
    event.approval_id = Some(a.id.clone());
    if !approve {
        event.reason = Some("approval_denied: the user said no".into());
    }
    state.emit(event).await?;
    Ok(Json(json!({"id": a.id, "status": a.status})))
}
