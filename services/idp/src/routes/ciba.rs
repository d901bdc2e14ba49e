//! Push approval, CIBA-shaped (poll mode): the backchannel authentication endpoint and the
//! token endpoint's `urn:openid:params:grant-type:ciba` grant. Exchanges that need approval
//! (tiers 2 and 3) use the same approvals and the same polling.

use std::time::Instant;

use axum::{Json, extract::State, http::HeaderMap};
use kit::{
    claims::{AccessClaims, Audience},
    events::Outcome,
    rar,
};
use serde_json::{Value, json};

use crate::{
    auth::{self, Caller},
    error::{Error, OAuthError},
    exchange::{self, ACR_PUSH},
    routes::form::Params,
    state::AppState,
    store::{approvals, sessions, users},
};

pub const GRANT_TYPE: &str = "urn:openid:params:grant-type:ciba";

/// `POST /bc-authorize`: a client asks the user (named by `login_hint`) to approve
/// `authorization_details` on their device. Tier 4 is refused here too; everything else waits
/// for the user, every time.
pub async fn bc_authorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    p: Params,
) -> Result<Json<Value>, Error> {
    let started = Instant::now();
    let client = match auth::client(&state, &headers, &p).await? {
        Some(Caller::Client(c)) if c.allows_grant(GRANT_TYPE) => c,
        Some(_) => {
            return Err(
                OAuthError::new("unauthorized_client", "this client may not use CIBA").into(),
            );
        }
        None => {
            return Err(
                OAuthError::new("invalid_client", "client authentication is required").into(),
            );
        }
    };
    let scope = p.require("scope")?;
    if !scope.split(' ').any(|s| s == "openid") {
        return Err(OAuthError::new("invalid_scope", "scope must include openid").into());
    }
    if p.get("login_hint_token").is_some() || p.get("id_token_hint").is_some() {
        return Err(OAuthError::invalid_request("only login_hint is supported").into());
    }
    let hint = p.require("login_hint")?;
    let details = match p.get("authorization_details") {
        Some(j) => rar::parse(j)
            .map_err(|e| OAuthError::new("invalid_authorization_details", e.to_string()))?,
        None => vec![],
    };
    let mut db = state.pool.get().await?;
    let user = users::find_by_email(&db, hint)
        .await?
        .filter(|u| u.active)
        .ok_or_else(|| OAuthError::new("unknown_user_id", "no such user"))?;
    let mut event = state.event("approval_requested", Outcome::Pending);
    event.user = Some(user.email.clone());
    event.actor_chain = vec![client.id.clone(), user.email.clone()];
    event.rar_summary = Some(if details.is_empty() {
        format!("Sign in to {}", client.id)
    } else {
        rar::summarize(&details)
    });
    event.fingerprint = Some(rar::fingerprint(&details));
    let contexts = details.iter().flat_map(|d| {
        exchange::policy_contexts(
            d,
            false,
            &client.id,
            std::slice::from_ref(&client.id),
            1,
            ACR_PUSH,
        )
        .into_iter()
        .map(move |c| (d, c))
    });
    for (d, ctx) in contexts {
        let action = if d.is_resource_access() {
            "read"
        } else {
            d.action().unwrap_or("")
        };
        let decision = state.policy.decide(&user.id, action, &d.kind, ctx);
        if decision.tier == 4 || !decision.allowed {
            event.outcome = Outcome::Denied;
            event.tier = Some(4);
            event.reason = Some(format!(
                "policy_denied: {}",
                decision.reason.clone().unwrap_or_default()
            ));
            state.emit_best_effort(event.timed(started)).await;
            return Err(
                OAuthError::new("access_denied", decision.reason.unwrap_or_default()).into(),
            );
        }
    }
    // The user authenticates on their device by approving: that is this token's session.
    let session = sessions::create(
        &db,
        &user.id,
        &client.id,
        ACR_PUSH,
        state.config.session_ttl,
    )
    .await?;
    let now = kit::now_secs();
    let claims = AccessClaims {
        iss: state.issuer.url.clone(),
        sub: user.id.clone(),
        aud: Audience::one(
            client
                .audiences
                .first()
                .cloned()
                .unwrap_or_else(|| client.id.clone()),
        ),
        iat: now,
        exp: now + state.config.access_token_ttl.as_secs() as i64,
        jti: String::new(),
        sid: Some(session.id.clone()),
        client_id: Some(client.id.clone()),
        scope: Some(scope.to_owned()),
        email: Some(user.email.clone()),
        acr: Some(ACR_PUSH.into()),
        auth_time: Some(now),
        act: None,
        may_act: None,
        authorization_details: (!details.is_empty()).then(|| details.clone()),
        approval_id: None,
    };
    let summary = event.rar_summary.clone().unwrap_or_default();
    let created = approvals::create(
        &db,
        &approvals::NewApproval {
            user_id: &user.id,
            session_id: &session.id,
            client_id: &client.id,
            requested_by: &client.id,
            chain: &event.actor_chain,
            audience: &claims.aud.0.join(" "),
            authorization_details: serde_json::to_value(&details)?,
            fingerprint: event.fingerprint.as_deref().unwrap_or_default(),
            summary: &summary,
            tier: 3,
            pending_token: serde_json::to_value(&claims)?,
            ttl: state.config.approval_ttl,
            poll_interval: state.config.poll_interval,
        },
    )
    .await;
    let (approval, auth_req_id) = match created {
        Ok(x) => x,
        Err(e) => {
            sessions::revoke(
                &mut db,
                &session.id,
                "approval could not be created",
                crate::store::outbox::RevokedBy::System,
            )
            .await?;
            return Err(e.into());
        }
    };
    event.session = Some(session.id);
    event.approval_id = Some(approval.id.clone());
    event.tier = Some(3);
    state.emit(event.timed(started)).await?;
    Ok(Json(json!({
        "auth_req_id": auth_req_id,
        "expires_in": state.config.approval_ttl.as_secs(),
        "interval": state.config.poll_interval.as_secs(),
    })))
}

/// The CIBA grant: answers `authorization_pending`, `slow_down`, `expired_token` or
/// `access_denied` until the user has approved, then mints exactly the token that was approved,
/// once.
pub async fn poll(state: &AppState, p: &Params, caller: Option<Caller>) -> Result<Value, Error> {
    let caller = caller
        .ok_or_else(|| OAuthError::new("invalid_client", "client authentication is required"))?;
    let auth_req_id = p.require("auth_req_id")?;
    let db = state.pool.get().await?;
    let invalid = |d: &str| Error::from(OAuthError::new("invalid_grant", d));
    let approval = approvals::poll(&db, auth_req_id)
        .await?
        .ok_or_else(|| invalid("unknown auth_req_id"))?;
    if approval.client_id != caller.id() {
        return Err(invalid("this auth_req_id was issued to another client"));
    }
    match approval.status.as_str() {
        "consumed" => return Err(invalid("this auth_req_id has already been used")),
        "denied" => {
            let why = if sessions::is_alive(&db, &approval.session_id).await? {
                "the user denied the request"
            } else {
                "the session has ended"
            };
            return Err(OAuthError::new("access_denied", why).into());
        }
        "pending" if approval.expired => {
            return Err(OAuthError::new(
                "expired_token",
                "the approval request expired; start over",
            )
            .into());
        }
        "pending" if approval.polled_too_soon => {
            return Err(
                OAuthError::new("slow_down", "polling faster than the interval allows")
                    .with("interval", approval.poll_interval + 5)
                    .into(),
            );
        }
        "pending" => {
            return Err(OAuthError::new(
                "authorization_pending",
                format!("waiting for the user to approve: {}", approval.summary),
            )
            .with("interval", approval.poll_interval)
            .into());
        }
        _ => {}
    }
    // Approved: the session must still be alive, and so must the agent's standing.
    if !sessions::is_alive(&db, &approval.session_id).await? {
        return Err(OAuthError::new("access_denied", "the session has ended").into());
    }
    if let Caller::Agent(a) = &caller
        && a.status != crate::registry::Status::Active
    {
        return Err(
            OAuthError::new("access_denied", format!("agent {} is suspended", a.name)).into(),
        );
    }
    let mut claims: AccessClaims =
        serde_json::from_value(approval.pending_token.clone()).map_err(anyhow::Error::from)?;
    let now = kit::now_secs();
    let lifetime = claims.exp - claims.iat;
    claims.jti = kit::random_id(16);
    claims.iat = now;
    claims.exp = now + lifetime.max(0);
    claims.acr = Some(ACR_PUSH.into());
    claims.approval_id = Some(approval.id.clone());
    if !approvals::consume(&db, &approval.id, &claims.jti).await? {
        return Err(invalid("this auth_req_id has already been used"));
    }
    if approval.tier == 2 {
        approvals::grant_writes(
            &db,
            &approval.session_id,
            &approval.id,
            state.config.write_grant_window,
        )
        .await?;
    }
    let token = state.issuer.sign_access(&claims)?;
    let mut event = state.event("token_exchange", Outcome::Approved);
    event.user = claims.email.clone();
    event.session = claims.sid.clone();
    event.actor_chain = approval.chain.clone();
    event.tool = claims
        .rar()
        .iter()
        .find(|d| !d.is_resource_access())
        .and_then(|d| d.action())
        .map(str::to_owned);
    event.tier = Some(approval.tier as u8);
    event.rar_summary = Some(approval.summary.clone());
    event.fingerprint = Some(approval.fingerprint.clone());
    event.jti = Some(claims.jti.clone());
    event.token = Some(state.issuer.decoded(&claims));
    event.approval_id = Some(approval.id.clone());
    state.emit(event).await?;
    Ok(exchange::token_response(&token, &claims))
}
