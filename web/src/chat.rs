//! The chat with Charlie: a sentence goes to the concierge over A2A (`SendStreamingMessage`)
//! with the user's own access token; each status the task passes through becomes a line in the
//! chat as it happens: which specialist works, waiting for approval, done, refused with the
//! policy's reason.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    Form,
    extract::State,
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};
use futures::StreamExt as _;
use kit::{
    a2a::{Message, Part, Role, StreamResponse, TaskState, client::ClientError},
    agent::attack::Attack,
};

use crate::{
    accounts::Account,
    auth::SignedIn,
    state::AppState,
    views::{self, ChatLine},
};

/// The longest sentence we pass on.
const MAX_TEXT: usize = 1000;
/// Lines kept per session, so a reload shows the conversation so far.
const KEEP: usize = 200;

/// Each session's chat so far, as rendered lines.
#[derive(Default)]
pub struct Conversations {
    lines: Mutex<HashMap<String, Vec<String>>>,
    /// Tasks that have reached a terminal state (presenter mode tells "over" from "not yet
    /// paused" with it).
    ended: Mutex<std::collections::HashSet<String>>,
}

impl std::fmt::Debug for Conversations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conversations").finish_non_exhaustive()
    }
}

impl Conversations {
    pub fn history(&self, sid: &str) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(sid)
            .cloned()
            .unwrap_or_default()
    }

    pub fn has_ended(&self, task: &str) -> bool {
        self.ended
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(task)
    }

    fn mark_ended(&self, task: &str) {
        self.ended
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(task.to_owned());
    }

    fn keep(&self, sid: &str, html: &str) {
        let mut map = self
            .lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let lines = map.entry(sid.to_owned()).or_default();
        lines.push(html.to_owned());
        if lines.len() > KEEP {
            lines.remove(0);
        }
    }
}

/// Adds a line to the session's chat: kept for reloads and pushed to its open pages.
pub fn post_line(state: &AppState, sid: &str, line: &ChatLine) {
    let html = views::fragment(line);
    state.conversations.keep(sid, &html);
    state.hub.send(sid, "chat", html);
}

#[derive(Debug, serde::Deserialize)]
pub struct Ask {
    #[serde(default)]
    text: String,
    /// An S6 attack toggle for this run (`kit::agent::attack`): the misbehaving agent tries,
    /// the platform refuses. Without a sentence, the attack's own demo sentence is asked.
    #[serde(default)]
    attack: String,
}

/// A chat form the UI will not pass on: 422 with a line saying why.
fn unprocessable(text: String) -> Response {
    let line = ChatLine {
        class: "failed",
        who: String::new(),
        text,
        detail: String::new(),
    };
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Html(views::fragment(&line)),
    )
        .into_response()
}

/// `POST /chat`: answers with the user's own line; Charlie's lines follow over `/live`.
pub async fn ask(State(state): State<AppState>, me: SignedIn, Form(ask): Form<Ask>) -> Response {
    let attack = match ask.attack.trim() {
        "" => None,
        id => match Attack::parse(id) {
            Some(a) => Some(a),
            None => return unprocessable("There is no such attack toggle.".into()),
        },
    };
    let text = match (ask.text.trim(), attack) {
        ("", Some(a)) => a.demo_sentence().to_owned(),
        (t, _) => t.to_owned(),
    };
    if text.is_empty() || text.len() > MAX_TEXT || text.chars().any(char::is_control) {
        return unprocessable(format!(
            "Say it in one line of at most {MAX_TEXT} characters."
        ));
    }
    let mine = ChatLine {
        class: "user",
        who: me.account.email.clone(),
        text: text.clone(),
        detail: attack
            .map(|a| {
                format!(
                    "Attack toggle {a}: {} {} — must be refused by {}.",
                    a.agent(),
                    a.tries(),
                    a.refused_by()
                )
            })
            .unwrap_or_default(),
    };
    let html = views::fragment(&mine);
    state.conversations.keep(&me.account.sid, &html);
    let mut message = Message::new(Role::User, vec![Part::text(text)]);
    if let Some(a) = attack {
        message.metadata = Some(serde_json::json!({"attack": a.id()}));
    }
    let (state2, account) = (state.clone(), me.account.clone());
    tokio::spawn(async move {
        let _ = converse(&state2, &account, message).await;
    });
    Html(html).into_response()
}

/// Sends `message` to the concierge and relays the task into the chat until it ends. Returns
/// the task id as soon as the concierge names it (the rest runs in the background).
pub async fn converse(
    state: &AppState,
    account: &Arc<Account>,
    message: Message,
) -> Result<String, String> {
    let sid = account.sid.clone();
    let fail = |text: String| {
        post_line(
            state,
            &sid,
            &ChatLine {
                class: "failed",
                who: "Charlie".into(),
                text: text.clone(),
                detail: String::new(),
            },
        );
        Err(text)
    };
    let token = match account.access_token(&state.oidc).await {
        Ok(t) => t,
        Err(e) => return fail(e.to_string()),
    };
    let endpoint = format!("{}/a2a", state.config.concierge);
    let mut stream = match state.a2a.stream(&endpoint, &token, &message).await {
        Ok(s) => s,
        Err(ClientError::Http(status, body)) => {
            return fail(format!(
                "The concierge refused the request ({status}): {body}"
            ));
        }
        Err(e) => return fail(format!("The concierge could not be reached: {e}")),
    };
    // The first event names the task.
    let task_id = match stream.next().await {
        Some(Ok(StreamResponse::Task(t))) => t.id,
        Some(Ok(other)) => {
            relay(state, &sid, other);
            String::new()
        }
        Some(Err(e)) => return fail(format!("The concierge stopped answering: {e}")),
        None => return fail("The concierge closed the conversation at once".into()),
    };
    let (state, sid2, task) = (state.clone(), sid.clone(), task_id.clone());
    tokio::spawn(async move {
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(ev) => {
                    if relay(&state, &sid2, ev) {
                        state.conversations.mark_ended(&task);
                        return;
                    }
                }
                Err(e) => {
                    post_line(
                        &state,
                        &sid2,
                        &ChatLine {
                            class: "failed",
                            who: "Charlie".into(),
                            text: format!("The concierge stopped answering: {e}"),
                            detail: String::new(),
                        },
                    );
                    state.conversations.mark_ended(&task);
                    return;
                }
            }
        }
        state.conversations.mark_ended(&task);
    });
    Ok(task_id)
}

/// One stream event as a chat line; `true` once the task has ended.
fn relay(state: &AppState, sid: &str, ev: StreamResponse) -> bool {
    let StreamResponse::StatusUpdate(u) = ev else {
        return false;
    };
    let text = u
        .status
        .message
        .as_ref()
        .map(Message::text)
        .unwrap_or_default();
    let (class, detail) = match u.status.state {
        TaskState::Working if text.is_empty() => return false,
        TaskState::Working | TaskState::Submitted => ("working", String::new()),
        TaskState::AuthRequired => (
            "waiting",
            "Waiting for your approval: check the phone.".to_owned(),
        ),
        TaskState::InputRequired => ("waiting", String::new()),
        TaskState::Completed => ("done", String::new()),
        TaskState::Rejected => (
            "refused",
            "Refused by a component outside the agent; see the security events.".to_owned(),
        ),
        _ => ("failed", String::new()),
    };
    post_line(
        state,
        sid,
        &ChatLine {
            class,
            who: "Charlie".into(),
            text,
            detail,
        },
    );
    u.status.state.is_terminal()
}
