//! `/v1.0/users`: list, get by id or UPN, create. Each handler authorizes first (see
//! [`crate::access`]), then reads its input, then acts, and writes its one security event.

use axum::{
    Json,
    extract::{RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::{
    access::{self, Operation},
    error::{Body, Error, PathParam},
    query::{self, ListQuery},
    state::AppState,
    store,
    user::{NewUser, User, valid_upn},
};

/// A single user with its `@odata.context`, as Graph answers for one entity.
#[derive(Serialize)]
pub struct Entity {
    #[serde(rename = "@odata.context")]
    context: String,
    #[serde(flatten)]
    user: User,
}

fn entity(state: &AppState, user: User) -> Json<Entity> {
    Json(Entity {
        context: format!("{}/v1.0/$metadata#users/$entity", state.base_url),
        user,
    })
}

/// `GET /v1.0/users`: `$top`, `$filter=userPrincipalName eq '...'`, `$skiptoken`. A full page
/// carries `@odata.nextLink`.
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, Error> {
    let call = access::authorize(&state, &headers, Operation::List).await?;
    let q = match ListQuery::parse(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return Err(call.fail(&state, "invalid_request", e).await),
    };
    let db = state.pool.get().await?;
    // One more than asked says whether there is a next page.
    let mut users =
        store::users::list(&db, q.top + 1, q.after.as_deref(), q.upn.as_deref()).await?;
    let more = users.len() > usize::try_from(q.top).unwrap_or(usize::MAX);
    users.truncate(usize::try_from(q.top).unwrap_or(usize::MAX));
    call.allowed(&state).await?;
    let mut body = json!({
        "@odata.context": format!("{}/v1.0/$metadata#users", state.base_url),
        "value": users,
    });
    if more && let Some(last) = users.last() {
        body["@odata.nextLink"] = json!(format!(
            "{}/v1.0/users?$top={}&$skiptoken={}",
            state.base_url,
            q.top,
            query::encode_cursor(&store::users::sort_key(last))
        ));
    }
    Ok(Json(body))
}

/// `GET /v1.0/users/{id | userPrincipalName}`.
pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    PathParam(key): PathParam<String>,
) -> Result<Json<Entity>, Error> {
    let call = access::authorize(&state, &headers, Operation::Get).await?;
    let by_id = uuid::Uuid::parse_str(&key).is_ok();
    let call = if by_id {
        call
    } else if valid_upn(&key) {
        // The target is known before the lookup: a token for someone else learns nothing,
        // not even whether this user exists.
        call.require_target(&state, &key).await?
    } else {
        let shown: String = key.chars().filter(|c| !c.is_control()).take(200).collect();
        let e = Error::bad_request(format!("Invalid object identifier '{shown}'."));
        return Err(call.fail(&state, "invalid_request", e).await);
    };
    let db = state.pool.get().await?;
    let Some(user) = store::users::find(&db, &key).await? else {
        return Err(call.not_found(&state, &key).await);
    };
    let call = if by_id {
        call.require_target(&state, &user.user_principal_name)
            .await?
    } else {
        call
    };
    call.allowed(&state).await?;
    Ok(entity(&state, user))
}

/// `POST /v1.0/users`: 201 with the new user, or 400 if the UPN is taken (in any case).
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, Error> {
    let call = access::authorize(&state, &headers, Operation::Create).await?;
    if !is_json(&headers) {
        let e =
            Error::bad_request("The request body must be sent as Content-Type: application/json.");
        return Err(call.fail(&state, "invalid_request", e).await);
    }
    let new = match NewUser::parse(&body) {
        Ok(n) => n,
        Err(e) => return Err(call.fail(&state, "invalid_request", e).await),
    };
    let call = call
        .require_target(&state, &new.user_principal_name)
        .await?;
    let mut db = state.pool.get().await?;
    // The user and its allowed event commit together: no user exists without its event.
    let tx = db.transaction().await?;
    let Some(user) = store::users::insert(&*tx, &new, &call.claims().jti).await? else {
        drop(tx);
        let e = Error::bad_request(
            "Another object with the same value for property userPrincipalName already exists.",
        );
        return Err(call.fail(&state, "upn_exists", e).await);
    };
    kit::events::emit(tx.client(), &call.into_allowed_event()).await?;
    tx.commit().await?;
    let location = format!("{}/v1.0/users/{}", state.base_url, user.id);
    let mut resp = (StatusCode::CREATED, entity(&state, user)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}
