//! The SCIM 2.0 client (RFC 7644) for the idp's user store: one method per request this agent
//! makes, each with the delegated token (T2) of the one operation it serves. Errors keep what
//! the server said in SCIM's error shape (`status`, `scimType`, `detail`).

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

pub const MEDIA_TYPE: &str = "application/scim+json";
const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Why a SCIM request did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ScimError {
    /// The server answered with an error (RFC 7644 §3.12): its status and its words.
    #[error("{detail}")]
    Api {
        status: StatusCode,
        scim_type: Option<String>,
        detail: String,
    },
    /// It could not be reached, or answered something that is not SCIM.
    #[error("the SCIM API could not be reached: {0}")]
    Unavailable(String),
}

impl ScimError {
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ScimError::Api { status, .. } => Some(*status),
            ScimError::Unavailable(_) => None,
        }
    }
}

/// The SCIM API at one base URL (`{issuer}/scim/v2`).
#[derive(Debug, Clone)]
pub struct Scim {
    http: reqwest::Client,
    base: String,
}

/// `userName eq "<value>"`, quoted as a JSON string (RFC 7644 §3.4.2.2).
fn eq_filter(attribute: &str, value: &str) -> String {
    format!("{attribute} eq {}", Value::String(value.to_owned()))
}

impl Scim {
    pub fn new(http: reqwest::Client, base: impl Into<String>) -> Self {
        Self {
            http,
            base: base.into().trim_end_matches('/').to_owned(),
        }
    }

    fn request(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, MEDIA_TYPE)
    }

    fn with_body(req: RequestBuilder, body: &Value) -> RequestBuilder {
        req.header(reqwest::header::CONTENT_TYPE, MEDIA_TYPE)
            .body(body.to_string())
    }

    async fn send(req: RequestBuilder) -> Result<Value, ScimError> {
        let resp = req
            .send()
            .await
            .map_err(|e| ScimError::Unavailable(e.to_string()))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| ScimError::Unavailable(e.to_string()))?;
        if status.is_success() {
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text)
                .map_err(|e| ScimError::Unavailable(format!("the answer is not JSON: {e}")));
        }
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let detail = body
            .get("detail")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("HTTP {status}"));
        let scim_type = body
            .get("scimType")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Err(ScimError::Api {
            status,
            scim_type,
            detail,
        })
    }

    /// `GET /Users`: a ListResponse.
    pub async fn list_users(&self, token: &str) -> Result<Value, ScimError> {
        Self::send(self.request(Method::GET, "/Users", token)).await
    }

    /// `GET /Users?filter=userName eq "<email>"`: the user, if there is one.
    pub async fn find_user(&self, token: &str, email: &str) -> Result<Option<Value>, ScimError> {
        let list = Self::send(
            self.request(Method::GET, "/Users", token)
                .query(&[("filter", eq_filter("userName", email))]),
        )
        .await?;
        Ok(first_resource(list))
    }

    /// `GET /Groups?filter=displayName eq "<name>"`: the group, if there is one.
    pub async fn find_group(&self, token: &str, name: &str) -> Result<Option<Value>, ScimError> {
        let list = Self::send(
            self.request(Method::GET, "/Groups", token)
                .query(&[("filter", eq_filter("displayName", name))]),
        )
        .await?;
        Ok(first_resource(list))
    }

    /// `POST /Users` with `userName` = the email; no password (agents never handle credentials).
    pub async fn create_user(
        &self,
        token: &str,
        email: &str,
        display_name: &str,
    ) -> Result<Value, ScimError> {
        let body = json!({
            "schemas": [USER_SCHEMA],
            "userName": email,
            "displayName": display_name,
            "emails": [{"value": email, "type": "work", "primary": true}],
            "active": true,
        });
        Self::send(Self::with_body(
            self.request(Method::POST, "/Users", token),
            &body,
        ))
        .await
    }

    /// `PATCH /Groups/{id}` adding one member.
    pub async fn add_member(
        &self,
        token: &str,
        group_id: &str,
        user_id: &str,
    ) -> Result<Value, ScimError> {
        let body = json!({"schemas": [PATCH_SCHEMA], "Operations": [{"op": "add", "path": "members", "value": [{"value": user_id}]}]});
        Self::send(Self::with_body(
            self.request(
                Method::PATCH,
                &format!("/Groups/{}", segment(group_id)),
                token,
            ),
            &body,
        ))
        .await
    }

    /// `PATCH /Users/{id}` replacing `active` with false (the server also ends their sessions).
    pub async fn deactivate(&self, token: &str, user_id: &str) -> Result<Value, ScimError> {
        let body = json!({"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "path": "active", "value": false}]});
        Self::send(Self::with_body(
            self.request(
                Method::PATCH,
                &format!("/Users/{}", segment(user_id)),
                token,
            ),
            &body,
        ))
        .await
    }

    /// `PATCH /Users/{id}` adding the role `admin`.
    pub async fn grant_admin(&self, token: &str, user_id: &str) -> Result<Value, ScimError> {
        let body = json!({"schemas": [PATCH_SCHEMA], "Operations": [{"op": "add", "path": "roles", "value": [{"value": "admin"}]}]});
        Self::send(Self::with_body(
            self.request(
                Method::PATCH,
                &format!("/Users/{}", segment(user_id)),
                token,
            ),
            &body,
        ))
        .await
    }

    /// `DELETE /Users/{id}/sessions` (the idp's extension): `{"revokedSessions": n, ...}`.
    pub async fn revoke_sessions(&self, token: &str, user_id: &str) -> Result<Value, ScimError> {
        Self::send(self.request(
            Method::DELETE,
            &format!("/Users/{}/sessions", segment(user_id)),
            token,
        ))
        .await
    }

    /// `DELETE /Users/{id}`.
    pub async fn delete_user(&self, token: &str, user_id: &str) -> Result<(), ScimError> {
        Self::send(self.request(
            Method::DELETE,
            &format!("/Users/{}", segment(user_id)),
            token,
        ))
        .await
        .map(|_| ())
    }
}

/// The first of a ListResponse's `Resources`.
fn first_resource(list: Value) -> Option<Value> {
    match list {
        Value::Object(mut m) => match m.remove("Resources") {
            Some(Value::Array(items)) => items.into_iter().next(),
            _ => None,
        },
        _ => None,
    }
}

/// An id from the server, made safe as one path segment.
fn segment(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_quote_their_value() {
        assert_eq!(
            eq_filter("userName", "bob@example.com"),
            r#"userName eq "bob@example.com""#
        );
        assert_eq!(
            eq_filter("displayName", r#"a"b"#),
            r#"displayName eq "a\"b""#
        );
    }

    #[test]
    fn a_list_yields_its_first_resource() {
        assert_eq!(
            first_resource(json!({"totalResults": 1, "Resources": [{"id": "u1"}]})),
            Some(json!({"id": "u1"}))
        );
        assert_eq!(
            first_resource(json!({"totalResults": 0, "Resources": []})),
            None
        );
        assert_eq!(first_resource(json!(null)), None);
    }

    #[test]
    fn ids_cannot_leave_their_path_segment() {
        assert_eq!(segment("usr_abc-1"), "usr_abc-1");
        assert_eq!(segment("../admin?x=1"), "adminx1");
    }
}
