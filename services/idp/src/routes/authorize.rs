//! `/authorize`: the authorization code flow's front channel with a real login form.
//! PKCE with S256 is required; `plain` and missing challenges are refused.

use askama::Template;
use axum::{
    extract::{RawQuery, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
};
use kit::events::Outcome;
use subtle::ConstantTimeEq as _;

use crate::{
    clients::Client,
    exchange::ACR_PASSWORD,
    routes::form::Params,
    state::AppState,
    store::{codes, sessions, users},
};

const SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];
const CSRF_COOKIE: &str = "idp_csrf";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    action: &'a str,
    client_id: &'a str,
    email: &'a str,
    error: Option<&'a str>,
    hidden: Vec<(&'static str, String)>,
    demo: bool,
}

/// A validated authorization request.
struct AuthRequest {
    client: Client,
    redirect_uri: String,
    state: Option<String>,
    scope: String,
    nonce: Option<String>,
    code_challenge: String,
}

/// Refusals before the redirect URI is trusted are shown here; after, they go back to the client.
enum Invalid {
    Page(String),
    Redirect(Response),
}

fn error_page(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>Sign-in error</title><body style=\"font-family:system-ui;padding:2rem\"><h1>This sign-in link is not valid</h1><p>{}</p></body>",
        askama::filters::escape(message, askama::filters::Html)
            .map(|s| s.to_string())
            .unwrap_or_default()
    );
    (status, Html(body)).into_response()
}

fn redirect_error(
    redirect_uri: &str,
    state: Option<&str>,
    issuer: &str,
    error: &str,
    description: &str,
) -> Response {
    let mut url = match url::Url::parse(redirect_uri) {
        Ok(u) => u,
        Err(_) => return error_page(StatusCode::BAD_REQUEST, "invalid redirect_uri"),
    };
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("error", error)
            .append_pair("error_description", description)
            .append_pair("iss", issuer);
        if let Some(s) = state {
            q.append_pair("state", s);
        }
    }
    Redirect::to(url.as_str()).into_response()
}

fn validate(state: &AppState, p: &Params) -> Result<AuthRequest, Invalid> {
    let client = p
        .get("client_id")
        .and_then(|id| state.clients.get(id))
        .filter(|c| c.allows_grant("authorization_code"))
        .ok_or_else(|| Invalid::Page("unknown client_id".into()))?
        .clone();
    let redirect_uri = p
        .get("redirect_uri")
        .filter(|r| client.redirect_allowed(r))
        .ok_or_else(|| Invalid::Page("redirect_uri is not registered for this client".into()))?
        .to_owned();
    let st = p.get("state").map(str::to_owned);
    let back = |error: &str, d: &str| {
        Invalid::Redirect(redirect_error(
            &redirect_uri,
            st.as_deref(),
            &state.issuer.url,
            error,
            d,
        ))
    };
    if p.get("response_type") != Some("code") {
        return Err(back(
            "unsupported_response_type",
            "only response_type=code is supported",
        ));
    }
    let challenge = p
        .get("code_challenge")
        .ok_or_else(|| back("invalid_request", "PKCE is required: send code_challenge"))?;
    if p.get("code_challenge_method") != Some("S256") {
        return Err(back(
            "invalid_request",
            "code_challenge_method must be S256",
        ));
    }
    if challenge.len() != 43
        || !challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(back(
            "invalid_request",
            "code_challenge must be a base64url SHA-256",
        ));
    }
    let scope = p.get("scope").unwrap_or("openid");
    if let Some(bad) = scope.split(' ').find(|s| !SCOPES.contains(s)) {
        return Err(back("invalid_scope", &format!("unknown scope {bad}")));
    }
    Ok(AuthRequest {
        client,
        redirect_uri,
        state: st.clone(),
        scope: scope.to_owned(),
        nonce: p.get("nonce").map(str::to_owned),
        code_challenge: challenge.to_owned(),
    })
}

fn render(
    state: &AppState,
    req: &AuthRequest,
    csrf: &str,
    email: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let mut hidden = vec![
        ("client_id", req.client.id.clone()),
        ("redirect_uri", req.redirect_uri.clone()),
        ("response_type", "code".to_owned()),
        ("scope", req.scope.clone()),
        ("code_challenge", req.code_challenge.clone()),
        ("code_challenge_method", "S256".to_owned()),
        ("csrf", csrf.to_owned()),
    ];
    if let Some(s) = &req.state {
        hidden.push(("state", s.clone()));
    }
    if let Some(n) = &req.nonce {
        hidden.push(("nonce", n.clone()));
    }
    let page = LoginPage {
        action: "/authorize",
        client_id: &req.client.id,
        email,
        error,
        hidden,
        demo: state.config.seed_demo_users,
    };
    match page.render() {
        Ok(html) => {
            let cookie = format!(
                "{CSRF_COOKIE}={csrf}; Path=/authorize; HttpOnly; SameSite=Strict; Max-Age=600"
            );
            (status, [(header::SET_COOKIE, cookie)], Html(html)).into_response()
        }
        Err(e) => crate::error::Error::Internal(e.into()).into_response(),
    }
}

/// GET: validate the request and show the login form.
pub async fn form(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let p = match Params::parse(query.unwrap_or_default().as_bytes()) {
        Ok(p) => p,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &e.description),
    };
    match validate(&state, &p) {
        Ok(req) => render(&state, &req, &kit::random_id(16), "", None, StatusCode::OK),
        Err(Invalid::Page(m)) => error_page(StatusCode::BAD_REQUEST, &m),
        Err(Invalid::Redirect(r)) => r,
    }
}

fn csrf_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            c.trim()
                .strip_prefix(&format!("{CSRF_COOKIE}="))
                .map(str::to_owned)
        })
}

/// POST: check the form's CSRF token and the password, start a session, and send the code back.
pub async fn submit(State(state): State<AppState>, headers: HeaderMap, p: Params) -> Response {
    let req = match validate(&state, &p) {
        Ok(r) => r,
        Err(Invalid::Page(m)) => return error_page(StatusCode::BAD_REQUEST, &m),
        Err(Invalid::Redirect(r)) => return r,
    };
    let csrf_ok = match (csrf_cookie(&headers), p.get("csrf")) {
        (Some(c), Some(f)) => bool::from(c.as_bytes().ct_eq(f.as_bytes())),
        _ => false,
    };
    if !csrf_ok {
        return render(
            &state,
            &req,
            &kit::random_id(16),
            "",
            Some("Your sign-in form expired. Please try again."),
            StatusCode::FORBIDDEN,
        );
    }
    let email = p.get("email").unwrap_or("").trim().to_owned();
    match login(&state, &req, &email, p.get("password").unwrap_or("")).await {
        Ok(Some(location)) => Redirect::to(&location).into_response(),
        Ok(None) => render(
            &state,
            &req,
            &kit::random_id(16),
            &email,
            Some("Wrong email or password."),
            StatusCode::UNAUTHORIZED,
        ),
        Err(e) => crate::error::Error::Internal(e).into_response(),
    }
}

async fn login(
    state: &AppState,
    req: &AuthRequest,
    email: &str,
    password: &str,
) -> anyhow::Result<Option<String>> {
    let db = state.pool.get().await?;
    let mut event = state.event("login", Outcome::Denied);
    event.user = Some(email.to_owned());
    let Some(user) = users::check_password(&db, email, password).await? else {
        event.reason = Some("wrong email or password".into());
        state.emit(event).await?;
        return Ok(None);
    };
    let session = sessions::create(
        &db,
        &user.id,
        &req.client.id,
        ACR_PASSWORD,
        state.config.session_ttl,
    )
    .await?;
    let code = codes::create_code(
        &db,
        &codes::CodeGrant {
            client_id: req.client.id.clone(),
            user_id: user.id.clone(),
            session_id: session.id.clone(),
            redirect_uri: req.redirect_uri.clone(),
            code_challenge: req.code_challenge.clone(),
            scope: req.scope.clone(),
            nonce: req.nonce.clone(),
        },
    )
    .await?;
    event.outcome = Outcome::Info;
    event.session = Some(session.id);
    event.user = Some(user.email);
    state.emit(event).await?;
    let mut url = url::Url::parse(&req.redirect_uri)?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("code", &code)
            .append_pair("iss", &state.issuer.url);
        if let Some(s) = &req.state {
            q.append_pair("state", s);
        }
    }
    Ok(Some(url.into()))
}
