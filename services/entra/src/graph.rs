//! The Microsoft Graph client for the users API (`/v1.0/users`): one method per request this
//! agent makes, each with the delegated token (T2) of the one operation it serves. Errors keep
//! what the server said in Graph's shape (`{"error": {"code", "message", "innerError"}}`).

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

/// Why a Graph request did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GraphError {
    /// The server answered with an error: its status, Graph's code, its words.
    #[error("{message}")]
    Api {
        status: StatusCode,
        code: String,
        message: String,
    },
    /// It could not be reached, or answered something that is not Graph.
    #[error("the Graph API could not be reached: {0}")]
    Unavailable(String),
}

impl GraphError {
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            GraphError::Api { status, .. } => Some(*status),
            GraphError::Unavailable(_) => None,
        }
    }
}

/// The Graph API at one base URL (the part before `/v1.0`).
#[derive(Debug, Clone)]
pub struct Graph {
    http: reqwest::Client,
    base: String,
}

impl Graph {
    pub fn new(http: reqwest::Client, base: impl Into<String>) -> Self {
        Self {
            http,
            base: base.into().trim_end_matches('/').to_owned(),
        }
    }

    fn request(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}/v1.0{path}", self.base))
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, "application/json")
    }

    async fn send(req: RequestBuilder) -> Result<Value, GraphError> {
        let resp = req
            .send()
            .await
            .map_err(|e| GraphError::Unavailable(e.to_string()))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| GraphError::Unavailable(e.to_string()))?;
        if status.is_success() {
            return serde_json::from_str(&text)
                .map_err(|e| GraphError::Unavailable(format!("the answer is not JSON: {e}")));
        }
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let error = &body["error"];
        let message = error["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("HTTP {status}"));
        let code = error["code"].as_str().unwrap_or_default().to_owned();
        Err(GraphError::Api {
            status,
            code,
            message,
        })
    }

    /// `GET /v1.0/users`: `{"@odata.context", "value": [...]}` (the first page).
    pub async fn list_users(&self, token: &str) -> Result<Value, GraphError> {
        Self::send(self.request(Method::GET, "/users", token)).await
    }

    /// `GET /v1.0/users/{userPrincipalName}`: the user, or `None` when Graph says there is none.
    pub async fn get_user(&self, token: &str, upn: &str) -> Result<Option<Value>, GraphError> {
        match Self::send(self.request(Method::GET, &format!("/users/{}", segment(upn)), token))
            .await
        {
            Ok(user) => Ok(Some(user)),
            Err(GraphError::Api {
                status: StatusCode::NOT_FOUND,
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /v1.0/users`: an enabled user with no password (this tenant has no sign-in, and
    /// agents never handle credentials).
    pub async fn create_user(
        &self,
        token: &str,
        upn: &str,
        display_name: &str,
    ) -> Result<Value, GraphError> {
        let body = json!({
            "accountEnabled": true,
            "displayName": display_name,
            "mailNickname": mail_nickname(upn),
            "userPrincipalName": upn,
        });
        Self::send(self.request(Method::POST, "/users", token).json(&body)).await
    }
}

/// Graph's `mailNickname`: the alias before `@`, in the characters Graph allows.
pub fn mail_nickname(upn: &str) -> String {
    let alias = upn.split('@').next().unwrap_or(upn);
    let nick: String = alias
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '\'') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if nick.is_empty() { "user".into() } else { nick }
}

/// A UPN as one path segment: the grant's email alphabet (letters, digits, `@._+-`) needs only
/// `+` escaped; anything else is dropped.
fn segment(upn: &str) -> String {
    upn.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '_' | '-' | '+'))
        .map(|c| {
            if c == '+' {
                "%2B".to_owned()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicknames_are_the_alias_in_graph_s_alphabet() {
        assert_eq!(mail_nickname("sarah.smith@example.com"), "sarah.smith");
        assert_eq!(mail_nickname("a+b@example.com"), "a_b");
    }

    #[test]
    fn a_upn_stays_one_path_segment() {
        assert_eq!(
            segment("sarah.smith@example.com"),
            "sarah.smith@example.com"
        );
        assert_eq!(segment("a+b@example.com"), "a%2Bb@example.com");
        assert_eq!(segment("../x?y#z/"), "..xyz");
    }
}
