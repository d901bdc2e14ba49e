//! Per-request identity, as Graph has it: every response carries a `request-id` header (and
//! echoes the caller's `client-request-id`), and every error body repeats both in `innerError`,
//! so a caller's bug report can be matched to our logs and security events.
//!
//! The ids live in a task-local for the duration of the request, so that the one place that
//! renders errors ([`crate::error`]) can stamp them without every handler passing them along.

use axum::{
    extract::Request,
    http::{HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};

/// The ids of the request being served.
#[derive(Debug, Clone)]
pub struct RequestIds {
    /// Ours: a fresh GUID for every request.
    pub request_id: String,
    /// The caller's, when it sent a usable one.
    pub client_request_id: Option<String>,
}

tokio::task_local! {
    static CURRENT: RequestIds;
}

const REQUEST_ID: HeaderName = HeaderName::from_static("request-id");
const CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("client-request-id");

/// The ids of the request being served; fresh ones outside a request (never happens in the
/// router, which always runs [`middleware`]).
pub fn current() -> RequestIds {
    CURRENT
        .try_with(Clone::clone)
        .unwrap_or_else(|_| RequestIds {
            request_id: uuid::Uuid::new_v4().to_string(),
            client_request_id: None,
        })
}

/// A caller-chosen id is echoed only if it is short and plain, so it can never smuggle
/// anything into a header or a log line.
fn usable(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    let plain = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    plain.then(|| s.to_owned())
}

/// Assigns the request its ids, serves it with them in scope, and stamps the response headers.
pub async fn middleware(req: Request, next: Next) -> Response {
    let ids = RequestIds {
        request_id: uuid::Uuid::new_v4().to_string(),
        client_request_id: req.headers().get(&CLIENT_REQUEST_ID).and_then(usable),
    };
    let mut resp = CURRENT.scope(ids.clone(), next.run(req)).await;
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&ids.request_id) {
        headers.insert(REQUEST_ID, v);
    }
    if let Some(v) = ids
        .client_request_id
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        headers.insert(CLIENT_REQUEST_ID, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_client_request_ids_are_echoed() {
        let ok = HeaderValue::from_static("9d1c-AB_12.x");
        assert_eq!(usable(&ok).as_deref(), Some("9d1c-AB_12.x"));
        for bad in ["", "a b", "x\"y", &"a".repeat(65)] {
            assert!(
                usable(&HeaderValue::from_str(bad).unwrap()).is_none(),
                "{bad}"
            );
        }
    }
}
