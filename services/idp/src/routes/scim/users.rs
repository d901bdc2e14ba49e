//! The SCIM `/Users` endpoints: list, read, create, deactivate or make admin, delete, and end
//! a user's sessions.

use axum::{
    body::Bytes,
    extract::{Path, RawQuery, State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use kit::{
    claims::{AccessClaims, chain_display},
    events::Outcome,
    rar::{AuthorizationDetail, IAM},
};
use serde_json::{Value, json};

use super::{
    access::{Call, Op, authenticate},
    refusal::{Failure, Refusal, conflict, forbidden, invalid, not_delegable, refuse},
    wire::{
        ListQuery, PatchBody, USER_SCHEMA, UserBody, base, created, list_json, parse_body,
        require_schema, scim_json, user_json,
    },
};
use crate::{
    error::ScimError,
    state::AppState,
    store::{
        outbox::{self, RevokedBy},
        scim::{self as store, ADMINS, ScimUser},
        sessions,
    },
};

/// Is this email one a grant can name? (The same rule the token endpoint applies.)
fn valid_email(email: &str) -> bool {
    AuthorizationDetail::operation(IAM, "get_user", [("email", json!(email))])
        .validated()
        .is_ok()
}

fn valid_text(s: &str) -> bool {
    !s.trim().is_empty() && s.chars().count() <= 200 && !s.chars().any(char::is_control)
}

async fn find_user(db: &tokio_postgres::Client, id: &str) -> Result<ScimUser, Failure> {
    store::get_user(db, id)
        .await?
        .ok_or_else(|| refuse("not_found", ScimError::not_found(format!("no user {id}"))).into())
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
        if sessions::revoke(db, &id, &reason, RevokedBy::Admin).await? {
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
        match &email {
            Some(e) => call.authorize_lookup(&claims, "email", e)?,
            None => {
                call.authorize(&claims, &[Op::any("list_users")])?;
            }
        }
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
                // CAEP credential-change: the user's password no longer signs them in.
                let reason = format!(
                    "scim deactivate_user by {}",
                    chain_display(&claims.chain_names())
                );
                outbox::credential_revoked(&**db, &user.id, &user.email, &reason, RevokedBy::Admin)
                    .await?;
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
