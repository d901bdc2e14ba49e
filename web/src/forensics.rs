//! Forensics: one `jti` joined across the three stores that recorded it independently — the
//! idp's issuance event, the issuer's hash-chained audit lines (with the chain verified), and
//! the ledger row — side by side, and whether they agree.

use askama::Template;
use axum::{
    extract::{Query, State},
    response::Response,
};
use serde_json::Value;

use crate::{
    auth::SignedIn,
    inspect::{idp_events, plain},
    state::AppState,
    views,
};

#[derive(Template)]
#[template(path = "forensics.html")]
pub struct Forensics {
    pub csrf: String,
    pub email: String,
    pub jti: String,
    pub searched: bool,
    pub idp: Vec<Vec<(String, String)>>,
    pub audit: Vec<Vec<(String, String)>>,
    pub chain: String,
    pub chain_ok: bool,
    pub ledger: Vec<Vec<(String, String)>>,
    /// `(statement, holds)`.
    pub checks: Vec<(String, bool)>,
    pub errors: Vec<String>,
}

#[derive(Debug, serde::Deserialize)]
pub struct Search {
    #[serde(default)]
    jti: String,
}

pub async fn page(
    State(state): State<AppState>,
    me: SignedIn,
    Query(q): Query<Search>,
) -> Response {
    let jti = q.jti.trim().to_owned();
    let mut page = Forensics {
        csrf: me.csrf.clone(),
        email: me.account.email.clone(),
        jti: jti.clone(),
        searched: !jti.is_empty(),
        idp: vec![],
        audit: vec![],
        chain: String::new(),
        chain_ok: false,
        ledger: vec![],
        checks: vec![],
        errors: vec![],
    };
    if jti.is_empty() {
        return views::render(&page);
    }
    if !kit::plain_id(&jti) {
        page.errors.push("That is not a token id.".into());
        return views::render(&page);
    }
    let (idp, audit, ledger) = tokio::join!(
        idp_events(&state, &jti),
        audit_lines(&state, &jti),
        ledger_rows(&state, &jti)
    );
    let idp = idp.unwrap_or_else(|e| {
        page.errors.push(format!("The identity provider: {e}"));
        vec![]
    });
    let audit = audit.unwrap_or_else(|e| {
        page.errors.push(format!("The issuer: {e}"));
        Value::Null
    });
    let ledger = ledger.unwrap_or_else(|e| {
        page.errors.push(format!("The ledger: {e}"));
        vec![]
    });
    let lines: Vec<Value> = audit
        .get("lines")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let events: Vec<&Value> = lines.iter().filter_map(|l| l.get("event")).collect();
    page.chain_ok = audit.pointer("/chain/intact") == Some(&Value::Bool(true));
    page.chain = match audit.get("chain") {
        Some(c) if page.chain_ok => format!(
            "hash chain intact: {} lines verified",
            c.get("lines").map(plain).unwrap_or_default()
        ),
        Some(c) => format!(
            "hash chain BROKEN at line {}: {}",
            c.get("broken_at").map(plain).unwrap_or_default(),
            c.get("reason").map(plain).unwrap_or_default()
        ),
        None => "the audit log could not be read".into(),
    };

    let issued = idp.iter().find(|e| {
        e.get("type").and_then(Value::as_str) == Some("token_exchange")
            && matches!(
                e.get("outcome").and_then(Value::as_str),
                Some("allowed" | "approved" | "hitl_cached")
            )
    });
    let kind = |k: &str| {
        events
            .iter()
            .find(|e| e.get("type").and_then(Value::as_str) == Some(k))
            .copied()
    };
    let cred = kind("cred_issued");
    let revoked = kind("lease_revoked").or_else(|| kind("lease_expired"));
    let row = ledger.first();
    let field = |v: Option<&Value>, k: &str| v.and_then(|v| v.get(k)).map(plain);
    page.checks = vec![
        (
            "The identity provider issued this token".to_owned(),
            issued.is_some(),
        ),
        (
            "The issuer issued a credential for it".to_owned(),
            cred.is_some(),
        ),
        (
            "The credential's lease was revoked or expired (its role is gone)".to_owned(),
            revoked.is_some(),
        ),
        ("The ledger has a row naming it".to_owned(), row.is_some()),
        (
            "The ledger row's database user is the one the issuer created".to_owned(),
            cred.is_some()
                && row.is_some()
                && field(cred, "pg_user") == field(row, "audit_pg_user"),
        ),
        (
            "The ledger row's RAR fingerprint is the one the issuer checked".to_owned(),
            cred.is_some()
                && row.is_some()
                && field(cred, "fingerprint") == field(row, "audit_rar_fingerprint"),
        ),
        (
            "The issuer's audit hash chain verifies".to_owned(),
            page.chain_ok,
        ),
    ];
    let table = |v: &Value| -> Vec<(String, String)> {
        v.as_object()
            .map(|o| {
                o.iter()
                    .filter(|(k, _)| *k != "token")
                    .map(|(k, v)| (k.clone(), plain(v)))
                    .collect()
            })
            .unwrap_or_default()
    };
    page.idp = idp.iter().map(table).collect();
    page.audit = lines
        .iter()
        .map(|l| {
            let mut rows = vec![(
                "seq".to_owned(),
                l.get("seq").map(plain).unwrap_or_default(),
            )];
            rows.extend(l.get("event").map(table).unwrap_or_default());
            rows.push((
                "hash".to_owned(),
                l.get("hash").map(plain).unwrap_or_default(),
            ));
            rows
        })
        .collect();
    page.ledger = ledger.iter().map(table).collect();
    views::render(&page)
}

/// The issuer's audit lines about `jti`, with its chain check (admin API).
async fn audit_lines(state: &AppState, jti: &str) -> anyhow::Result<Value> {
    Ok(state
        .http
        .get(format!("{}/v1/sys/audit-log", state.config.vault))
        .header("x-vault-token", &state.config.admin_token)
        .query(&[("jti", jti)])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// The ledger's transactions naming `jti` (read-only).
async fn ledger_rows(state: &AppState, jti: &str) -> anyhow::Result<Vec<Value>> {
    let db = state.db.get().await?;
    let rows = db
        .query(
            "SELECT to_jsonb(t) FROM (
                 SELECT id, at::text AS at, owner, source, destination, amount_cents, currency,
                        audit_pg_user, audit_jti, audit_grant_id::text AS audit_grant_id,
                        audit_rar_fingerprint
                 FROM banking.transactions WHERE audit_jti = $1 ORDER BY id) t",
            &[&jti],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
