//! Subject identifiers: the RFC 9493 formats and SSF's `complex` subject (SSF §3.3), and the
//! matching rule a transmitter applies to a stream's added or removed subjects (SSF §8.1.3.1).

use serde::{Deserialize, Serialize};

/// One subject identifier, tagged by `format`. Unknown formats do not parse: a receiver cannot
/// act on a subject it cannot name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case", deny_unknown_fields)]
pub enum SubjectId {
    /// `{"format":"email","email":"alice@example.com"}`
    Email { email: String },
    /// `{"format":"iss_sub","iss":"https://idp","sub":"..."}`
    IssSub { iss: String, sub: String },
    /// `{"format":"opaque","id":"..."}`: the platform's session ids, and stream ids.
    Opaque { id: String },
    /// `{"format":"account","uri":"acct:..."}`
    Account { uri: String },
    /// `{"format":"phone_number","phone_number":"+1..."}`
    PhoneNumber { phone_number: String },
    /// `{"format":"did","url":"did:..."}`
    Did { url: String },
    /// `{"format":"uri","uri":"..."}`
    Uri { uri: String },
    /// `{"format":"jwt_id","iss":"...","jti":"..."}` (SSF §3.5): one token.
    JwtId { iss: String, jti: String },
    /// `{"format":"complex","user":{...},"session":{...},...}`: every member describes the
    /// same principal.
    Complex(ComplexSubject),
}

/// SSF §3.3: a subject made of simple identifiers, one per aspect of the principal.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplexSubject {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<Box<SubjectId>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<Box<SubjectId>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Box<SubjectId>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<Box<SubjectId>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<Box<SubjectId>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_unit: Option<Box<SubjectId>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<Box<SubjectId>>,
}

impl ComplexSubject {
    fn members(&self) -> [(&'static str, Option<&SubjectId>); 7] {
        [
            ("user", self.user.as_deref()),
            ("device", self.device.as_deref()),
            ("session", self.session.as_deref()),
            ("application", self.application.as_deref()),
            ("tenant", self.tenant.as_deref()),
            ("org_unit", self.org_unit.as_deref()),
            ("group", self.group.as_deref()),
        ]
    }
}

impl SubjectId {
    pub fn email(email: impl Into<String>) -> Self {
        Self::Email {
            email: email.into(),
        }
    }

    pub fn iss_sub(iss: impl Into<String>, sub: impl Into<String>) -> Self {
        Self::IssSub {
            iss: iss.into(),
            sub: sub.into(),
        }
    }

    pub fn opaque(id: impl Into<String>) -> Self {
        Self::Opaque { id: id.into() }
    }

    /// The platform's usual subject for a sign-in session: `user` names the person, `session`
    /// the session id (opaque), so a receiver can act on either.
    pub fn session_of(user: SubjectId, sid: impl Into<String>) -> Self {
        Self::Complex(ComplexSubject {
            user: Some(Box::new(user)),
            session: Some(Box::new(Self::opaque(sid))),
            ..ComplexSubject::default()
        })
    }

    /// The session id this subject names: the `session` member of a complex subject, when it
    /// is opaque.
    pub fn session_id(&self) -> Option<&str> {
        match self {
            Self::Complex(c) => match c.session.as_deref() {
                Some(Self::Opaque { id }) => Some(id),
                _ => None,
            },
            _ => None,
        }
    }

    /// The user's email this subject names, directly or as the `user` member.
    pub fn email_address(&self) -> Option<&str> {
        match self {
            Self::Email { email } => Some(email),
            Self::Complex(c) => c.user.as_deref().and_then(Self::email_address),
            _ => None,
        }
    }

    /// Checks what serde cannot: no empty identifiers, a complex subject with at least one
    /// member and no complex member inside it.
    pub fn validate(&self) -> Result<(), String> {
        let nonempty = |name: &str, v: &str| {
            if v.trim().is_empty() || v.len() > 1024 {
                Err(format!(
                    "subject member {name} must be 1 to 1024 characters"
                ))
            } else {
                Ok(())
            }
        };
        match self {
            Self::Email { email } => {
                nonempty("email", email)?;
                if !email.contains('@') {
                    return Err("subject email is not an address".into());
                }
                Ok(())
            }
            Self::IssSub { iss, sub } => nonempty("iss", iss).and(nonempty("sub", sub)),
            Self::Opaque { id } => nonempty("id", id),
            Self::Account { uri } | Self::Uri { uri } => nonempty("uri", uri),
            Self::PhoneNumber { phone_number } => nonempty("phone_number", phone_number),
            Self::Did { url } => nonempty("url", url),
            Self::JwtId { iss, jti } => nonempty("iss", iss).and(nonempty("jti", jti)),
            Self::Complex(c) => {
                let mut any = false;
                for (name, member) in c.members() {
                    let Some(m) = member else { continue };
                    any = true;
                    if matches!(m, Self::Complex(_)) {
                        return Err(format!("complex member {name} must be a simple subject"));
                    }
                    m.validate()?;
                }
                if any {
                    Ok(())
                } else {
                    Err("a complex subject needs at least one member".into())
                }
            }
        }
    }

    /// Whether an event about `event` concerns this (stream) subject, per SSF §8.1.3.1: simple
    /// subjects match when equal (emails case-insensitively); complex subjects match when every
    /// member present on both sides is equal, a member absent on either side acting as a
    /// wildcard; a simple subject matches a complex one that has it as a member.
    pub fn matches(&self, event: &SubjectId) -> bool {
        match (self, event) {
            (Self::Complex(a), Self::Complex(b)) => {
                let mut common = 0;
                for ((_, x), (_, y)) in a.members().into_iter().zip(b.members()) {
                    if let (Some(x), Some(y)) = (x, y) {
                        if !x.matches(y) {
                            return false;
                        }
                        common += 1;
                    }
                }
                common > 0
            }
            (simple, Self::Complex(c)) | (Self::Complex(c), simple) => c
                .members()
                .into_iter()
                .any(|(_, m)| m.is_some_and(|m| m.matches(simple))),
            (Self::Email { email: a }, Self::Email { email: b }) => a.eq_ignore_ascii_case(b),
            (a, b) => a == b,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn complex_subjects_round_trip_in_ssf_shape() {
        let s = SubjectId::session_of(SubjectId::email("alice@example.com"), "sid-1");
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v,
            json!({"format":"complex","user":{"format":"email","email":"alice@example.com"},
                   "session":{"format":"opaque","id":"sid-1"}})
        );
        let back: SubjectId = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.session_id(), Some("sid-1"));
        assert_eq!(back.email_address(), Some("alice@example.com"));
        assert!(back.validate().is_ok());
    }

    #[test]
    fn unknown_formats_and_members_do_not_parse() {
        assert!(
            serde_json::from_value::<SubjectId>(json!({"format":"phone","phone":"1"})).is_err()
        );
        assert!(
            serde_json::from_value::<SubjectId>(json!({"format":"email","email":"a@b","x":1}))
                .is_err()
        );
        let nested = json!({"format":"complex","user":{"format":"complex"}});
        let s: SubjectId = serde_json::from_value(nested).unwrap();
        assert!(s.validate().is_err());
    }

    #[test]
    fn matching_treats_absent_members_as_wildcards() {
        let bob = SubjectId::email("Bob@example.com");
        let event = SubjectId::session_of(SubjectId::email("bob@example.com"), "s1");
        assert!(bob.matches(&event));
        let other_session = SubjectId::Complex(ComplexSubject {
            session: Some(Box::new(SubjectId::opaque("s2"))),
            ..ComplexSubject::default()
        });
        assert!(!other_session.matches(&event));
        let same_session = SubjectId::Complex(ComplexSubject {
            session: Some(Box::new(SubjectId::opaque("s1"))),
            ..ComplexSubject::default()
        });
        assert!(same_session.matches(&event));
        assert!(!SubjectId::email("carol@example.com").matches(&event));
    }
}
