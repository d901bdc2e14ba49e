//! The main screen (`/`): chat, phone and security events side by side; the phone alone
//! (`/phone`), sized for a real phone; approving, denying, and killing the session.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use kit::events::SecurityEvent;
use serde_json::{Value, json};

use crate::{
    auth::SignedIn,
    live, scenarios,
    state::AppState,
    views::{self, Banner, Console, Phone},
};

/// How many past events the page opens with.
const HISTORY: i64 = 80;

pub async fn index(State(state): State<AppState>, me: SignedIn) -> Response {
    let account = &me.account;
    let events = recent_events(&state)
        .await
        .iter()
        .map(|e| live::event_row(e, &account.email, &account.sid))
        .collect();
    let phone_url = format!("{}/phone", state.config.public_url);
    let page = Console {
        csrf: me.csrf.clone(),
        email: account.email.clone(),
        banner: banner(&me),
        approvals: approvals_now(&state, &me).await,
        chat: state.conversations.history(&account.sid),
        events,
        scenarios: scenarios::buttons(&state.config.narration_dir),
        attacks: views::AttackOption::all(),
        qr: qr_svg(&phone_url),
        phone_url,
    };
    views::render(&page)
}

pub async fn phone(State(state): State<AppState>, me: SignedIn) -> Response {
    views::render(&Phone {
        csrf: me.csrf.clone(),
        email: me.account.email.clone(),
        banner: banner(&me),
        approvals: approvals_now(&state, &me).await,
    })
}

fn banner(me: &SignedIn) -> String {
    me.account
        .ended()
        .map(|reason| views::fragment(&Banner { reason }))
        .unwrap_or_default()
}

/// The pending approvals panel as it is now (the live stream keeps it current after).
async fn approvals_now(state: &AppState, me: &SignedIn) -> String {
    let Ok(token) = me.account.device_token(&state.oidc).await else {
        return live::approvals_html(&[]);
    };
    let list: Vec<Value> = match state
        .http
        .get(format!("{}/api/approvals", state.config.idp))
        .bearer_auth(token)
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => r.json().await.unwrap_or_default(),
        _ => vec![],
    };
    live::approvals_html(&list)
}

/// The newest events of every service that keeps an `events` table, newest first.
pub async fn recent_events(state: &AppState) -> Vec<SecurityEvent> {
    let Ok(db) = state.db.get().await else {
        return vec![];
    };
    let Ok(schemas) = db
        .query(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'events' ORDER BY 1",
            &[],
        )
        .await
    else {
        return vec![];
    };
    let parts: Vec<String> = schemas
        .iter()
        .map(|r| r.get::<_, String>(0))
        .map(|s| {
            format!(
                "(SELECT body, at FROM \"{}\".events ORDER BY at DESC LIMIT {HISTORY})",
                s.replace('"', "\"\"")
            )
        })
        .collect();
    if parts.is_empty() {
        return vec![];
    }
    let sql = format!(
        "SELECT body FROM ({}) e ORDER BY at DESC LIMIT {HISTORY}",
        parts.join(" UNION ALL ")
    );
    match db.query(&sql, &[]).await {
        Ok(rows) => rows
            .iter()
            .filter_map(|r| serde_json::from_value(r.get::<_, Value>(0)).ok())
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "reading the event history failed");
            vec![]
        }
    }
}

/// `POST /approvals/{id}/approve|deny`: the user's decision, sent to the idp with the user's
/// own token. The panel updates through the live stream.
pub async fn decide(
    State(state): State<AppState>,
    me: SignedIn,
    Path((id, decision)): Path<(String, String)>,
) -> Response {
    if !matches!(decision.as_str(), "approve" | "deny") || !kit::plain_id(&id) {
        return (StatusCode::NOT_FOUND, "no such approval").into_response();
    }
    let token = match me.account.device_token(&state.oidc).await {
        Ok(t) => t,
        Err(e) => return (StatusCode::UNAUTHORIZED, e.to_string()).into_response(),
    };
    match state
        .http
        .post(format!(
            "{}/api/approvals/{id}/{decision}",
            state.config.idp
        ))
        .bearer_auth(token)
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => StatusCode::NO_CONTENT.into_response(),
        Ok(r) => {
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            (
                StatusCode::CONFLICT,
                format!("the identity provider answered {status}: {body}"),
            )
                .into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

/// `POST /session/kill` (S5): ends this idp session everywhere, with the user's own token.
/// The banner arrives the way it does for any revocation: the transmitter's `session-revoked`
/// SET, received by this UI like every other receiver.
pub async fn kill_session(State(state): State<AppState>, me: SignedIn) -> Response {
    let token = match me.account.device_token(&state.oidc).await {
        Ok(t) => t,
        Err(e) => return (StatusCode::CONFLICT, e.to_string()).into_response(),
    };
    match state
        .http
        .post(format!(
            "{}/api/sessions/{}/revoke",
            state.config.idp, me.account.sid
        ))
        .bearer_auth(token)
        .json(&json!({"reason": "killed from the console"}))
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => StatusCode::NO_CONTENT.into_response(),
        Ok(r) => (
            StatusCode::BAD_GATEWAY,
            format!("the identity provider answered {}", r.status()),
        )
            .into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

fn qr_svg(text: &str) -> String {
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(140, 140)
            .quiet_zone(true)
            .build(),
        Err(_) => String::new(),
    }
}
