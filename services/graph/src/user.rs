//! The user resource: Graph's wire shape, and the validated body of `POST /v1.0/users`.
//!
//! Nothing reaches the store without passing through [`NewUser::parse`]: every property has a
//! bounded length and a strict alphabet, so bad input is a 400, never a 500 or an odd row.

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// A user as Graph returns it (the default property set this stand-in keeps).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// A GUID, like Entra's object ids.
    pub id: uuid::Uuid,
    pub display_name: String,
    pub user_principal_name: String,
    pub mail: Option<String>,
    pub mail_nickname: String,
    pub account_enabled: bool,
    /// UTC, whole seconds, `Z` suffix, as Graph writes it.
    pub created_date_time: String,
}

/// The body of `POST /v1.0/users`, as sent.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Wire {
    account_enabled: bool,
    display_name: String,
    mail_nickname: String,
    user_principal_name: String,
    #[serde(default)]
    mail: Option<String>,
    #[serde(default)]
    password_profile: Option<PasswordProfile>,
}

/// Accepted and checked, then dropped: this stand-in tenant has no sign-in, so it keeps no
/// password (not even a hash) and nothing it could leak.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "the force-change flags are accepted for Graph compatibility; with no sign-in they mean nothing here"
)]
struct PasswordProfile {
    password: String,
    #[serde(default)]
    force_change_password_next_sign_in: Option<bool>,
    #[serde(default)]
    force_change_password_next_sign_in_with_mfa: Option<bool>,
}

/// A validated new user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub account_enabled: bool,
    pub display_name: String,
    pub mail_nickname: String,
    pub user_principal_name: String,
    /// Defaults to the UPN: in this tenant every user has a mailbox at their UPN.
    pub mail: String,
}

impl NewUser {
    /// Parses and validates a request body.
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        let wire: Wire = serde_json::from_slice(body)
            .map_err(|e| Error::bad_request(format!("Invalid request body for a user: {e}.")))?;
        if let Some(p) = &wire.password_profile {
            let n = p.password.chars().count();
            if !(8..=256).contains(&n) {
                return Err(Error::bad_request(
                    "Invalid value specified for property 'passwordProfile.password': it must be 8 to 256 characters.",
                ));
            }
        }
        let display_name = wire.display_name.trim().to_owned();
        let n = display_name.chars().count();
        if n == 0 || n > 256 || display_name.chars().any(char::is_control) {
            return Err(Error::bad_request(
                "Invalid value specified for property 'displayName' of resource 'User': it must be 1 to 256 printable characters.",
            ));
        }
        if !valid_nickname(&wire.mail_nickname) {
            return Err(Error::bad_request(
                "Invalid value specified for property 'mailNickname' of resource 'User': it must be 1 to 64 of A-Z a-z 0-9 . - _ ' without spaces.",
            ));
        }
        if !valid_upn(&wire.user_principal_name) {
            return Err(Error::bad_request(
                "Invalid value specified for property 'userPrincipalName' of resource 'User': it must read alias@domain.",
            ));
        }
        let mail = match wire.mail {
            Some(m) if !valid_upn(&m) => {
                return Err(Error::bad_request(
                    "Invalid value specified for property 'mail' of resource 'User'.",
                ));
            }
            Some(m) => m,
            None => wire.user_principal_name.clone(),
        };
        Ok(Self {
            account_enabled: wire.account_enabled,
            display_name,
            mail_nickname: wire.mail_nickname,
            user_principal_name: wire.user_principal_name,
            mail,
        })
    }
}

fn valid_nickname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'\''))
}

/// `alias@domain` with Entra's limits: an alias of at most 64 characters that neither starts
/// nor ends with a dot, and a dotted domain of at most 255.
pub fn valid_upn(s: &str) -> bool {
    let Some((alias, domain)) = s.split_once('@') else {
        return false;
    };
    let alias_ok = !alias.is_empty()
        && alias.len() <= 64
        && !alias.starts_with('.')
        && !alias.ends_with('.')
        && !alias.contains("..")
        && alias.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'.' | b'-' | b'_' | b'\'' | b'!' | b'#' | b'^' | b'~')
        });
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = domain.len() <= 255
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    alias_ok && domain_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn parses_graphs_create_body() {
        let u = NewUser::parse(&body(serde_json::json!({
            "accountEnabled": true, "displayName": " Sarah Smith ", "mailNickname": "sarah.smith",
            "userPrincipalName": "sarah.smith@example.com",
            "passwordProfile": {"forceChangePasswordNextSignIn": true, "password": "xWwvJ]6NMw+bWH-d"}
        })))
        .unwrap();
        assert_eq!(u.display_name, "Sarah Smith");
        assert_eq!(u.mail, "sarah.smith@example.com");
    }

    #[test]
    fn refuses_bad_bodies_as_bad_requests() {
        let base = serde_json::json!({"accountEnabled": true, "displayName": "S", "mailNickname": "s",
            "userPrincipalName": "s@example.com"});
        let with = |k: &str, v: serde_json::Value| {
            let mut b = base.clone();
            b[k] = v;
            body(b)
        };
        for bad in [
            b"{".to_vec(),
            b"[]".to_vec(),
            with("extra", serde_json::json!(1)),
            with("accountEnabled", serde_json::json!("yes")),
            with("displayName", serde_json::json!("")),
            with("mailNickname", serde_json::json!("has space")),
            with("userPrincipalName", serde_json::json!("no-at-sign")),
            with("userPrincipalName", serde_json::json!(".a@example.com")),
            with("userPrincipalName", serde_json::json!("a@localhost")),
            with("passwordProfile", serde_json::json!({"password": "short"})),
        ] {
            assert!(
                matches!(NewUser::parse(&bad), Err(Error::BadRequest(_))),
                "{}",
                String::from_utf8_lossy(&bad)
            );
        }
    }

    #[test]
    fn users_serialize_in_graphs_shape() {
        let u = User {
            id: uuid::Uuid::nil(),
            display_name: "S".into(),
            user_principal_name: "s@example.com".into(),
            mail: None,
            mail_nickname: "s".into(),
            account_enabled: true,
            created_date_time: "2026-01-01T00:00:00Z".into(),
        };
        let v = serde_json::to_value(&u).unwrap();
        for key in [
            "id",
            "displayName",
            "userPrincipalName",
            "mail",
            "accountEnabled",
            "createdDateTime",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
    }
}
