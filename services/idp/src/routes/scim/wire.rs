//! The SCIM JSON on the wire: request bodies and list queries in, resources and list
//! responses out (RFC 7643/7644 shapes, `application/scim+json`).

use axum::{
    body::Bytes,
    extract::rejection::BytesRejection,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::{Value, json};

use super::refusal::{Failure, Refusal, invalid, refuse};
use crate::{
    error::{SCIM_MEDIA_TYPE, ScimError},
    state::AppState,
    store::scim::{ScimGroup, ScimUser},
};

pub(super) const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub(super) const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Largest page a list returns (`filter.maxResults` in the service provider config).
pub(super) const MAX_RESULTS: i64 = 200;

// ---- request bodies and queries ------------------------------------------------------------

/// Parses a JSON body: `application/scim+json` (or `application/json`), within the size limit.
/// Broken JSON is `invalidSyntax`; well-formed JSON of the wrong shape is `invalidValue`.
pub(super) fn parse_body<T: DeserializeOwned>(
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

pub(super) fn require_schema(schemas: &[String], urn: &str) -> Result<(), Refusal> {
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
pub(super) struct ListQuery {
    filter: Option<String>,
    start_index: Option<i64>,
    count: Option<i64>,
}

impl ListQuery {
    pub(super) fn parse(raw: Option<&str>) -> Result<Self, Refusal> {
        serde_urlencoded::from_str(raw.unwrap_or_default())
            .map_err(|e| invalid("invalidValue", format!("query: {e}")))
    }

    /// RFC 7644 §3.4.2.4: a `startIndex` below 1 means 1, a negative `count` means 0.
    pub(super) fn start(&self) -> i64 {
        self.start_index.unwrap_or(1).max(1)
    }

    pub(super) fn offset_limit(&self) -> (i64, i64) {
        (
            self.start() - 1,
            self.count.unwrap_or(MAX_RESULTS).clamp(0, MAX_RESULTS),
        )
    }

    /// The value of the one filter supported: `<attribute> eq "<value>"`.
    pub(super) fn eq_filter(&self, attribute: &str) -> Result<Option<String>, Refusal> {
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
pub(super) struct UserBody {
    #[serde(default)]
    pub(super) schemas: Vec<String>,
    pub(super) user_name: String,
    #[serde(default)]
    pub(super) name: Option<NameBody>,
    #[serde(default)]
    pub(super) display_name: Option<String>,
    #[serde(default)]
    pub(super) emails: Vec<ValueBody>,
    #[serde(default)]
    pub(super) active: Option<bool>,
    #[serde(default)]
    pub(super) password: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a name object")]
pub(super) struct NameBody {
    #[serde(default)]
    pub(super) formatted: Option<String>,
    #[serde(default)]
    pub(super) given_name: Option<String>,
    #[serde(default)]
    pub(super) family_name: Option<String>,
}

/// A multi-valued attribute's entry (`emails`, `members`): only `value` matters here.
#[derive(Debug, Deserialize)]
#[serde(expecting = "an object with a value")]
pub(super) struct ValueBody {
    pub(super) value: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a SCIM Group object")]
pub(super) struct GroupBody {
    #[serde(default)]
    pub(super) schemas: Vec<String>,
    pub(super) display_name: String,
    #[serde(default)]
    pub(super) members: Vec<ValueBody>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "a SCIM PatchOp message")]
pub(super) struct PatchBody {
    #[serde(default)]
    pub(super) schemas: Vec<String>,
    #[serde(rename = "Operations", alias = "operations")]
    pub(super) operations: Vec<PatchOperation>,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "a patch operation with op, path and value")]
pub(super) struct PatchOperation {
    pub(super) op: String,
    #[serde(default)]
    pub(super) path: Option<String>,
    #[serde(default)]
    pub(super) value: Option<Value>,
}

impl PatchBody {
    pub(super) fn parse(
        headers: &HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> Result<Self, Refusal> {
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
    pub(super) fn kind(&self) -> Result<String, Refusal> {
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
    pub(super) fn changes(&self) -> Result<Vec<(String, &Value)>, Refusal> {
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

// ---- responses -----------------------------------------------------------------------------

pub(super) fn scim_json(status: StatusCode, body: Value) -> Response {
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
pub(super) fn created(location: &str, body: Value) -> Result<Response, Failure> {
    let mut r = scim_json(StatusCode::CREATED, body);
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_str(location)?);
    Ok(r)
}

pub(super) fn base(state: &AppState) -> String {
    format!("{}/scim/v2", state.issuer.url)
}

pub(super) fn user_json(base: &str, u: &ScimUser) -> Value {
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

pub(super) fn group_json(base: &str, g: &ScimGroup) -> Value {
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

pub(super) fn list_json(start: i64, total: i64, resources: Vec<Value>) -> Response {
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
