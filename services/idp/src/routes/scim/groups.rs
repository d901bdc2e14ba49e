//! The SCIM `/Groups` endpoints: list, read, create with first members, and add members.

use axum::{
    body::Bytes,
    extract::{Path, RawQuery, State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use kit::rar::{AuthorizationDetail, IAM};
use serde_json::json;

use super::{
    access::{Call, Op, authenticate},
    refusal::{Failure, conflict, invalid, not_delegable, refuse},
    wire::{
        GROUP_SCHEMA, GroupBody, ListQuery, PatchBody, ValueBody, base, created, group_json,
        list_json, parse_body, require_schema, scim_json,
    },
};
use crate::{
    error::ScimError,
    state::AppState,
    store::scim::{self as store, ScimGroup, ScimUser},
};

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

async fn find_group(db: &tokio_postgres::Client, id: &str) -> Result<ScimGroup, Failure> {
    store::get_group(db, id)
        .await?
        .ok_or_else(|| refuse("not_found", ScimError::not_found(format!("no group {id}"))).into())
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
        match &name {
            Some(g) => call.authorize_lookup(&claims, "group", g)?,
            None => {
                call.authorize(&claims, &[Op::any("list_users")])?;
            }
        }
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
