//! The SCIM 2.0 API (RFC 7643/7644) through which the iam agent administers users and groups.
//!
//! It trusts only delegated tokens, and each only for the one operation it was granted. Every
//! call is checked in this order, and each outcome is one security event (`scim_<action>`)
//! naming the rule that decided it:
//!
//! 1. a bearer token is present (401 `token_missing`), signed by this idp (ES256, our key,
//!    `at+jwt`, unexpired) (401 `token_invalid`), addressed to [`AUDIENCE`] (401
//!    `audience_mismatch`), and live: not revoked, its session not ended (401
//!    `session_revoked`);
//! 2. it is delegated: it carries an `act` chain (403 `not_delegated`) whose current actor is a
//!    registered, active agent allowed the `scim` audience (403 `actor_not_allowed`);
//! 3. the request is well formed (400 `invalidSyntax`, `invalidValue`, `invalidFilter`) and
//!    its target exists (404 `not_found`);
//! 4. an `authorization_details` entry of type `urn:smt:agent:iam` has exactly this
//!    operation's action (403 `not_granted`) and names this target, `email` and, for group
//!    membership, `group` (403 `target_mismatch`). A change no action describes (renaming,
//!    reactivating, removing members) is never delegated (403 `not_delegable`).
//!
//! The allowed event is written before the change is made: a change we could not record is
//! not made.
//!
//! | action | endpoint |
//! |---|---|
//! | `list_users` | `GET /Users`, `GET /Groups`, `GET /Groups/{id}` |
//! | `get_user` | `GET /Users/{id}`; `GET /Users?filter=userName eq "<its email>"` |
//! | `create_user` | `POST /Users` (a granted `display_name` must match too) |
//! | `add_user_to_group` | `PATCH /Groups/{id}` adding members; `POST /Groups` (group = the new name) |
//! | `deactivate_user` | `PATCH /Users/{id}` replacing `active` with false; ends every session |
//! | `revoke_user_sessions` | `DELETE /Users/{id}/sessions` (our extension) |
//! | `delete_user` | `DELETE /Users/{id}` |
//! | `grant_admin_role` | `PATCH /Users/{id}` adding role `admin`; adding members to `admins` |
//!
//! `delete_user` and `grant_admin_role` are tier 4 in the demo policy and outside the iam
//! agent's ceiling, so no such token is ever minted; the endpoints still check the grant.

use std::time::Instant;

use axum::{
    body::Bytes,
    extract::{Path, RawQuery, State, rejection::BytesRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use kit::{
    claims::{AccessClaims, chain_display},
    events::{Outcome, SecurityEvent},
    guard::granted,
    rar::{self, AuthorizationDetail, IAM},
};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::{Value, json};

use crate::{
    error::{Error, SCIM_MEDIA_TYPE, ScimError},
    registry,
    state::AppState,
    store::{
        replay,
        scim::{self as store, ADMINS, ScimGroup, ScimUser},
        sessions,
    },
};

/// The audience of tokens for this API (what the iam agent asks the token endpoint for).
pub const AUDIENCE: &str = "scim";

const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Largest page a list returns (`filter.maxResults` in the service provider config).
const MAX_RESULTS: i64 = 200;

// ---- refusals and the one event per call ---------------------------------------------------

/// A refused call: the SCIM error the client sees and the rule its security event names.
struct Refusal {
    error: ScimError,
    rule: &'static str,
}

fn refuse(rule: &'static str, error: ScimError) -> Refusal {
    Refusal { error, rule }
}

/// A malformed request; the rule is the `scimType`.
fn invalid(scim_type: &'static str, detail: impl Into<String>) -> Refusal {
    refuse(scim_type, ScimError::bad_request(scim_type, detail))
}

/// A token that is missing, forged, expired, revoked or not for this API.
fn unauthorized(rule: &'static str, detail: impl Into<String>) -> Refusal {
    refuse(rule, ScimError::invalid_token(detail))
}

/// A good token that may not do this.
fn forbidden(rule: &'static str, detail: impl Into<String>) -> Refusal {
    refuse(rule, ScimError::forbidden(detail))
}

fn conflict(detail: String) -> Refusal {
    refuse(
        "uniqueness",
        ScimError::new(StatusCode::CONFLICT, Some("uniqueness"), detail),
    )
}

fn not_delegable(what: impl std::fmt::Display) -> Refusal {
    refuse(
        "not_delegable",
        ScimError::forbidden(format!(
            "{what} is not an operation an agent can be granted"
        )),
    )
}

enum Failure {
    Refused(Refusal),
    Internal(anyhow::Error),
}

impl From<Refusal> for Failure {
    fn from(r: Refusal) -> Self {
        Failure::Refused(r)
    }
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Internal(e.into())
    }
}

/// One SCIM call: the security event it writes, filled in as the checks learn who is asking
/// and for what.
struct Call<'a> {
    state: &'a AppState,
    event: SecurityEvent,
    started: Instant,
    recorded: bool,
}

impl<'a> Call<'a> {
    fn new(state: &'a AppState, action: &'static str) -> Self {
        let mut call = Self {
            state,
            event: state.event("scim", Outcome::Denied),
            started: Instant::now(),
            recorded: false,
        };
        call.set_action(action);
        call
    }

    fn set_action(&mut self, action: &'static str) {
        self.event.kind = format!("scim_{action}");
        self.event.tool = Some(action.to_owned());
    }

    fn token(&mut self, c: &AccessClaims) {
        self.event.user = Some(c.email.clone().unwrap_or_else(|| c.sub.clone()));
        self.event.session = c.sid.clone();
        self.event.actor_chain = c.chain_names();
        self.event.jti = Some(c.jti.clone());
        self.event.approval_id = c.approval_id.clone();
        if !c.rar().is_empty() {
            self.event.fingerprint = Some(rar::fingerprint(c.rar()));
        }
    }

    /// Refuses unless the token was granted `action` at all; checked before a target is
    /// looked up, so a token without it learns nothing about what exists.
    fn require(&mut self, claims: &AccessClaims, action: &'static str) -> Result<(), Refusal> {
        self.set_action(action);
        granted(claims, IAM, action)
            .map(|_| ())
            .ok_or_else(|| not_granted(action))
    }

    /// Every operation must be granted by an entry with its action naming its target. Returns
    /// the entry granting the first.
    fn authorize<'c>(
        &mut self,
        claims: &'c AccessClaims,
        ops: &[Op],
    ) -> Result<&'c AuthorizationDetail, Refusal> {
        let Some(first) = ops.first() else {
            return Err(invalid("invalidValue", "the request names no operation"));
        };
        self.set_action(first.action);
        if self.event.rar_summary.is_none() {
            let summaries: Vec<String> = ops.iter().map(Op::summary).collect();
            self.event.rar_summary = Some(summaries.join("; "));
        }
        let mut granting = None;
        for op in ops {
            granted(claims, IAM, op.action).ok_or_else(|| not_granted(op.action))?;
            let entry = claims
                .rar()
                .iter()
                .filter(|d| d.kind == IAM && d.action() == Some(op.action))
                .find(|d| op.names_same_target(d))
                .ok_or_else(|| {
                    let other = if op.group.is_some() {
                        "user or group"
                    } else {
                        "user"
                    };
                    let detail = format!("this token is granted {} for another {other}", op.action);
                    forbidden("target_mismatch", detail)
                })?;
            granting.get_or_insert(entry);
        }
        granting.ok_or_else(|| not_granted(first.action))
    }

    /// Records the allowed decision; called before the change is made.
    async fn allow(&mut self) -> anyhow::Result<()> {
        self.event.outcome = Outcome::Allowed;
        self.event.reason = None;
        self.state
            .emit(self.event.clone().timed(self.started))
            .await?;
        self.recorded = true;
        Ok(())
    }

    /// Writes the call's event (unless the allowed one is already written) and answers.
    async fn finish(mut self, result: Result<Response, Failure>) -> Response {
        match result {
            Ok(resp) => {
                if !self.recorded
                    && let Err(e) = self.allow().await
                {
                    tracing::error!(error = %format!("{e:#}"), "could not record a security event");
                    return Error::Scim(ScimError::internal()).into_response();
                }
                resp
            }
            Err(Failure::Refused(r)) => {
                self.event.outcome = Outcome::Denied;
                self.event.reason = Some(format!("{}: {}", r.rule, r.error.detail));
                self.state
                    .emit_best_effort(self.event.timed(self.started))
                    .await;
                Error::Scim(r.error).into_response()
            }
            Err(Failure::Internal(e)) => {
                tracing::error!(error = %format!("{e:#}"), "internal error");
                self.event.outcome = Outcome::Error;
                self.event.reason = Some("internal error".into());
                self.state
                    .emit_best_effort(self.event.timed(self.started))
                    .await;
                Error::Scim(ScimError::internal()).into_response()
            }
        }
    }
}

fn not_granted(action: &str) -> Refusal {
    forbidden("not_granted", format!("this token is not granted {action}"))
}

/// An operation in the terms of a grant: its action and the target fields an entry must name.
#[derive(Debug, Clone)]
struct Op {
    action: &'static str,
    email: Option<String>,
    group: Option<String>,
}

impl Op {
    fn any(action: &'static str) -> Self {
        Self {
            action,
            email: None,
            group: None,
        }
    }

    fn user(action: &'static str, email: &str) -> Self {
        Self {
            email: Some(email.to_owned()),
            ..Self::any(action)
        }
    }

    /// Adding `email` (any member, when `None`) to `group`. Membership of `admins` is the admin
    /// role, so it takes `grant_admin_role`, never `add_user_to_group`.
    fn membership(group: &str, email: Option<&str>) -> Self {
        if group == ADMINS {
            Self {
                email: email.map(str::to_owned),
                ..Self::any("grant_admin_role")
            }
        } else {
            Self {
                action: "add_user_to_group",
                email: email.map(str::to_owned),
                group: Some(group.to_owned()),
            }
        }
    }

    fn names_same_target(&self, d: &AuthorizationDetail) -> bool {
        let same = |field: &str, wanted: &Option<String>| match wanted {
            None => true,
            Some(w) => d.field(field).is_some_and(|g| g.eq_ignore_ascii_case(w)),
        };
        same("email", &self.email) && same("group", &self.group)
    }

    /// The operation in plain words, as the approval on the phone said it.
    fn summary(&self) -> String {
        let mut fields = vec![];
        if let Some(e) = &self.email {
            fields.push(("email", json!(e)));
        }
        if let Some(g) = &self.group {
            fields.push(("group", json!(g)));
        }
        AuthorizationDetail::operation(IAM, self.action, fields).summary()
    }
}

// ---- the token -----------------------------------------------------------------------------

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    Some(token.trim()).filter(|t| scheme.eq_ignore_ascii_case("bearer") && !t.is_empty())
}

/// Rules 1 and 2: a live delegated token of ours for this API, presented by a registered agent.
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    call: &mut Call<'_>,
) -> Result<AccessClaims, Failure> {
    let token = bearer(headers).ok_or_else(|| {
        refuse(
            "token_missing",
            ScimError::token_missing("a bearer token is required"),
        )
    })?;
    let claims = state
        .issuer
        .verify_access(token)
        .map_err(|e| unauthorized("token_invalid", format!("the token is not valid: {e}")))?;
    call.token(&claims);
    if !claims.aud.contains(AUDIENCE) {
        return Err(unauthorized("audience_mismatch", "the token is not for the SCIM API").into());
    }
    let db = state.pool.get().await?;
    if !replay::token_is_live(&db, &claims.jti, claims.sid.as_deref()).await? {
        return Err(unauthorized(
            "session_revoked",
            "the token was revoked or its session has ended",
        )
        .into());
    }
    let Some(act) = &claims.act else {
        return Err(forbidden(
            "not_delegated",
            "the SCIM API takes only delegated tokens: an agent acting for the user",
        )
        .into());
    };
    let agent = registry::by_spiffe_id(&db, &act.sub).await?;
    if !agent.is_some_and(|a| {
        a.status == registry::Status::Active && a.audiences.iter().any(|x| x == AUDIENCE)
    }) {
        return Err(forbidden(
            "actor_not_allowed",
            format!(
                "{} is not an active agent allowed to call the SCIM API",
                act.sub
            ),
        )
        .into());
    }
    Ok(claims)
}

// ---- request bodies and queries ------------------------------------------------------------

/// Parses a JSON body: `application/scim+json` (or `application/json`), within the size limit.
/// Broken JSON is `invalidSyntax`; well-formed JSON of the wrong shape is `invalidValue`.
fn parse_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, Refusal> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default();
        let essence = ct.split(';').next().unwrap_or_default().trim();
        if !essence.eq_ignore_ascii_case(SCIM_MEDIA_TYPE)
            && !essence.eq_ignore_ascii_case("application/json")
        {
            return Err(refuse(
                "invalidSyntax",
                ScimError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    None,
                    "send the body as application/scim+json",
                ),
            ));
        }
    }
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            refuse(
                "tooLarge",
                ScimError::new(StatusCode::PAYLOAD_TOO_LARGE, None, "the body is too large"),
            )
        } else {
            invalid("invalidSyntax", r.body_text())
        }
    })?;
    serde_json::from_slice(&body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => invalid("invalidValue", e.to_string()),
        _ => invalid("invalidSyntax", e.to_string()),
    })
}

fn require_schema(schemas: &[String], urn: &str) -> Result<(), Refusal> {
    if schemas.iter().any(|s| s == urn) {
        Ok(())
    } else {
        Err(invalid(
            "invalidValue",
            format!("schemas must include {urn}"),
        ))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListQuery {
    filter: Option<String>,
    start_index: Option<i64>,
    count: Option<i64>,
}

impl ListQuery {
    fn parse(raw: Option<&str>) -> Result<Self, Refusal> {
        serde_urlencoded::from_str(raw.unwrap_or_default())
            .map_err(|e| invalid("invalidValue", format!("query: {e}")))
    }

    /// RFC 7644 §3.4.2.4: a `startIndex` below 1 means 1, a negative `count` means 0.
    fn start(&self) -> i64 {
        self.start_index.unwrap_or(1).max(1)
    }

    fn offset_limit(&self) -> (i64, i64) {
        (
            self.start() - 1,
            self.count.unwrap_or(MAX_RESULTS).clamp(0, MAX_RESULTS),
        )
    }

    /// The value of the one filter supported: `<attribute> eq "<value>"`.
    fn eq_filter(&self, attribute: &str) -> Result<Option<String>, Refusal> {
        let Some(filter) = &self.filter else {
            return Ok(None);
        };
        let bad = || {
            invalid(
                "invalidFilter",
                format!(r#"the only filter supported is {attribute} eq "<value>""#),
            )
        };
        let (attr, rest) = filter.trim().split_once(' ').ok_or_else(bad)?;
        let (op, value) = rest.trim_start().split_once(' ').ok_or_else(bad)?;
        if !attr.eq_ignore_ascii_case(attribute) || !op.eq_ignore_ascii_case("eq") {
            return Err(bad());
        }
        serde_json::from_str::<String>(value.trim())
            .map(Some)
            .map_err(|_| bad())
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a SCIM User object")]
struct UserBody {
    #[serde(default)]
    schemas: Vec<String>,
    user_name: String,
    #[serde(default)]
    name: Option<NameBody>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    emails: Vec<ValueBody>,
    #[serde(default)]
    active: Option<bool>,
    #[serde(default)]
    password: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a name object")]
struct NameBody {
    #[serde(default)]
    formatted: Option<String>,
    #[serde(default)]
    given_name: Option<String>,
    #[serde(default)]
    family_name: Option<String>,
}

/// A multi-valued attribute's entry (`emails`, `members`): only `value` matters here.
#[derive(Debug, Deserialize)]
#[serde(expecting = "an object with a value")]
struct ValueBody {
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a SCIM Group object")]
struct GroupBody {
    #[serde(default)]
    schemas: Vec<String>,
    display_name: String,
    #[serde(default)]
    members: Vec<ValueBody>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "a SCIM PatchOp message")]
struct PatchBody {
    #[serde(default)]
    schemas: Vec<String>,
    #[serde(rename = "Operations", alias = "operations")]
    operations: Vec<PatchOperation>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "a patch operation with op, path and value")]
struct PatchOperation {
    op: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    value: Option<Value>,
}

impl PatchBody {
    fn parse(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Self, Refusal> {
        let patch: PatchBody = parse_body(headers, body)?;
        require_schema(&patch.schemas, PATCH_SCHEMA)?;
        if patch.operations.is_empty() {
            return Err(invalid("invalidValue", "Operations must not be empty"));
        }
        Ok(patch)
    }
}

impl PatchOperation {
    /// `add`, `replace` or `remove`, lower-cased (some clients send `Replace`).
    fn kind(&self) -> Result<String, Refusal> {
        let op = self.op.to_ascii_lowercase();
        if matches!(op.as_str(), "add" | "replace" | "remove") {
            Ok(op)
        } else {
            Err(invalid(
                "invalidSyntax",
                "op must be add, replace or remove",
            ))
        }
    }

    /// The changes as `(attribute, value)` pairs: the path's, or each member of a path-less
    /// value object.
    fn changes(&self) -> Result<Vec<(String, &Value)>, Refusal> {
        let value = self
            .value
            .as_ref()
            .ok_or_else(|| invalid("invalidValue", "add and replace need a value"))?;
        match &self.path {
            Some(p) => Ok(vec![(p.to_ascii_lowercase(), value)]),
            None => value
                .as_object()
                .map(|o| o.iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect())
                .ok_or_else(|| invalid("invalidValue", "without a path, value must be an object")),
        }
    }
}

/// Is this email one a grant can name? (The same rule the token endpoint applies.)
fn valid_email(email: &str) -> bool {
    AuthorizationDetail::operation(IAM, "get_user", [("email", json!(email))])
        .validated()
        .is_ok()
}

/// Is this group name one a grant can name? Groups are named the way grants name them.
fn valid_group_name(name: &str) -> bool {
    AuthorizationDetail::operation(
        IAM,
        "add_user_to_group",
        [("email", json!("any@example.com")), ("group", json!(name))],
    )
    .validated()
    .is_ok()
}

fn valid_text(s: &str) -> bool {
    !s.trim().is_empty() && s.chars().count() <= 200 && !s.chars().any(char::is_control)
}

// ---- responses -----------------------------------------------------------------------------

fn scim_json(status: StatusCode, body: Value) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(SCIM_MEDIA_TYPE),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// 201 with `Location` (RFC 7644 §3.3).
fn created(location: &str, body: Value) -> Result<Response, Failure> {
    let mut r = scim_json(StatusCode::CREATED, body);
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_str(location)?);
    Ok(r)
}

fn base(state: &AppState) -> String {
    format!("{}/scim/v2", state.issuer.url)
}

fn user_json(base: &str, u: &ScimUser) -> Value {
    let mut name = json!({"formatted": u.display_name});
    if let Some(g) = &u.given_name {
        name["givenName"] = json!(g);
    }
    if let Some(f) = &u.family_name {
        name["familyName"] = json!(f);
    }
    let groups: Vec<Value> = u
        .groups
        .iter()
        .map(|g| json!({"value": g.id, "display": g.name, "$ref": format!("{base}/Groups/{}", g.id), "type": "direct"}))
        .collect();
    let mut v = json!({
        "schemas": [USER_SCHEMA],
        "id": u.id,
        "userName": u.email,
        "name": name,
        "displayName": u.display_name,
        "emails": [{"value": u.email, "type": "work", "primary": true}],
        "active": u.active,
        "groups": groups,
        "meta": {
            "resourceType": "User",
            "created": u.created,
            "lastModified": u.last_modified,
            "location": format!("{base}/Users/{}", u.id),
        },
    });
    if u.is_admin() {
        v["roles"] = json!([{"value": "admin", "display": "Administrator"}]);
    }
    v
}

fn group_json(base: &str, g: &ScimGroup) -> Value {
    let members: Vec<Value> = g
        .members
        .iter()
        .map(|m| json!({"value": m.id, "display": m.name, "$ref": format!("{base}/Users/{}", m.id), "type": "User"}))
        .collect();
    json!({
        "schemas": [GROUP_SCHEMA],
        "id": g.id,
        "displayName": g.name,
        "members": members,
        "meta": {
            "resourceType": "Group",
            "created": g.created,
            "lastModified": g.last_modified,
            "location": format!("{base}/Groups/{}", g.id),
        },
    })
}

fn list_json(start: i64, total: i64, resources: Vec<Value>) -> Response {
    scim_json(
        StatusCode::OK,
        json!({
            "schemas": [LIST_SCHEMA],
            "totalResults": total,
            "startIndex": start,
            "itemsPerPage": resources.len(),
            "Resources": resources,
        }),
    )
}

async fn find_user(db: &tokio_postgres::Client, id: &str) -> Result<ScimUser, Failure> {
    store::get_user(db, id)
        .await?
        .ok_or_else(|| refuse("not_found", ScimError::not_found(format!("no user {id}"))).into())
}

async fn find_group(db: &tokio_postgres::Client, id: &str) -> Result<ScimGroup, Failure> {
    store::get_group(db, id)
        .await?
        .ok_or_else(|| refuse("not_found", ScimError::not_found(format!("no group {id}"))).into())
}

/// Ends every session of `user` that is still open, one `session_revoked` event each (what the
/// signals transmitter and the UI listen for). Returns how many were ended.
async fn end_sessions(
    state: &AppState,
    db: &mut tokio_postgres::Client,
    user: &ScimUser,
    claims: &AccessClaims,
    action: &str,
) -> anyhow::Result<usize> {
    let reason = format!("scim {action} by {}", chain_display(&claims.chain_names()));
    let mut ended = 0;
    for id in store::unrevoked_sessions(db, &user.id).await? {
        if sessions::revoke(db, &id, &reason).await? {
            ended += 1;
            let mut event = state.event("session_revoked", Outcome::Info);
            event.user = Some(user.email.clone());
            event.session = Some(id);
            event.reason = Some(reason.clone());
            event.jti = Some(claims.jti.clone());
            state.emit_best_effort(event).await;
        }
    }
    Ok(ended)
}

// ---- handlers ------------------------------------------------------------------------------

/// `GET /scim/v2/ServiceProviderConfig`: what this server supports; no token needed.
pub async fn service_provider_config(State(state): State<AppState>) -> Response {
    let base = base(&state);
    scim_json(
        StatusCode::OK,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "patch": {"supported": true},
            "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": true, "maxResults": MAX_RESULTS},
            "changePassword": {"supported": false},
            "sort": {"supported": false},
            "etag": {"supported": false},
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "Delegated OAuth bearer token",
                "description": "A token from this idp for audience scim with an act chain and authorization_details of type urn:smt:agent:iam naming exactly the operation and its target",
                "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
                "primary": true,
            }],
            "meta": {
                "resourceType": "ServiceProviderConfig",
                "location": format!("{base}/ServiceProviderConfig"),
            },
        }),
    )
}

/// Any other path under `/scim/v2`.
pub async fn unknown_endpoint() -> Error {
    ScimError::not_found("no such SCIM endpoint").into()
}

/// A SCIM path with a method it does not take (`PUT`: every change is one granted operation,
/// made with `PATCH`).
pub async fn method_not_allowed() -> Error {
    ScimError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        None,
        "this method is not supported here",
    )
    .into()
}

/// `GET /Users`: `list_users`, or `get_user` for a `userName eq` lookup of that user.
pub async fn list_users(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let mut call = Call::new(&state, "list_users");
    let r = async {
        let claims = authenticate(&state, &headers, &mut call).await?;
        let q = ListQuery::parse(query.as_deref())?;
        let email = q.eq_filter("userName")?.map(|e| e.to_ascii_lowercase());
        // Looking one user up by userName reads only that user: its get_user grant suffices.
        let op = match &email {
            Some(e) if granted(&claims, IAM, "list_users").is_none() => Op::user("get_user", e),
            _ => Op::any("list_users"),
        };
        call.authorize(&claims, &[op])?;
        let db = state.pool.get().await?;
        let (offset, limit) = q.offset_limit();
        let page = store::list_users(&db, email.as_deref(), offset, limit).await?;
        let base = base(&state);
        Ok(list_json(
            q.start(),
            page.total,
            page.items.iter().map(|u| user_json(&base, u)).collect(),
        ))
    }
    .await;
    call.finish(r).await
}

/// `GET /Users/{id}`: `get_user` for that user's email.
pub async fn get_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut call = Call::new(&state, "get_user");
    let r = async {
        let claims = authenticate(&state, &headers, &mut call).await?;
        call.require(&claims, "get_user")?;
        let db = state.pool.get().await?;
        let user = find_user(&db, &id).await?;
        call.authorize(&claims, &[Op::user("get_user", &user.email)])?;
        Ok(scim_json(StatusCode::OK, user_json(&base(&state), &user)))
    }
    .await;
    call.finish(r).await
}

/// `POST /Users`: `create_user` for `userName`. The user gets no password.
pub async fn create_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut call = Call::new(&state, "create_user");
    let r = async {
        let claims = authenticate(&state, &headers, &mut call).await?;
        let body: UserBody = parse_body(&headers, body)?;
        require_schema(&body.schemas, USER_SCHEMA)?;
        let email = body.user_name.trim().to_ascii_lowercase();
        if !valid_email(&email) {
            return Err(invalid("invalidValue", "userName must be an email address").into());
        }
        if body
            .emails
            .iter()
            .any(|e| !e.value.trim().eq_ignore_ascii_case(&email))
        {
            return Err(invalid(
                "invalidValue",
                "each user has one email, its userName: emails may only repeat it",
            )
            .into());
        }
        if body.password.is_some() {
            return Err(invalid(
                "invalidValue",
                "passwords are never set over SCIM: agents do not handle credentials",
            )
            .into());
        }
        let name = body.name.as_ref();
        let given = name.and_then(|n| n.given_name.as_deref());
        let family = name.and_then(|n| n.family_name.as_deref());
        let joined = [given, family]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let display_name = body
            .display_name
            .clone()
            .or_else(|| name.and_then(|n| n.formatted.clone()))
            .or_else(|| (!joined.is_empty()).then_some(joined))
            .unwrap_or_else(|| email.clone());
        if ![Some(display_name.as_str()), given, family]
            .into_iter()
            .flatten()
            .all(valid_text)
        {
            return Err(invalid(
                "invalidValue",
                "names must be 1 to 200 printable characters",
            )
            .into());
        }
        let entry = call.authorize(&claims, &[Op::user("create_user", &email)])?;
        if entry
            .field("display_name")
            .is_some_and(|granted| granted != display_name)
        {
            let detail = "this token is granted create_user with another display name";
            return Err(forbidden("target_mismatch", detail).into());
        }
        let db = state.pool.get().await?;
        let exists = || conflict(format!("user {email} exists"));
        if store::list_users(&db, Some(&email), 0, 1).await?.total > 0 {
            return Err(exists().into());
        }
        call.allow().await?;
        let new = store::NewUser {
            email: &email,
            display_name: &display_name,
            given_name: given,
            family_name: family,
            active: body.active.unwrap_or(true),
        };
        let Some(user) = store::create_user(&db, &new).await? else {
            return Err(exists().into());
        };
        let base = base(&state);
        created(
            &format!("{base}/Users/{}", user.id),
            user_json(&base, &user),
        )
    }
    .await;
    call.finish(r).await
}

/// What a `PATCH /Users/{id}` can do; each is one granted action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UserChange {
    Deactivate,
    GrantAdmin,
}

impl UserChange {
    fn action(self) -> &'static str {
        match self {
            UserChange::Deactivate => "deactivate_user",
            UserChange::GrantAdmin => "grant_admin_role",
        }
    }

    /// The one change a PATCH makes: one request, one granted operation.
    fn of(patch: &PatchBody) -> Result<Self, Refusal> {
        let mut found: Option<Self> = None;
        for op in &patch.operations {
            if op.kind()? == "remove" {
                return Err(not_delegable(format!(
                    "removing {}",
                    op.path.as_deref().unwrap_or("attributes")
                )));
            }
            for (attribute, value) in op.changes()? {
                let change = Self::of_attribute(&attribute, value)?;
                if found.is_some_and(|f| f != change) {
                    return Err(invalid(
                        "invalidValue",
                        "one PATCH makes one change: deactivate the user or grant the admin role",
                    ));
                }
                found = Some(change);
            }
        }
        found.ok_or_else(|| invalid("invalidValue", "the PATCH changes nothing"))
    }

    fn of_attribute(attribute: &str, value: &Value) -> Result<Self, Refusal> {
        match attribute {
            "active" => {
                let active = match value {
                    Value::Bool(b) => *b,
                    // Some provisioning clients send booleans as strings.
                    Value::String(s) if s.eq_ignore_ascii_case("false") => false,
                    Value::String(s) if s.eq_ignore_ascii_case("true") => true,
                    _ => return Err(invalid("invalidValue", "active must be true or false")),
                };
                if active {
                    Err(not_delegable("reactivating a user"))
                } else {
                    Ok(UserChange::Deactivate)
                }
            }
            "roles" => {
                let roles: Vec<&str> = match value {
                    Value::Array(items) => items
                        .iter()
                        .map(|r| r.get("value").unwrap_or(r).as_str())
                        .collect::<Option<_>>()
                        .ok_or_else(|| {
                            invalid("invalidValue", "roles must be [{\"value\": \"admin\"}]")
                        })?,
                    _ => {
                        return Err(invalid(
                            "invalidValue",
                            "roles must be [{\"value\": \"admin\"}]",
                        ));
                    }
                };
                if roles.is_empty() {
                    return Err(not_delegable("removing roles"));
                }
                if roles.iter().any(|r| !r.eq_ignore_ascii_case("admin")) {
                    return Err(invalid("invalidValue", "the only role is admin"));
                }
                Ok(UserChange::GrantAdmin)
            }
            "groups" => Err(refuse(
                "mutability",
                ScimError::bad_request(
                    "mutability",
                    "groups is read-only: PATCH the group instead",
                ),
            )),
            other => Err(not_delegable(format!("changing {other}"))),
        }
    }
}

/// `PATCH /Users/{id}`: `replace active false` is `deactivate_user` (and ends every session);
/// adding the role `admin` is `grant_admin_role`.
pub async fn patch_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut call = Call::new(&state, "deactivate_user");
    let r = async {
        let claims = authenticate(&state, &headers, &mut call).await?;
        let patch = PatchBody::parse(&headers, body)?;
        let change = UserChange::of(&patch)?;
        call.require(&claims, change.action())?;
        let mut db = state.pool.get().await?;
        let user = find_user(&db, &id).await?;
        call.authorize(&claims, &[Op::user(change.action(), &user.email)])?;
        call.allow().await?;
        match change {
            UserChange::Deactivate => {
                // Inactive first, so no new sign-in can start while the sessions end.
                store::set_active(&db, &user.id, false).await?;
                end_sessions(&state, &mut db, &user, &claims, change.action()).await?;
            }
            UserChange::GrantAdmin => {
                let admins = store::find_group_by_name(&db, ADMINS)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("the admins group is missing"))?;
                store::add_members(&mut db, &admins.id, std::slice::from_ref(&user.id)).await?;
            }
        }
        let user = find_user(&db, &id).await?;
        Ok(scim_json(StatusCode::OK, user_json(&base(&state), &user)))
    }
    .await;
    call.finish(r).await
}

/// `DELETE /Users/{id}`: `delete_user`. Sessions end first (with their events), then the user
/// and everything hanging off them is removed.
pub async fn delete_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut call = Call::new(&state, "delete_user");
    let r = async {
        let claims = authenticate(&state, &headers, &mut call).await?;
        call.require(&claims, "delete_user")?;
        let mut db = state.pool.get().await?;
        let user = find_user(&db, &id).await?;
        call.authorize(&claims, &[Op::user("delete_user", &user.email)])?;
        call.allow().await?;
        end_sessions(&state, &mut db, &user, &claims, "delete_user").await?;
        store::delete_user(&mut db, &user.id).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }
    .await;
    call.finish(r).await
}

/// `DELETE /Users/{id}/sessions` (our extension): `revoke_user_sessions`. The user stays
/// active and may sign in again.
pub async fn revoke_user_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut call = Call::new(&state, "revoke_user_sessions");
    let r = async {
        let claims = authenticate(&state, &headers, &mut call).await?;
        call.require(&claims, "revoke_user_sessions")?;
        let mut db = state.pool.get().await?;
        let user = find_user(&db, &id).await?;
        call.authorize(&claims, &[Op::user("revoke_user_sessions", &user.email)])?;
        call.allow().await?;
        let ended = end_sessions(&state, &mut db, &user, &claims, "revoke_user_sessions").await?;
        Ok(scim_json(
            StatusCode::OK,
            json!({"id": user.id, "userName": user.email, "revokedSessions": ended}),
        ))
    }
    .await;
    call.finish(r).await
}

/// `GET /Groups`: `list_users` (who is in which group is a read of users).
pub async fn list_groups(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let mut call = Call::new(&state, "list_users");
    let r = async {
        let claims = authenticate(&state, &headers, &mut call).await?;
        let q = ListQuery::parse(query.as_deref())?;
        let name = q.eq_filter("displayName")?;
        call.authorize(&claims, &[Op::any("list_users")])?;
        let db = state.pool.get().await?;
        let (offset, limit) = q.offset_limit();
        let page = store::list_groups(&db, name.as_deref(), offset, limit).await?;
        let base = base(&state);
        Ok(list_json(
            q.start(),
            page.total,
            page.items.iter().map(|g| group_json(&base, g)).collect(),
        ))
    }
    .await;
    call.finish(r).await
}

/// `GET /Groups/{id}`: `list_users`.
pub async fn get_group(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut call = Call::new(&state, "list_users");
    let r = async {
        let claims = authenticate(&state, &headers, &mut call).await?;
        call.authorize(&claims, &[Op::any("list_users")])?;
        let db = state.pool.get().await?;
        let group = find_group(&db, &id).await?;
        Ok(scim_json(StatusCode::OK, group_json(&base(&state), &group)))
    }
    .await;
    call.finish(r).await
}

/// The users `members` name, by id; an unknown id is the request's fault.
async fn members(
    db: &tokio_postgres::Client,
    members: &[ValueBody],
) -> Result<Vec<ScimUser>, Failure> {
    let mut users: Vec<ScimUser> = vec![];
    for m in members {
        let user = store::get_user(db, &m.value)
            .await?
            .ok_or_else(|| invalid("invalidValue", format!("no user {}", m.value)))?;
        if !users.iter().any(|u| u.id == user.id) {
            users.push(user);
        }
    }
    Ok(users)
}

fn membership_ops(group: &str, users: &[ScimUser]) -> Vec<Op> {
    if users.is_empty() {
        return vec![Op::membership(group, None)];
    }
    users
        .iter()
        .map(|u| Op::membership(group, Some(&u.email)))
        .collect()
}

/// `POST /Groups`: `add_user_to_group` naming the new group (and, for each first member, that
/// member's email). Names follow the grant's rule: lower-case letters, digits, `_`, `-`.
pub async fn create_group(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut call = Call::new(&state, "add_user_to_group");
    let r = async {
        let claims = authenticate(&state, &headers, &mut call).await?;
        let body: GroupBody = parse_body(&headers, body)?;
        require_schema(&body.schemas, GROUP_SCHEMA)?;
        let name = body.display_name.trim();
        if !valid_group_name(name) {
            return Err(invalid(
                "invalidValue",
                "displayName must be 1 to 32 lower-case letters, digits, _ or -, starting with a letter",
            )
            .into());
        }
        let mut db = state.pool.get().await?;
        let users = members(&db, &body.members).await?;
        call.event.rar_summary = Some(format!("Create group {name}"));
        call.authorize(&claims, &membership_ops(name, &users))?;
        let exists = || conflict(format!("group {name} exists"));
        if store::find_group_by_name(&db, name).await?.is_some() {
            return Err(exists().into());
        }
        call.allow().await?;
        let ids: Vec<String> = users.into_iter().map(|u| u.id).collect();
        let Some(group) = store::create_group(&mut db, name, &ids).await? else {
            return Err(exists().into());
        };
        let base = base(&state);
        created(&format!("{base}/Groups/{}", group.id), group_json(&base, &group))
    }
    .await;
    call.finish(r).await
}

/// `PATCH /Groups/{id}` adding `members`: `add_user_to_group` for each member's email and the
/// group's name (`grant_admin_role` for `admins`). Removing members or renaming is not delegated.
pub async fn patch_group(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut call = Call::new(&state, "add_user_to_group");
    let r = async {
        let claims = authenticate(&state, &headers, &mut call).await?;
        let patch = PatchBody::parse(&headers, body)?;
        let mut added: Vec<ValueBody> = vec![];
        for op in &patch.operations {
            if op.kind()? != "add" {
                return Err(not_delegable("removing or replacing group members").into());
            }
            for (attribute, value) in op.changes()? {
                if attribute != "members" {
                    return Err(not_delegable(format!("changing a group's {attribute}")).into());
                }
                let more: Vec<ValueBody> = serde_json::from_value(value.clone()).map_err(|_| {
                    invalid(
                        "invalidValue",
                        "members must be [{\"value\": \"<user id>\"}]",
                    )
                })?;
                added.extend(more);
            }
        }
        let mut db = state.pool.get().await?;
        let group = find_group(&db, &id).await?;
        let users = members(&db, &added).await?;
        if users.is_empty() {
            return Err(invalid("invalidValue", "members must name at least one user").into());
        }
        call.authorize(&claims, &membership_ops(&group.name, &users))?;
        call.allow().await?;
        let ids: Vec<String> = users.into_iter().map(|u| u.id).collect();
        store::add_members(&mut db, &group.id, &ids).await?;
        let group = find_group(&db, &id).await?;
        Ok(scim_json(StatusCode::OK, group_json(&base(&state), &group)))
    }
    .await;
    call.finish(r).await
}
