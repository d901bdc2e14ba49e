//! The web UI: what a person sees of the platform. Sign-in through the idp (code + PKCE), the
//! chat with Charlie, the phone's approvals, every service's security events live, the token
//! inspector, forensics by `jti`, and presenter mode. Server-rendered (askama) with htmx and its
//! SSE extension, served from this binary; no CDN, no token in the page.

pub mod accounts;
pub mod auth;
pub mod chat;
pub mod config;
pub mod console;
pub mod forensics;
pub mod hub;
pub mod inspect;
pub mod live;
pub mod oidc;
pub mod present;
pub mod scenarios;
pub mod signals;
pub mod state;
pub mod views;

use std::sync::Arc;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::{get, post},
};
use tower_sessions::{Expiry, MemoryStore, SessionManagerLayer, cookie::SameSite};

use crate::{config::Config, state::AppState};

/// Forms here are one sentence long.
const MAX_BODY: usize = 16 * 1024;

/// Builds the state: the OIDC client, the database pool and the one `LISTEN` on
/// `security_events` that feeds every open page.
pub async fn state(config: Config) -> anyhow::Result<AppState> {
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let events = kit::pg::listen(&config.database_url, kit::events::CHANNEL)?;
    Ok(AppState {
        oidc: oidc::Oidc::new(&config, http.clone())?,
        a2a: kit::a2a::client::Client::new(http.clone()),
        db: kit::pg::pool(&config.database_url, "public", 4)?,
        http,
        accounts: Arc::default(),
        conversations: Arc::default(),
        hub: hub::Hub::default(),
        events,
        config: Arc::new(config),
    })
}

pub fn router(state: AppState, signals: Router) -> Router {
    let sessions = SessionManagerLayer::new(MemoryStore::default())
        .with_name("web_session")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(state.config.public_url.starts_with("https://"))
        .with_expiry(Expiry::OnInactivity(time::Duration::hours(12)));
    Router::new()
        .route("/", get(console::index))
        .route("/phone", get(console::phone))
        .route("/live", get(live::live))
        .route("/chat", post(chat::ask))
        .route("/approvals/{id}/{decision}", post(console::decide))
        .route("/session/kill", post(console::kill_session))
        .route("/inspect/me", get(inspect::me))
        .route("/inspect/{jti}", get(inspect::by_jti))
        .route("/forensics", get(forensics::page))
        .route("/present", get(present::list).post(present::start))
        .route("/present/run/{task}", get(present::run))
        .route("/present/run/{task}/pause", get(present::pause))
        .route("/present/run/{task}/next", post(present::next))
        .route("/auth/login", get(auth::login))
        .route("/auth/callback", get(auth::callback))
        .route("/auth/logout", post(auth::logout))
        .route("/health", get(|| async { "ok" }))
        .route("/static/{file}", get(asset))
        .layer(sessions)
        .with_state(state)
        .merge(signals)
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// The vendored front-end, compiled in: nothing is fetched from elsewhere.
async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> axum::response::Response {
    let (body, kind): (&'static str, &str) = match file.as_str() {
        "htmx-2.0.11.min.js" => (
            include_str!("../static/htmx-2.0.11.min.js"),
            "text/javascript",
        ),
        "htmx-ext-sse-2.2.4.js" => (
            include_str!("../static/htmx-ext-sse-2.2.4.js"),
            "text/javascript",
        ),
        "app.js" => (include_str!("../static/app.js"), "text/javascript"),
        "app.css" => (include_str!("../static/app.css"), "text/css"),
        _ => return (StatusCode::NOT_FOUND, "no such file").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}
