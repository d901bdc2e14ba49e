//! Sign-in, sign-out and who is asking. The browser holds one cookie (`web_session`: HttpOnly,
//! SameSite=Lax) naming a server-side session that records only the idp session id and this
//! session's CSRF token; the tokens stay in [`crate::accounts`].
//!
//! Every state-changing request carries the CSRF token: htmx sends it as `x-csrf-token` (set
//! once on `<body>`), the one plain form as a `csrf` field.

use std::sync::Arc;

use axum::{
    extract::{FromRequestParts, Query, State},
    http::{HeaderValue, Method, StatusCode, request::Parts},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use subtle::ConstantTimeEq as _;
use tower_sessions::Session;

use crate::{
    accounts::Account,
    oidc::PendingSignIn,
    state::AppState,
    views::{self, MessagePage},
};

const SID: &str = "sid";
const CSRF: &str = "csrf";
const PENDING: &str = "pending_sign_in";

/// A signed-in user, and the CSRF token their pages carry.
pub struct SignedIn {
    pub account: Arc<Account>,
    pub csrf: String,
    pub session: Session,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let htmx = parts.headers.contains_key("hx-request");
        let sid: Option<String> = session.get(SID).await.ok().flatten();
        let csrf: Option<String> = session.get(CSRF).await.ok().flatten();
        let (Some(account), Some(csrf)) = (sid.and_then(|s| state.accounts.get(&s)), csrf) else {
            return Err(sign_in_first(parts, htmx));
        };
        if !matches!(parts.method, Method::GET | Method::HEAD) {
            let sent = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !bool::from(sent.as_bytes().ct_eq(csrf.as_bytes())) {
                return Err((
                    StatusCode::FORBIDDEN,
                    "this request did not carry the page's CSRF token; reload the page",
                )
                    .into_response());
            }
        }
        Ok(Self {
            account,
            csrf,
            session,
        })
    }
}

/// Pages go to the sign-in; htmx requests are told to (`HX-Redirect`).
fn sign_in_first(parts: &Parts, htmx: bool) -> Response {
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let then = if parts.method == Method::GET && !htmx && path.starts_with('/') {
        path
    } else {
        "/"
    };
    let to = format!(
        "/auth/login?then={}",
        url::form_urlencoded::byte_serialize(then.as_bytes()).collect::<String>()
    );
    if htmx {
        let mut r = StatusCode::UNAUTHORIZED.into_response();
        if let Ok(v) = HeaderValue::from_str(&to) {
            r.headers_mut().insert("hx-redirect", v);
        }
        return r;
    }
    Redirect::to(&to).into_response()
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    then: Option<String>,
}

/// `GET /auth/login`: off to the idp, with PKCE and a fresh `state`.
pub async fn login(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<LoginQuery>,
) -> Response {
    // Only our own paths: never an open redirect.
    let then = q
        .then
        .filter(|t| t.starts_with('/') && !t.starts_with("//") && !t.contains('\\'))
        .unwrap_or_else(|| "/".into());
    let (url, pending) = state.oidc.start(then);
    if session.insert(PENDING, &pending).await.is_err() {
        return failure(
            "Sign-in could not start",
            "the session store refused a write",
        );
    }
    Redirect::to(url.as_str()).into_response()
}

#[derive(Debug, Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /auth/callback`: the idp sends the browser back with a code (or an error).
pub async fn callback(
    State(state): State<AppState>,
    session: Session,
    Query(cb): Query<Callback>,
) -> Response {
    let pending: Option<PendingSignIn> = session.remove(PENDING).await.ok().flatten();
    if let Some(e) = cb.error {
        return failure(
            "Sign-in did not complete",
            &format!(
                "The identity provider answered {e}{}.",
                cb.error_description
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            ),
        );
    }
    let (Some(pending), Some(code), Some(got_state)) = (pending, cb.code, cb.state) else {
        return failure(
            "Sign-in did not complete",
            "This sign-in was not started here, or it was already used. Start again.",
        );
    };
    if !bool::from(got_state.as_bytes().ct_eq(pending.state.as_bytes())) {
        return failure(
            "Sign-in refused",
            "The state parameter does not match the one this browser was given.",
        );
    }
    let (claims, tokens) = match state.oidc.finish(code, pending.verifier).await {
        Ok(x) => x,
        Err(e) => return failure("Sign-in refused", &e.to_string()),
    };
    let Some(sid) = claims.sid.clone() else {
        return failure("Sign-in refused", "the token names no session");
    };
    let email = claims.email.clone().unwrap_or_else(|| claims.sub.clone());
    state.accounts.insert(Arc::new(Account::new(
        email.clone(),
        claims.sub.clone(),
        sid.clone(),
        tokens,
    )));
    // A new cookie id at sign-in: a session id planted before it is worth nothing after.
    let stored = async {
        session.cycle_id().await?;
        session.insert(SID, &sid).await?;
        session.insert(CSRF, kit::random_id(24)).await
    }
    .await;
    if stored.is_err() {
        return failure(
            "Sign-in could not finish",
            "the session store refused a write",
        );
    }
    tracing::info!(user = %email, sid = %sid, "signed in");
    Redirect::to(&pending.then).into_response()
}

#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    csrf: String,
}

/// `POST /auth/logout`: forgets this browser's session and its tokens (the idp session stays
/// until it expires or is killed; "Kill session" ends it everywhere).
pub async fn logout(
    State(state): State<AppState>,
    session: Session,
    axum::Form(form): axum::Form<LogoutForm>,
) -> Response {
    let csrf: Option<String> = session.get(CSRF).await.ok().flatten();
    if !csrf.is_some_and(|c| bool::from(c.as_bytes().ct_eq(form.csrf.as_bytes()))) {
        return (
            StatusCode::FORBIDDEN,
            "the sign-out form is stale; reload the page",
        )
            .into_response();
    }
    if let Ok(Some(sid)) = session.get::<String>(SID).await
        && let Some(account) = state.accounts.remove(&sid)
    {
        account.end("signed out").await;
    }
    let _ = session.flush().await;
    views::render(&MessagePage {
        csrf: String::new(),
        title: "Signed out".into(),
        message: "This browser holds nothing of your session any more.".into(),
        link: Some(("/".into(), "Sign in again".into())),
    })
}

fn failure(title: &str, message: &str) -> Response {
    let mut r = views::render(&MessagePage {
        csrf: String::new(),
        title: title.into(),
        message: message.into(),
        link: Some(("/auth/login".into(), "Sign in".into())),
    });
    *r.status_mut() = StatusCode::BAD_REQUEST;
    r
}
