//! The OData query options `GET /v1.0/users` understands: `$top`, `$filter` (only
//! `userPrincipalName eq '...'`) and `$skiptoken` (the opaque cursor of `@odata.nextLink`).
//! Anything else that starts with `$` is refused with a 400 rather than silently ignored.

use base64::Engine as _;

use crate::{error::Error, user::valid_upn};

/// Graph's page size when `$top` is absent, and its ceiling.
pub const DEFAULT_TOP: i64 = 100;
pub const MAX_TOP: i64 = 999;

/// Parsed query options of a list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub top: i64,
    /// `userPrincipalName eq '<this>'`.
    pub upn: Option<String>,
    /// Resume after this user (the lower-cased UPN, the list's sort key).
    pub after: Option<String>,
}

impl ListQuery {
    /// Parses the raw query string.
    pub fn parse(raw: Option<&str>) -> Result<Self, Error> {
        let mut q = Self {
            top: DEFAULT_TOP,
            upn: None,
            after: None,
        };
        let mut seen = Vec::new();
        for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            if !k.starts_with('$') {
                continue;
            }
            let name = k.to_ascii_lowercase();
            if seen.contains(&name) {
                return Err(Error::bad_request(format!(
                    "Query option '{name}' was specified more than once."
                )));
            }
            match name.as_str() {
                "$top" => {
                    q.top = v
                        .parse::<i64>()
                        .ok()
                        .filter(|n| (1..=MAX_TOP).contains(n))
                        .ok_or_else(|| {
                            Error::bad_request(format!(
                                "Invalid page size specified: '$top' must be 1 to {MAX_TOP}."
                            ))
                        })?;
                }
                "$filter" => q.upn = Some(parse_filter(&v)?),
                "$skiptoken" => q.after = Some(decode_cursor(&v)?),
                _ => {
                    return Err(Error::bad_request(format!(
                        "Query option '{}' is not supported.",
                        name.chars().take(40).collect::<String>()
                    )));
                }
            }
            seen.push(name);
        }
        Ok(q)
    }
}

/// `userPrincipalName eq 'value'`, with OData's `''` for a quote inside the literal.
fn parse_filter(f: &str) -> Result<String, Error> {
    let unsupported = || {
        Error::bad_request(
            "Unsupported or invalid query filter clause specified: only userPrincipalName eq '<upn>' is supported.",
        )
    };
    let f = f.trim();
    let (property, rest) = f.split_once(char::is_whitespace).ok_or_else(unsupported)?;
    if !property.eq_ignore_ascii_case("userPrincipalName") {
        return Err(unsupported());
    }
    let rest = rest.trim_start();
    let (op, literal) = rest
        .split_once(char::is_whitespace)
        .ok_or_else(unsupported)?;
    if !op.eq_ignore_ascii_case("eq") {
        return Err(unsupported());
    }
    let literal = literal.trim();
    let inner = literal
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .filter(|s| !s.is_empty())
        .ok_or_else(unsupported)?;
    // Every quote inside must come doubled.
    if inner.replace("''", "").contains('\'') {
        return Err(unsupported());
    }
    let value = inner.replace("''", "'");
    if !valid_upn(&value) {
        // A value no user can have matches nothing; say so rather than scan.
        return Err(Error::bad_request(
            "Invalid filter clause: the userPrincipalName literal is not of the form alias@domain.",
        ));
    }
    Ok(value)
}

/// The cursor of the next page: the last returned user's sort key, base64url so it is opaque.
pub fn encode_cursor(sort_key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sort_key)
}

fn decode_cursor(token: &str) -> Result<String, Error> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|s| s.len() <= 320)
        .ok_or_else(|| Error::bad_request("The $skiptoken is not one this API issued."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_top_filter_and_cursor() {
        let q = ListQuery::parse(Some(
            "$top=5&$filter=userPrincipalName%20eq%20%27o%27%27neil%40example.com%27&api=1",
        ))
        .unwrap();
        assert_eq!(q.top, 5);
        assert_eq!(q.upn.as_deref(), Some("o'neil@example.com"));
        let cursor = encode_cursor("a@b.c");
        let q = ListQuery::parse(Some(&format!("$skiptoken={cursor}"))).unwrap();
        assert_eq!(q.after.as_deref(), Some("a@b.c"));
        assert_eq!(ListQuery::parse(None).unwrap().top, DEFAULT_TOP);
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        for bad in [
            "$top=0",
            "$top=1000",
            "$top=x",
            "$top=1&$top=2",
            "$filter=displayName eq 'x'",
            "$filter=userPrincipalName ne 'a@b.c'",
            "$filter=userPrincipalName eq a@b.c",
            "$filter=userPrincipalName eq 'a'b@c.d'",
            "$filter=userPrincipalName eq 'nobody'",
            "$select=id",
            "$skiptoken=%%%",
        ] {
            assert!(ListQuery::parse(Some(bad)).is_err(), "{bad}");
        }
    }
}
