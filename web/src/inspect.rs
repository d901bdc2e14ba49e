//! The token inspector: a token's header and claims decoded, its `act` chain drawn as nested
//! boxes (the current actor outermost, the user at the centre), its `authorization_details` as
//! a table, and its expiry counting down.
//!
//! `/inspect/me` shows the user's own token (decoded here; the token itself never leaves the
//! server). `/inspect/{jti}` shows a token the idp minted by exchange, from the decoded copy
//! its issuance event keeps (header and claims, never the signature).

use askama::Template;
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
};
use serde_json::Value;

use crate::{
    auth::SignedIn,
    state::AppState,
    views::{self, MessagePage, display_name},
};

#[derive(Template)]
#[template(path = "inspect.html")]
pub struct Inspect {
    pub csrf: String,
    pub email: String,
    pub title: String,
    pub jti: String,
    pub exp: i64,
    pub header: Vec<(String, String)>,
    pub claims_json: String,
    /// Outermost first: `[("Banking", "spiffe://…/banking"), ("Concierge", …), ("alice@…", sub)]`.
    pub chain: Vec<(String, String)>,
    pub rar: Vec<RarRow>,
    pub facts: Vec<(String, String)>,
}

/// One `authorization_details` entry as a table row.
#[derive(Debug)]
pub struct RarRow {
    pub kind: String,
    pub action: String,
    pub locations: String,
    pub details: Vec<(String, String)>,
}

pub async fn me(State(state): State<AppState>, me: SignedIn) -> Response {
    let token = match me.account.access_token(&state.oidc).await {
        Ok(t) => t,
        Err(e) => return not_found(&me, &e.to_string()),
    };
    match kit::jwt::decode_unverified(&token) {
        Ok((header, claims)) => page(&me, "Your access token", &header, &claims),
        Err(_) => not_found(&me, "your token could not be decoded"),
    }
}

pub async fn by_jti(
    State(state): State<AppState>,
    me: SignedIn,
    Path(jti): Path<String>,
) -> Response {
    if !kit::plain_id(&jti) {
        return not_found(&me, "that is not a token id");
    }
    let events = idp_events(&state, &jti).await.unwrap_or_default();
    let issued = events.iter().find_map(|e| e.get("token"));
    match issued {
        Some(t) => page(
            &me,
            &format!("Token {jti}"),
            t.get("header").unwrap_or(&Value::Null),
            t.get("claims").unwrap_or(&Value::Null),
        ),
        None => not_found(
            &me,
            &format!(
                "The identity provider has no issuance recorded for jti {jti}. It may be another service's id (a SET, an actor token); forensics searches every store."
            ),
        ),
    }
}

/// The idp's events about `jti`, newest first (admin API).
pub async fn idp_events(state: &AppState, jti: &str) -> anyhow::Result<Vec<Value>> {
    Ok(state
        .http
        .get(format!("{}/api/events", state.config.idp))
        .bearer_auth(&state.config.admin_token)
        .query(&[("jti", jti)])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

fn page(me: &SignedIn, title: &str, header: &Value, claims: &Value) -> Response {
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let mut chain = vec![];
    let mut act = claims.get("act");
    while let Some(a) = act {
        let sub = s(a, "sub");
        chain.push((display_name(&sub), sub));
        act = a.get("act");
    }
    let subject = claims
        .get("email")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| s(claims, "sub"));
    chain.push((subject, s(claims, "sub")));
    let header_rows = header
        .as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), plain(v))).collect())
        .unwrap_or_default();
    let aud = match claims.get("aud") {
        Some(Value::Array(a)) => a.iter().map(plain).collect::<Vec<_>>().join(", "),
        Some(v) => plain(v),
        None => String::new(),
    };
    let facts = [
        ("Audience", aud),
        ("Issuer", s(claims, "iss")),
        ("Session", s(claims, "sid")),
        ("Assurance (acr)", s(claims, "acr")),
        ("Approval", s(claims, "approval_id")),
        (
            "May act",
            claims
                .pointer("/may_act/sub")
                .map(plain)
                .unwrap_or_default(),
        ),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    views::render(&Inspect {
        csrf: me.csrf.clone(),
        email: me.account.email.clone(),
        title: title.to_owned(),
        jti: s(claims, "jti"),
        exp: claims.get("exp").and_then(Value::as_i64).unwrap_or(0),
        header: header_rows,
        claims_json: serde_json::to_string_pretty(claims).unwrap_or_default(),
        chain,
        rar: rar_rows(claims.get("authorization_details")),
        facts,
    })
}

fn rar_rows(details: Option<&Value>) -> Vec<RarRow> {
    let Some(Value::Array(list)) = details else {
        return vec![];
    };
    list.iter()
        .map(|d| {
            let od = d.get("operationDetails").and_then(Value::as_object);
            let action = od
                .and_then(|o| o.get("action"))
                .map(plain)
                .or_else(|| d.get("actions").map(plain))
                .unwrap_or_default();
            RarRow {
                kind: d.get("type").map(plain).unwrap_or_default(),
                action,
                locations: d.get("locations").map(plain).unwrap_or_default(),
                details: od
                    .map(|o| {
                        o.iter()
                            .filter(|(k, _)| *k != "action")
                            .map(|(k, v)| (k.clone(), plain(v)))
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// A JSON value in plain words: strings bare, arrays comma-separated, objects as `k: v`.
pub fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(plain).collect::<Vec<_>>().join(", "),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| format!("{k}: {}", plain(v)))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn not_found(me: &SignedIn, message: &str) -> Response {
    let mut r = views::render(&MessagePage {
        csrf: me.csrf.clone(),
        title: "No such token".into(),
        message: message.into(),
        link: Some(("/".into(), "Back to the console".into())),
    });
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}
