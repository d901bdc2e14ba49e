//! Presenter mode: a scenario run hop by hop. The concierge runs it in step mode and pauses
//! before each hop (its own and those of the specialists it calls); this page shows the
//! narration for that hop (from `web/narration/<scenario>.toml` when the presenter wrote one,
//! the agent's own words otherwise) and the artifact it is about, and "Next" lets it go on.

use askama::Template;
use axum::{
    Form,
    extract::{Path, Query, State},
    http::{HeaderValue, StatusCode},
    response::{Html, IntoResponse, Response},
};
use kit::a2a::{Message, ToolCall};
use serde_json::{Value, json};

use crate::{
    auth::SignedIn,
    chat, live, scenarios,
    state::AppState,
    views::{self, MessagePage},
};

#[derive(Template)]
#[template(path = "present.html")]
pub struct PresentList {
    pub csrf: String,
    pub email: String,
    pub scenarios: Vec<scenarios::Scenario>,
}

#[derive(Template)]
#[template(path = "present_run.html")]
pub struct PresentRun {
    pub csrf: String,
    pub email: String,
    pub task: String,
    pub key: String,
    pub title: String,
    pub intro: String,
    pub approvals: String,
    pub chat: Vec<String>,
}

#[derive(Template)]
#[template(path = "pause.html")]
pub struct PauseView {
    pub task: String,
    pub key: String,
    pub pending: Option<Hop>,
    pub done: Vec<Hop>,
    pub finished: bool,
    /// Why the run cannot be shown (the session ended).
    pub error: Option<String>,
}

#[derive(Debug)]
pub struct Hop {
    pub seq: i64,
    pub hop: String,
    pub narration: String,
    pub artifact: String,
}

pub async fn list(State(state): State<AppState>, me: SignedIn) -> Response {
    views::render(&PresentList {
        csrf: me.csrf.clone(),
        email: me.account.email.clone(),
        scenarios: scenarios::load(&state.config.narration_dir)
            .into_iter()
            .filter(|s| !s.sentence.is_empty())
            .collect(),
    })
}

#[derive(Debug, serde::Deserialize)]
pub struct Start {
    scenario: String,
}

/// `POST /present`: starts the scenario in step mode and sends the browser to its run page.
pub async fn start(State(state): State<AppState>, me: SignedIn, Form(f): Form<Start>) -> Response {
    let Some(s) = scenarios::find(&state.config.narration_dir, &f.scenario)
        .filter(|s| !s.sentence.is_empty())
    else {
        return (StatusCode::NOT_FOUND, "no such scenario").into_response();
    };
    let call = ToolCall {
        skill: "assist".into(),
        arguments: json!({"text": s.sentence, "step_mode": true}),
    };
    chat::post_line(
        &state,
        &me.account.sid,
        &views::ChatLine {
            class: "user",
            who: me.account.email.clone(),
            text: s.sentence.clone(),
            detail: "step by step".into(),
        },
    );
    match chat::converse(&state, &me.account, Message::tool_call(&s.sentence, &call)).await {
        Ok(task) if !task.is_empty() => {
            let to = format!("/present/run/{task}?s={}", s.key);
            let mut r = StatusCode::NO_CONTENT.into_response();
            if let Ok(v) = HeaderValue::from_str(&to) {
                r.headers_mut().insert("hx-redirect", v);
            }
            r
        }
        Ok(_) => (StatusCode::BAD_GATEWAY, "the concierge named no task").into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, e).into_response(),
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct RunQuery {
    #[serde(default)]
    s: String,
}

pub async fn run(
    State(state): State<AppState>,
    me: SignedIn,
    Path(task): Path<String>,
    Query(q): Query<RunQuery>,
) -> Response {
    if !kit::plain_id(&task) {
        return views::render(&MessagePage {
            csrf: me.csrf.clone(),
            title: "No such run".into(),
            message: "That is not a task id.".into(),
            link: Some(("/present".into(), "Presenter mode".into())),
        });
    }
    let s = scenarios::find(&state.config.narration_dir, &q.s).unwrap_or_default();
    views::render(&PresentRun {
        csrf: me.csrf.clone(),
        email: me.account.email.clone(),
        task,
        key: s.key,
        title: format!("{} {}", s.id, s.title),
        intro: s.intro,
        approvals: live::approvals_html(&[]),
        chat: state.conversations.history(&me.account.sid),
    })
}

/// The pause panel: what the run waits before, polled by the page.
pub async fn pause(
    State(state): State<AppState>,
    me: SignedIn,
    Path(task): Path<String>,
    Query(q): Query<RunQuery>,
) -> Response {
    if !kit::plain_id(&task) {
        return (StatusCode::NOT_FOUND, "no such run").into_response();
    }
    let token = match me.account.access_token(&state.oidc).await {
        Ok(t) => t,
        Err(e) => {
            return Html(views::fragment(&PauseView {
                task,
                key: q.s,
                pending: None,
                done: vec![],
                finished: false,
                error: Some(e.to_string()),
            }))
            .into_response();
        }
    };
    let resp = state
        .http
        .get(format!("{}/steps/{task}", state.config.concierge))
        .bearer_auth(token)
        .send()
        .await;
    let narration = scenarios::find(&state.config.narration_dir, &q.s)
        .map(|s| s.hops)
        .unwrap_or_default();
    // A hop can come more than once (the concierge's exchange, then banking's): the file says
    // `exchange` for the first and `"exchange.2"` for the second, falling back to `exchange`.
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut hop = |v: &Value| {
        let name = v
            .get("hop")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let nth = seen.entry(name.clone()).or_default();
        *nth += 1;
        Hop {
            seq: v.get("seq").and_then(Value::as_i64).unwrap_or(0),
            narration: narration
                .get(&format!("{name}.{nth}"))
                .or_else(|| narration.get(&name))
                .cloned()
                .unwrap_or_else(|| {
                    v.get("narration")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned()
                }),
            artifact: serde_json::to_string_pretty(v.get("artifact").unwrap_or(&Value::Null))
                .unwrap_or_default(),
            hop: name,
        }
    };
    let view = match resp {
        Ok(r) if r.status().is_success() => {
            let v: Value = r.json().await.unwrap_or_default();
            // Done hops first, so the pending one is counted after them.
            let done = v
                .get("done")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(&mut hop).collect())
                .unwrap_or_default();
            PauseView {
                task: task.clone(),
                key: q.s.clone(),
                pending: v.get("pending").filter(|p| p.is_object()).map(&mut hop),
                done,
                finished: false,
                error: None,
            }
        }
        // The concierge knows a run from its first pause until it ends.
        _ => PauseView {
            task: task.clone(),
            key: q.s.clone(),
            pending: None,
            done: vec![],
            finished: state.conversations.has_ended(&task),
            error: None,
        },
    };
    Html(views::fragment(&view)).into_response()
}

/// `POST /present/run/{task}/next`: the run goes on to the next hop.
pub async fn next(
    State(state): State<AppState>,
    me: SignedIn,
    Path(task): Path<String>,
) -> Response {
    if !kit::plain_id(&task) {
        return (StatusCode::NOT_FOUND, "no such run").into_response();
    }
    let token = match me.account.access_token(&state.oidc).await {
        Ok(t) => t,
        Err(e) => return (StatusCode::UNAUTHORIZED, e.to_string()).into_response(),
    };
    match state
        .http
        .post(format!("{}/steps/{task}/next", state.config.concierge))
        .bearer_auth(token)
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => StatusCode::NO_CONTENT.into_response(),
        Ok(r) => (
            StatusCode::CONFLICT,
            format!("the concierge answered {}", r.status()),
        )
            .into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}
