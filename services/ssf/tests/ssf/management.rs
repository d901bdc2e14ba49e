//! The management API (SSF §8.1): status codes of every operation, bearer authentication, and
//! one receiver never seeing or changing another's stream.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::Transmitter;

const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
const CREDENTIAL_CHANGE: &str =
    "https://schemas.openid.net/secevent/caep/event-type/credential-change";

async fn create(t: &Transmitter, name: &str, body: &Value) -> Value {
    let resp = t
        .call(Method::POST, "/ssf/streams", Some(name), Some(body))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    resp.json().await.unwrap()
}

#[tokio::test]
async fn every_operation_answers_the_status_ssf_specifies() {
    let t = Transmitter::spawn().await;
    // Create without delivery: poll, with the transmitter's endpoint.
    let s = create(
        &t,
        "idp",
        &json!({"events_requested": [SESSION_REVOKED, "https://example.com/unknown"], "description": "idp"}),
    )
    .await;
    let id = s["stream_id"].as_str().unwrap().to_owned();
    assert_eq!(s["iss"], t.url.as_str());
    assert_eq!(s["aud"], "idp");
    assert_eq!(s["delivery"]["method"], "urn:ietf:rfc:8936");
    assert_eq!(
        s["delivery"]["endpoint_url"],
        format!("{}/ssf/poll/{id}", t.url)
    );
    assert_eq!(s["events_delivered"], json!([SESSION_REVOKED]));
    assert_eq!(s["events_supported"].as_array().unwrap().len(), 4);

    // Read one, read all.
    let one = t
        .call(
            Method::GET,
            &format!("/ssf/streams?stream_id={id}"),
            Some("idp"),
            None,
        )
        .await;
    assert_eq!(one.status(), StatusCode::OK);
    assert_eq!(one.json::<Value>().await.unwrap(), s);
    let all: Value = t
        .call(Method::GET, "/ssf/streams", Some("idp"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all, json!([s]));

    // Update (PATCH): only what is sent changes; an echoed transmitter field must match.
    let patched = t
        .call(
            Method::PATCH,
            "/ssf/streams",
            Some("idp"),
            Some(&json!({"stream_id": id, "iss": t.url, "events_requested": [SESSION_REVOKED, CREDENTIAL_CHANGE]})),
        )
        .await;
    assert_eq!(patched.status(), StatusCode::OK);
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(
        patched["events_delivered"],
        json!([SESSION_REVOKED, CREDENTIAL_CHANGE])
    );
    assert_eq!(patched["description"], "idp");
    let bad = t
        .call(
            Method::PATCH,
            "/ssf/streams",
            Some("idp"),
            Some(&json!({"stream_id": id, "aud": "someone-else"})),
        )
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        bad.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );

    // Replace (PUT): a missing receiver field is reset.
    let replaced = t
        .call(
            Method::PUT,
            "/ssf/streams",
            Some("idp"),
            Some(&json!({"stream_id": id, "events_requested": [CREDENTIAL_CHANGE],
                         "delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": "http://127.0.0.1:9/ssf"}})),
        )
        .await;
    assert_eq!(replaced.status(), StatusCode::OK);
    let replaced: Value = replaced.json().await.unwrap();
    assert!(replaced.get("description").is_none(), "{replaced}");
    assert_eq!(replaced["delivery"]["method"], "urn:ietf:rfc:8935");
    assert_eq!(replaced["events_delivered"], json!([CREDENTIAL_CHANGE]));

    // Status: read, pause, read back.
    let status = t
        .call(
            Method::GET,
            &format!("/ssf/status?stream_id={id}"),
            Some("idp"),
            None,
        )
        .await;
    assert_eq!(status.status(), StatusCode::OK);
    assert_eq!(
        status.json::<Value>().await.unwrap(),
        json!({"stream_id": id, "status": "enabled"})
    );
    let paused = t
        .call(
            Method::POST,
            "/ssf/status",
            Some("idp"),
            Some(&json!({"stream_id": id, "status": "paused", "reason": "maintenance"})),
        )
        .await;
    assert_eq!(paused.status(), StatusCode::OK);
    assert_eq!(
        paused.json::<Value>().await.unwrap(),
        json!({"stream_id": id, "status": "paused", "reason": "maintenance"})
    );
    let bogus = t
        .call(
            Method::POST,
            "/ssf/status",
            Some("idp"),
            Some(&json!({"stream_id": id, "status": "asleep"})),
        )
        .await;
    assert_eq!(bogus.status(), StatusCode::BAD_REQUEST);

    // Subjects: add 200 with an empty body, remove 204; an unknown format is a 400.
    let subject = json!({"format": "email", "email": "bob@example.com"});
    let added = t
        .call(
            Method::POST,
            "/ssf/subjects/add",
            Some("idp"),
            Some(&json!({"stream_id": id, "subject": subject, "verified": true})),
        )
        .await;
    assert_eq!(added.status(), StatusCode::OK);
    assert!(added.bytes().await.unwrap().is_empty());
    let removed = t
        .call(
            Method::POST,
            "/ssf/subjects/remove",
            Some("idp"),
            Some(&json!({"stream_id": id, "subject": subject})),
        )
        .await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    let odd = t
        .call(
            Method::POST,
            "/ssf/subjects/add",
            Some("idp"),
            Some(&json!({"stream_id": id, "subject": {"format": "phone", "phone": "1"}})),
        )
        .await;
    assert_eq!(odd.status(), StatusCode::BAD_REQUEST);

    // Verification: 204, then 429 inside min_verification_interval.
    let v = t
        .call(
            Method::POST,
            "/ssf/verify",
            Some("idp"),
            Some(&json!({"stream_id": id, "state": "s1"})),
        )
        .await;
    assert_eq!(v.status(), StatusCode::NO_CONTENT);
    let again = t
        .call(
            Method::POST,
            "/ssf/verify",
            Some("idp"),
            Some(&json!({"stream_id": id})),
        )
        .await;
    assert_eq!(again.status(), StatusCode::TOO_MANY_REQUESTS);

    // Delete 204; then it is gone, and so are its queued SETs.
    let deleted = t
        .call(
            Method::DELETE,
            &format!("/ssf/streams?stream_id={id}"),
            Some("idp"),
            None,
        )
        .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let gone = t
        .call(
            Method::GET,
            &format!("/ssf/streams?stream_id={id}"),
            Some("idp"),
            None,
        )
        .await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let all: Value = t
        .call(Method::GET, "/ssf/streams", Some("idp"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all, json!([]));
    let left: i64 = t
        .db()
        .await
        .query_one("SELECT count(*) FROM ssf.sets WHERE stream_id = $1", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}

#[tokio::test]
async fn malformed_stream_requests_are_400() {
    let t = Transmitter::spawn().await;
    for body in [
        json!({"delivery": {"method": "urn:example:smoke-signals"}}),
        json!({"delivery": {"method": "urn:ietf:rfc:8935"}}),
        json!({"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": "file:///etc/passwd"}}),
        json!({"events_requested": "session-revoked"}),
        json!({"description": 7}),
        json!(["not", "an", "object"]),
    ] {
        let resp = t
            .call(Method::POST, "/ssf/streams", Some("idp"), Some(&body))
            .await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
    }
    let resp = t
        .call(Method::PATCH, "/ssf/streams", Some("idp"), Some(&json!({})))
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn every_endpoint_needs_a_receivers_bearer_token() {
    let t = Transmitter::spawn().await;
    let missing = t.call(Method::GET, "/ssf/streams", None, None).await;
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        missing.headers()["www-authenticate"],
        "Bearer realm=\"ssf\""
    );
    let wrong = t
        .http
        .get(format!("{}/ssf/streams", t.url))
        .bearer_auth("not-a-receiver-token-at-all")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(
        wrong.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    // A token in the query is not a token.
    let query = t
        .http
        .get(format!(
            "{}/ssf/streams?access_token={}",
            t.url,
            crate::support::token("idp")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(query.status(), StatusCode::UNAUTHORIZED);
    // A receiver's token is not the source's.
    let resp = t
        .http
        .post(format!("{}/events", t.url))
        .bearer_auth(crate::support::token("idp"))
        .json(&crate::support::session_revoked("a@example.com", "s"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_receiver_cannot_see_or_change_another_receivers_stream() {
    let t = Transmitter::spawn().await;
    let s = create(&t, "idp", &json!({"description": "idp"})).await;
    let id = s["stream_id"].as_str().unwrap();
    let intruder = Some("verify-rar");
    let not_found = |resp: reqwest::Response| async move {
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert_eq!(resp.json::<Value>().await.unwrap()["error"], "not_found");
    };
    not_found(
        t.call(
            Method::GET,
            &format!("/ssf/streams?stream_id={id}"),
            intruder,
            None,
        )
        .await,
    )
    .await;
    let theirs: Value = t
        .call(Method::GET, "/ssf/streams", intruder, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs, json!([]));
    let body = json!({"stream_id": id, "description": "mine now"});
    not_found(
        t.call(Method::PATCH, "/ssf/streams", intruder, Some(&body))
            .await,
    )
    .await;
    not_found(
        t.call(Method::PUT, "/ssf/streams", intruder, Some(&body))
            .await,
    )
    .await;
    not_found(
        t.call(
            Method::DELETE,
            &format!("/ssf/streams?stream_id={id}"),
            intruder,
            None,
        )
        .await,
    )
    .await;
    not_found(
        t.call(
            Method::GET,
            &format!("/ssf/status?stream_id={id}"),
            intruder,
            None,
        )
        .await,
    )
    .await;
    not_found(
        t.call(
            Method::POST,
            "/ssf/status",
            intruder,
            Some(&json!({"stream_id": id, "status": "disabled"})),
        )
        .await,
    )
    .await;
    let subject =
        json!({"stream_id": id, "subject": {"format": "email", "email": "a@example.com"}});
    not_found(
        t.call(Method::POST, "/ssf/subjects/add", intruder, Some(&subject))
            .await,
    )
    .await;
    not_found(
        t.call(
            Method::POST,
            "/ssf/subjects/remove",
            intruder,
            Some(&subject),
        )
        .await,
    )
    .await;
    not_found(
        t.call(
            Method::POST,
            "/ssf/verify",
            intruder,
            Some(&json!({"stream_id": id})),
        )
        .await,
    )
    .await;
    not_found(
        t.call(
            Method::POST,
            &format!("/ssf/poll/{id}"),
            intruder,
            Some(&json!({"returnImmediately": true})),
        )
        .await,
    )
    .await;
    // Untouched, and still the owner's.
    let mine = t
        .call(
            Method::GET,
            &format!("/ssf/streams?stream_id={id}"),
            Some("idp"),
            None,
        )
        .await;
    assert_eq!(mine.status(), StatusCode::OK);
    assert_eq!(mine.json::<Value>().await.unwrap()["description"], "idp");
    let status: Value = t
        .call(
            Method::GET,
            &format!("/ssf/status?stream_id={id}"),
            Some("idp"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "enabled");
}
