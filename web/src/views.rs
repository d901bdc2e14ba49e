//! The pages and the fragments htmx swaps in: one askama template each, and what they show.

use askama::Template;
use axum::{
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};
use kit::events::SecurityEvent;
use serde_json::Value;

/// Renders a template, or says plainly that it could not.
pub fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering a page failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "this page could not be rendered",
            )
                .into_response()
        }
    }
}

/// A fragment's HTML (for server-sent events); empty if it cannot render.
pub fn fragment(t: &impl Template) -> String {
    t.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "rendering a fragment failed");
        String::new()
    })
}

/// A scenario from `web/narration/<key>.toml`, as a button.
#[derive(Debug, Clone)]
pub struct ScenarioButton {
    pub key: String,
    pub id: String,
    pub title: String,
    pub sentence: String,
    pub hint: String,
    /// `kill_session`: the button ends the session instead of asking Charlie; `attack`: it runs
    /// the attack toggle picked next to it.
    pub action: String,
}

/// One S6 attack toggle as the picker shows it.
#[derive(Debug, Clone)]
pub struct AttackOption {
    pub id: &'static str,
    pub agent: &'static str,
    pub tries: &'static str,
    pub refused_by: &'static str,
}

impl AttackOption {
    pub fn all() -> Vec<Self> {
        kit::agent::attack::Attack::ALL
            .iter()
            .map(|a| Self {
                id: a.id(),
                agent: a.agent(),
                tries: a.tries(),
                refused_by: a.refused_by(),
            })
            .collect()
    }
}

#[derive(Template)]
#[template(path = "console.html")]
pub struct Console {
    pub csrf: String,
    pub email: String,
    pub banner: String,
    pub approvals: String,
    /// The conversation so far, as rendered lines (fragments we escaped when rendering them).
    pub chat: Vec<String>,
    pub events: Vec<String>,
    pub scenarios: Vec<ScenarioButton>,
    /// The S6 attack toggles, for the compromised-agent scenario's picker.
    pub attacks: Vec<AttackOption>,
    pub qr: String,
    pub phone_url: String,
}

#[derive(Template)]
#[template(path = "phone.html")]
pub struct Phone {
    pub csrf: String,
    pub email: String,
    pub banner: String,
    pub approvals: String,
}

/// One pending approval as the phone shows it.
#[derive(Debug)]
pub struct ApprovalView {
    pub id: String,
    pub summary: String,
    pub chain: String,
    pub binding_code: String,
    pub tier: i64,
    pub fingerprint: String,
    pub fingerprint_short: String,
    pub expires_at: i64,
}

impl ApprovalView {
    /// From the idp's approvals API (`GET /api/approvals`).
    pub fn from_api(v: &Value) -> Self {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let chain: Vec<String> = v
            .get("chain")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(display_name)
                    .collect()
            })
            .unwrap_or_default();
        let fingerprint = s("fingerprint");
        Self {
            id: s("id"),
            summary: s("summary"),
            chain: chain.join(" ← "),
            binding_code: s("binding_code"),
            tier: v.get("tier").and_then(Value::as_i64).unwrap_or(0),
            fingerprint_short: fingerprint.chars().take(16).collect(),
            fingerprint,
            expires_at: v.get("expires_at").and_then(Value::as_i64).unwrap_or(0),
        }
    }
}

#[derive(Template)]
#[template(path = "approvals.html")]
pub struct Approvals {
    pub approvals: Vec<ApprovalView>,
}

/// "Banking" for `spiffe://demo.local/agent/banking`, the email for a user.
pub fn display_name(id: &str) -> String {
    let short = kit::claims::short_name(id);
    if short.contains('@') {
        return short.to_owned();
    }
    let mut c = short.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// One security event as a row of the stream.
#[derive(Debug)]
pub struct EventView {
    pub time: String,
    pub service: String,
    pub kind: String,
    pub outcome: String,
    pub tier: Option<u8>,
    pub duration: Option<String>,
    pub chain: String,
    pub summary: Option<String>,
    pub reason: Option<String>,
    pub user: Option<String>,
    pub pg_user: Option<String>,
    pub jti: Option<String>,
}

impl EventView {
    pub fn new(e: &SecurityEvent) -> Self {
        let time = e
            .time
            .split('T')
            .nth(1)
            .map(|t| t.trim_end_matches('Z').chars().take(12).collect())
            .unwrap_or_else(|| e.time.clone());
        Self {
            time,
            service: e.service.clone(),
            kind: e.kind.clone(),
            outcome: serde_json::to_value(e.outcome)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            tier: e.tier,
            duration: e.duration_ms.map(|d| format!("{d:.1}")),
            chain: e
                .actor_chain
                .iter()
                .map(|a| display_name(a))
                .collect::<Vec<_>>()
                .join(" ← "),
            summary: e.rar_summary.clone(),
            reason: e.reason.clone(),
            user: e.user.clone(),
            pg_user: e.pg_user.clone(),
            jti: e.jti.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "event.html")]
pub struct EventRow {
    pub e: EventView,
    pub mine: bool,
}

#[derive(Template)]
#[template(path = "chat_line.html")]
pub struct ChatLine {
    /// `user`, `working`, `waiting`, `done`, `refused`, `failed`.
    pub class: &'static str,
    pub who: String,
    pub text: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "banner.html")]
pub struct Banner {
    pub reason: String,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub csrf: String,
    pub title: String,
    pub message: String,
    pub link: Option<(String, String)>,
}
