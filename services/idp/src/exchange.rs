//! RFC 8693 token exchange with RAR: every rule of a delegation hop, in the order they are
//! checked. This file is the pattern the platform teaches; read it top to bottom.
//!
//! A hop turns a *subject token* (what the presenting agent was given) and an *actor token*
//! (the agent proving who it is) into a new token for one audience and one operation:
//!
//! 1. both tokens verify (ES256 only, our key for the subject, the agent's registered key for
//!    the actor), neither is expired, the actor token's `jti` was never used;
//! 2. the actor is the one the subject token names in `may_act` (no chain splicing), is
//!    registered and active, and may act for the subject token's current actor;
//! 3. the chain stays at most [`MAX_CHAIN_DEPTH`] actors deep and the user's session is alive;
//! 4. the audience is one the actor may ask for;
//! 5. the requested `authorization_details` are covered by the subject token's (authority only
//!    narrows) and by the actor's ceiling;
//! 6. policy decides each entry; the highest tier wins: 1 issues, 2 issues if the session holds
//!    a write approval, 2 and 3 otherwise ask the user, 4 refuses.
//!
//! Every outcome, including each refusal, is one security event naming the rule.

use std::time::Instant;

use kit::{
    claims::{AccessClaims, Actor, Audience, MayAct, short_name},
    events::{Outcome, SecurityEvent},
    rar::{self, AuthorizationDetail},
};
use serde_json::{Value, json};

use crate::{
    auth::{self, Caller},
    error::{Error, OAuthError},
    registry,
    routes::form::Params,
    state::AppState,
    store::{approvals, replay},
};

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const TOKEN_TYPE_ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
/// The longest actor chain a token may carry.
pub const MAX_CHAIN_DEPTH: usize = 4;
/// `acr` of a session whose user signed in with a password.
pub const ACR_PASSWORD: &str = "urn:smt:acr:pwd";
/// `acr` of a token minted after the user approved on their device.
pub const ACR_PUSH: &str = "urn:smt:acr:push";

/// A refused hop: the OAuth error the client sees and the rule the security event names.
struct Refusal {
    error: OAuthError,
    rule: &'static str,
    tier: Option<u8>,
}

fn refuse(code: &'static str, rule: &'static str, description: impl Into<String>) -> Refusal {
    Refusal {
        error: OAuthError::new(code, description),
        rule,
        tier: None,
    }
}

/// Handles `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`.
pub async fn exchange(
    state: &AppState,
    p: &Params,
    caller: Option<Caller>,
) -> Result<Value, Error> {
    let started = Instant::now();
    let mut event = state.event("token_exchange", Outcome::Denied);
    match run(state, p, caller, &mut event).await {
        Ok(Answer::Issued(body)) => Ok(body),
        // Waiting for the user is not a refusal; its event is already written.
        Ok(Answer::Pending(pending)) => Err(pending.into()),
        Err(RunError::Refused(r)) => {
            event.outcome = Outcome::Denied;
            event.reason = Some(format!("{}: {}", r.rule, r.error.description));
            event.tier = r.tier.or(event.tier);
            // Records the refusal, then the anomaly rule (repeated refusals end the session).
            crate::anomaly::record_denial(state, event.timed(started)).await;
            Err(r.error.into())
        }
        Err(RunError::Internal(e)) => Err(Error::Internal(e)),
    }
}

/// What a hop that passed every rule answers: a token, or "ask the user first".
enum Answer {
    Issued(Value),
    Pending(OAuthError),
}

enum RunError {
    Refused(Refusal),
    Internal(anyhow::Error),
}

impl From<Refusal> for RunError {
    fn from(r: Refusal) -> Self {
        RunError::Refused(r)
    }
}

impl<E: Into<anyhow::Error>> From<E> for RunError {
    fn from(e: E) -> Self {
        RunError::Internal(e.into())
    }
}

async fn run(
    state: &AppState,
    p: &Params,
    caller: Option<Caller>,
    event: &mut SecurityEvent,
) -> Result<Answer, RunError> {
    let started = Instant::now();
    // ---- the request itself ------------------------------------------------------------------
    let param = |k: &str| {
        p.require(k).map_err(|e| Refusal {
            error: e,
            rule: "invalid_request",
            tier: None,
        })
    };
    let subject_token = param("subject_token")?;
    if !matches!(
        param("subject_token_type")?,
        TOKEN_TYPE_ACCESS | TOKEN_TYPE_JWT
    ) {
        return Err(refuse(
            "invalid_request",
            "invalid_request",
            "subject_token_type must be an access token or a JWT",
        )
        .into());
    }
    let actor_token = p.get("actor_token").ok_or_else(|| {
        refuse(
            "invalid_request",
            "invalid_request",
            "actor_token is required: agents act for users, never as them",
        )
    })?;
    if param("actor_token_type")? != TOKEN_TYPE_JWT {
        return Err(refuse(
            "invalid_request",
            "invalid_request",
            "actor_token_type must be urn:ietf:params:oauth:token-type:jwt",
        )
        .into());
    }
    if p.get("requested_token_type")
        .is_some_and(|t| t != TOKEN_TYPE_ACCESS)
    {
        return Err(refuse(
            "invalid_request",
            "invalid_request",
            "only access tokens can be requested",
        )
        .into());
    }
    if p.get("resource").is_some() {
        return Err(refuse(
            "invalid_target",
            "invalid_target",
            "use audience, not resource",
        )
        .into());
    }
    let audience = param("audience")?;
    let requested = rar::parse(param("authorization_details")?).map_err(|e| {
        refuse(
            "invalid_authorization_details",
            "rar_invalid",
            e.to_string(),
        )
    })?;
    event.tool = requested
        .iter()
        .find(|d| !d.is_resource_access())
        .and_then(|d| d.action())
        .map(str::to_owned);
    event.rar_summary = Some(rar::summarize(&requested));
    event.fingerprint = Some(rar::fingerprint(&requested));

    // ---- 1. both tokens verify ---------------------------------------------------------------
    let subject = state.issuer.verify_access(subject_token).map_err(|e| {
        refuse(
            "invalid_request",
            "token_invalid",
            format!("subject_token: {e}"),
        )
    })?;
    event.user = Some(subject.email.clone().unwrap_or_else(|| subject.sub.clone()));
    event.session = subject.sid.clone();
    event.actor_chain = subject.chain_names();
    // One connection for the whole hop, and one statement for everything the store knows about
    // it: the actor's jti consumed, its current status, the session, the audience's kind.
    let mut db = state.pool.get().await?;
    let hop = replay::HopFacts {
        subject_jti: &subject.jti,
        sid: subject.sid.as_deref(),
        audience,
    };
    let (actor, _, facts) = auth::agent_assertion_on(state, &db, actor_token, Some(hop))
        .await
        .map_err(|r| match r.rule {
            // The store failed (Postgres restarting): an error, not a refusal the anomaly rule
            // would count against the user's session.
            "internal" => RunError::Internal(anyhow::anyhow!(r.description)),
            _ => refuse("invalid_request", r.rule, r.description).into(),
        })?;
    if let Some(c) = &caller
        && c.id() != actor.spiffe_id
    {
        return Err(refuse(
            "invalid_client",
            "client_mismatch",
            "the authenticated client is not the actor",
        )
        .into());
    }
    let mut chain = vec![actor.name.clone()];
    chain.extend(subject.chain_names());
    event.actor_chain = chain.clone();

    // ---- 2. the actor is the one the subject token allows ------------------------------------
    match &subject.may_act {
        Some(m) if m.sub == actor.spiffe_id => {}
        Some(m) => {
            return Err(refuse(
                "invalid_request",
                "may_act_mismatch",
                format!(
                    "actor {} is not the party the subject token allows to act ({})",
                    actor.spiffe_id, m.sub
                ),
            )
            .into());
        }
        None => {
            return Err(refuse(
                "invalid_request",
                "may_act_mismatch",
                "the subject token allows no further delegation",
            )
            .into());
        }
    }
    if actor.status != registry::Status::Active {
        return Err(refuse(
            "invalid_request",
            "actor_suspended",
            format!("agent {} is suspended", actor.name),
        )
        .into());
    }
    if !subject.aud.contains(&actor.spiffe_id) {
        return Err(refuse(
            "invalid_request",
            "audience_mismatch",
            "the subject token was not issued to this actor",
        )
        .into());
    }
    let current = subject.act.as_ref().map(|a| short_name(&a.sub));
    if !actor.may_act_for(current) {
        return Err(refuse(
            "invalid_request",
            "actor_not_allowed_for",
            format!(
                "agent {} may not act for {}",
                actor.name,
                current.unwrap_or("a user directly")
            ),
        )
        .into());
    }

    // ---- 3. chain depth and a live session ---------------------------------------------------
    let depth = subject.act.as_ref().map_or(0, Actor::depth) + 1;
    if depth > MAX_CHAIN_DEPTH {
        return Err(refuse(
            "invalid_request",
            "chain_too_deep",
            format!("the actor chain would be {depth} deep; the limit is {MAX_CHAIN_DEPTH}"),
        )
        .into());
    }
    let sid = subject.sid.clone().ok_or_else(|| {
        refuse(
            "invalid_request",
            "token_invalid",
            "subject_token has no session",
        )
    })?;
    if !facts.live {
        return Err(refuse(
            "invalid_request",
            "session_revoked",
            "the subject token's session has ended or the token was revoked",
        )
        .into());
    }

    // ---- 4. the audience ---------------------------------------------------------------------
    if !actor.audiences.iter().any(|a| a == audience) {
        return Err(refuse(
            "invalid_target",
            "audience_not_allowed",
            format!("agent {} may not request tokens for {audience}", actor.name),
        )
        .into());
    }
    let target_agent = facts.target_is_agent;

    // ---- 5. authority only narrows -----------------------------------------------------------
    for d in &requested {
        if !d.is_resource_access() && !subject.rar().is_empty() {
            rar::covered_by_any(subject.rar(), d)
                .map_err(|why| refuse("invalid_authorization_details", "rar_widened", why))?;
        }
        rar::within_ceiling(&actor.ceiling, d)
            .map_err(|why| refuse("invalid_authorization_details", "ceiling_exceeded", why))?;
    }
    if subject.rar().is_empty() && subject.act.is_some() {
        return Err(refuse(
            "invalid_authorization_details",
            "rar_widened",
            "a delegated token without authorization_details cannot be narrowed",
        )
        .into());
    }

    // ---- 6. policy ---------------------------------------------------------------------------
    let acr = subject
        .acr
        .clone()
        .unwrap_or_else(|| ACR_PASSWORD.to_owned());
    let mut tier = 1u8;
    let mut policies = vec![];
    for d in &requested {
        for ctx in policy_contexts(d, target_agent, &actor.name, &chain, depth, &acr) {
            let action = if d.is_resource_access() {
                "read"
            } else {
                d.action().unwrap_or("")
            };
            let decision = state.policy.decide(&subject.sub, action, &d.kind, ctx);
            policies.extend(decision.policies.clone());
            if !decision.allowed {
                return Err(Refusal {
                    error: OAuthError::new(
                        "access_denied",
                        decision.reason.clone().unwrap_or_default(),
                    ),
                    rule: "policy_denied",
                    tier: Some(decision.tier),
                }
                .into());
            }
            tier = tier.max(decision.tier);
        }
    }
    event.tier = Some(tier);

    let now = kit::now_secs();
    let mut claims = AccessClaims {
        iss: state.issuer.url.clone(),
        sub: subject.sub.clone(),
        aud: Audience::one(audience),
        iat: now,
        exp: (now + state.config.delegated_token_ttl.as_secs() as i64).min(subject.exp),
        jti: kit::random_id(16),
        sid: Some(sid.clone()),
        client_id: Some(actor.spiffe_id.clone()),
        scope: None,
        email: subject.email.clone(),
        acr: Some(acr),
        auth_time: subject.auth_time,
        act: Some(Actor::nest(actor.spiffe_id.clone(), subject.act.as_ref())),
        may_act: target_agent.then(|| MayAct {
            sub: audience.to_owned(),
        }),
        authorization_details: Some(requested.clone()),
        approval_id: None,
    };

    // ---- tiers 2 and 3: the user's approval --------------------------------------------------
    if tier >= 2 {
        if tier == 2
            && let Some(approval_id) = approvals::write_grant(&db, &sid).await?
        {
            claims.acr = Some(ACR_PUSH.into());
            claims.approval_id = Some(approval_id.clone());
            event.approval_id = Some(approval_id);
            return issue(state, &claims, event, Outcome::HitlCached, started)
                .await
                .map(Answer::Issued);
        }
        let summary = rar::summarize(&requested);
        let new_approval = approvals::NewApproval {
            user_id: &subject.sub,
            session_id: &sid,
            client_id: &actor.spiffe_id,
            requested_by: &actor.name,
            chain: &chain,
            audience,
            authorization_details: serde_json::to_value(&requested)?,
            fingerprint: &rar::fingerprint(&requested),
            summary: &summary,
            tier,
            pending_token: serde_json::to_value(&claims)?,
            ttl: state.config.approval_ttl,
            poll_interval: state.config.poll_interval,
        };
        if state.config.bench_auto_approve {
            return auto_approve(state, &mut db, &new_approval, claims, event, started)
                .await
                .map(Answer::Issued);
        }
        let (approval, auth_req_id) = approvals::create(&db, &new_approval).await?;
        event.kind = "approval_requested".into();
        event.outcome = Outcome::Pending;
        event.approval_id = Some(approval.id.clone());
        event.reason = Some(format!("tier {tier}: {}", policies.join(", ")));
        state.emit(event.clone().timed(started)).await?;
        let who = event.user.clone().unwrap_or_default();
        return Ok(Answer::Pending(
            OAuthError::new(
                "authorization_pending",
                format!("waiting for {who} to approve on their device: {summary}"),
            )
            .with("auth_req_id", auth_req_id)
            .with("expires_in", state.config.approval_ttl.as_secs())
            .with("interval", state.config.poll_interval.as_secs())
            .with("approval_id", approval.id)
            .with("binding_code", approval.binding_code),
        ));
    }
    issue(state, &claims, event, Outcome::Allowed, started)
        .await
        .map(Answer::Issued)
}

/// Benchmark mode (`IDP_BENCH_AUTO_APPROVE`): the approval the user would have given is
/// recorded as given, loudly. The approval row, its `approval_granted` event and the issuance
/// event all say `auto_approved`, so no audit reader can mistake it for a person's decision.
/// All of it commits in one durable transaction, as a person's instant "yes" would.
async fn auto_approve(
    state: &AppState,
    db: &mut deadpool_postgres::Client,
    new_approval: &approvals::NewApproval<'_>,
    mut claims: AccessClaims,
    event: &mut SecurityEvent,
    started: Instant,
) -> Result<Value, RunError> {
    const AUTO: &str = "auto_approved: IDP_BENCH_AUTO_APPROVE is on; nobody was asked";
    let window = (new_approval.tier == 2).then_some(state.config.write_grant_window);
    let tx = db.transaction().await?;
    let approval_id =
        approvals::create_auto_approved(&tx, new_approval, &claims.jti, window).await?;
    let mut granted = event.clone();
    granted.id = uuid::Uuid::new_v4().to_string();
    granted.kind = "approval_granted".into();
    granted.outcome = Outcome::Approved;
    granted.approval_id = Some(approval_id.clone());
    granted.reason = Some(AUTO.into());
    kit::events::emit(tx.client(), &granted.timed(started)).await?;
    claims.acr = Some(ACR_PUSH.into());
    claims.approval_id = Some(approval_id.clone());
    let token = state.issuer.sign_access(&claims)?;
    event.outcome = Outcome::Approved;
    event.approval_id = Some(approval_id);
    event.jti = Some(claims.jti.clone());
    event.token = Some(state.issuer.decoded(&claims));
    event.reason = Some(AUTO.into());
    kit::events::emit(tx.client(), &event.clone().timed(started)).await?;
    tx.commit().await?;
    Ok(token_response(&token, &claims))
}

/// One Cedar context per policy request: business entries give one; a `vault:path_access` entry
/// gives one per location.
pub fn policy_contexts(
    d: &AuthorizationDetail,
    target_agent: bool,
    actor: &str,
    chain: &[String],
    depth: usize,
    acr: &str,
) -> Vec<Value> {
    let mut base = json!({
        "target": if target_agent { "agent" } else { "resource" },
        "actor": actor,
        "chain": chain,
        "depth": depth as i64,
        "acr": acr,
    });
    if d.is_resource_access() {
        return d
            .locations
            .iter()
            .flatten()
            .map(|l| {
                let mut c = base.clone();
                c["path"] = json!(l);
                c
            })
            .collect();
    }
    if let Some(od) = &d.operation_details {
        for (k, v) in od {
            match k.as_str() {
                "action" => {}
                "amount" => {
                    if let Some(a) = d.amount() {
                        base["amount_cents"] = json!(a.cents);
                        base["currency"] = json!(a.currency());
                    }
                }
                _ => base[k] = v.clone(),
            }
        }
    }
    vec![base]
}

/// Signs the token, records the event, and answers with the RFC 8693 response.
///
/// The event commits with `synchronous_commit = off` ([`kit::events::Commit::Deferred`]):
/// waiting for the disk would be most of the hop's time. What a crash of Postgres or the machine can lose is the
/// idp's record of tokens issued in the last few hundred milliseconds; every use of such a token
/// that changes anything is recorded durably by the party that acts on it (the issuer's audit
/// log and leases, which keep the token itself, and the ledger row naming its `jti`), and the
/// token is signed, so the record can be rebuilt from them. Decisions that involve a person
/// (approvals) stay durable. See `docs/BENCHMARKS.md`.
///
/// It is written by the group writer ([`crate::event_writer`]): the token is answered only once
/// its event is stored and published, but concurrent hops share one statement and one commit.
async fn issue(
    state: &AppState,
    claims: &AccessClaims,
    event: &mut SecurityEvent,
    outcome: Outcome,
    started: Instant,
) -> Result<Value, RunError> {
    let token = state.issuer.sign_access(claims)?;
    event.outcome = outcome;
    event.jti = Some(claims.jti.clone());
    event.token = Some(state.issuer.decoded(claims));
    event.reason = None;
    state
        .issued_events
        .write(event.clone().timed(started))
        .await?;
    Ok(token_response(&token, claims))
}

/// The RFC 8693 §2.2 success body, with the granted `authorization_details` (RFC 9396 §7).
pub fn token_response(token: &str, claims: &AccessClaims) -> Value {
    let mut body = json!({
        "access_token": token,
        "issued_token_type": TOKEN_TYPE_ACCESS,
        "token_type": "Bearer",
        "expires_in": (claims.exp - kit::now_secs()).max(0),
        "authorization_details": claims.authorization_details,
    });
    if let Some(s) = &claims.scope {
        body["scope"] = json!(s);
    }
    body
}
