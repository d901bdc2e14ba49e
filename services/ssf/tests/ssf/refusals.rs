//! What a `kit::ssf::Receiver` refuses at its push endpoint, each with its RFC 8935 error, and
//! the one thing it accepts without acting: a replayed `jti` (202, the callback is not called
//! again: at-least-once delivery makes duplicates normal, so they are not errors).

use base64::Engine as _;
use kit::{
    claims::Audience,
    ssf::{EventClaims, EventType, RsaSigningKey, SET_MEDIA_TYPE, SetClaims, SubjectId},
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestReceiver, Transmitter, expect_set_error};

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

fn revoked(t: &Transmitter, aud: &str, sid: &str) -> SetClaims {
    SetClaims::new(
        &t.url,
        Audience::one(aud),
        Some("txn-1".into()),
        SubjectId::session_of(SubjectId::email("alice@example.com"), sid),
        EventType::SessionRevoked,
        &EventClaims::default(),
    )
}

#[tokio::test]
async fn forged_wrong_and_malformed_sets_are_refused_with_rfc_8935_errors() {
    let t = Transmitter::spawn().await;
    let r = TestReceiver::push(&t, "idp", "idp", &[EventType::SessionRevoked]).await;
    let auth = r.push_authorization(&t).await;
    let key = t.key();
    let push = |token: String| r.push_raw(&auth, SET_MEDIA_TYPE, token);

    // The genuine article is accepted: 202, empty body.
    let good = key.sign(&revoked(&t, "idp", "s-good")).unwrap();
    let resp = push(good.clone()).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert!(resp.bytes().await.unwrap().is_empty());
    assert_eq!(r.received(EventType::SessionRevoked).len(), 1);

    // Replayed: accepted again, not acted on again.
    let resp = push(good.clone()).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(r.received(EventType::SessionRevoked).len(), 1);

    // Forged: another key (its kid is not in the transmitter's JWKS)...
    let forger = RsaSigningKey::generate().unwrap();
    expect_set_error(
        push(forger.sign(&revoked(&t, "idp", "s1")).unwrap()).await,
        "invalid_key",
    )
    .await;
    // ...or the transmitter's kid over a changed payload.
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let mut claims = crate::support::decode(&good).1;
    claims["sub_id"]["session"]["id"] = json!("someone-elses-session");
    claims["jti"] = json!("fresh-jti");
    parts[1] = b64(&claims);
    expect_set_error(push(parts.join(".")).await, "invalid_key").await;
    // ...or no signature at all.
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "secevent+jwt"})),
        parts[1]
    );
    expect_set_error(push(none).await, "invalid_key").await;

    // For another audience, from another issuer.
    expect_set_error(
        push(key.sign(&revoked(&t, "verify-rar", "s2")).unwrap()).await,
        "invalid_audience",
    )
    .await;
    let mut other_iss = revoked(&t, "idp", "s3");
    other_iss.iss = "http://evil.example".into();
    expect_set_error(push(key.sign(&other_iss).unwrap()).await, "invalid_issuer").await;

    // A stream event for another stream (right key, issuer and audience).
    let other_stream = SetClaims::new(
        &t.url,
        Audience::one("idp"),
        None,
        SubjectId::opaque("another-stream-id"),
        EventType::Verification,
        &EventClaims::default(),
    );
    let body = expect_set_error(
        push(key.sign(&other_stream).unwrap()).await,
        "invalid_audience",
    )
    .await;
    assert!(
        body["description"]
            .as_str()
            .unwrap()
            .contains("another stream")
    );

    // A verification this receiver never asked for.
    let unasked = SetClaims::new(
        &t.url,
        Audience::one("idp"),
        None,
        SubjectId::opaque(r.stream_id()),
        EventType::Verification,
        &EventClaims {
            state: Some("never-asked".into()),
            ..EventClaims::default()
        },
    );
    expect_set_error(push(key.sign(&unasked).unwrap()).await, "invalid_state").await;

    // Outside the SSF profile: a sub, an exp, two events, no sub_id, an unknown event type.
    let base = serde_json::to_value(revoked(&t, "idp", "s4")).unwrap();
    type Change = Box<dyn Fn(&mut Value)>;
    let variants: Vec<Change> = vec![
        Box::new(|c| c["sub"] = json!("alice")),
        Box::new(|c| c["exp"] = json!(kit::now_secs() + 60)),
        Box::new(|c| c["events"][EventType::CredentialChange.uri()] = json!({})),
        Box::new(|c| {
            c.as_object_mut().unwrap().remove("sub_id");
        }),
        Box::new(|c| c["events"] = json!({"https://example.com/event/unknown": {}})),
    ];
    for change in variants {
        let mut c = base.clone();
        c["jti"] = json!(kit::random_id(8));
        change(&mut c);
        expect_set_error(push(key.sign(&c).unwrap()).await, "invalid_request").await;
    }
    // Not typed as a SET (the header is checked before the signature).
    let mut typed: Vec<String> = good.split('.').map(str::to_owned).collect();
    typed[0] = b64(&json!({"alg": "RS256", "typ": "JWT", "kid": key.kid()}));
    expect_set_error(push(typed.join(".")).await, "invalid_request").await;
    expect_set_error(push("not a jwt".into()).await, "invalid_request").await;

    // Wrong media type, wrong credentials.
    let fresh = key.sign(&revoked(&t, "idp", "s5")).unwrap();
    expect_set_error(
        r.push_raw(&auth, "application/json", fresh.clone()).await,
        "invalid_request",
    )
    .await;
    expect_set_error(
        r.push_raw(
            "Bearer not-the-streams-secret",
            SET_MEDIA_TYPE,
            fresh.clone(),
        )
        .await,
        "authentication_failed",
    )
    .await;

    // None of them reached the service; the genuine one still does.
    assert_eq!(r.received(EventType::SessionRevoked).len(), 1);
    assert!(r.received(EventType::Verification).is_empty());
    assert_eq!(push(fresh).await.status(), StatusCode::ACCEPTED);
    assert_eq!(r.received(EventType::SessionRevoked).len(), 2);
}

#[tokio::test]
async fn a_receiver_that_has_not_started_asks_the_transmitter_to_retry() {
    let t = Transmitter::spawn().await;
    let r = TestReceiver::push(&t, "idp", "idp", &[EventType::SessionRevoked]).await;
    let auth = r.push_authorization(&t).await;
    // A second instance for the same stream, serving before its start-up finished.
    let early = kit::ssf::Receiver::new(
        crate::support::http(),
        kit::ssf::ReceiverConfig {
            transmitter: t.url.clone(),
            token: crate::support::token("idp").into(),
            description: "idp".into(),
            delivery: kit::ssf::Delivery::Poll,
            events: vec![EventType::SessionRevoked],
        },
        |_| async { Ok(()) },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ssf/events", listener.local_addr().unwrap());
    let app = early.router("/ssf/events");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let token = t.key().sign(&revoked(&t, "idp", "s")).unwrap();
    let resp = crate::support::http()
        .post(url)
        .header("authorization", auth)
        .header("content-type", SET_MEDIA_TYPE)
        .body(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn a_failing_callback_gets_the_set_again() {
    let t = Transmitter::spawn().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ssf/events", listener.local_addr().unwrap());
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = calls.clone();
    let receiver = kit::ssf::Receiver::new(
        crate::support::http(),
        kit::ssf::ReceiverConfig {
            transmitter: t.url.clone(),
            token: crate::support::token("idp").into(),
            description: "flaky".into(),
            delivery: kit::ssf::Delivery::Push { endpoint_url: url },
            events: vec![EventType::SessionRevoked],
        },
        move |_| {
            let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                anyhow::ensure!(n > 0, "the database is down");
                Ok(())
            }
        },
    );
    let app = receiver.router("/ssf/events");
    tokio::spawn(async move { axum::serve(listener, app).await });
    receiver.start().await.unwrap();
    t.send_event(&crate::support::session_revoked("a@example.com", "s"))
        .await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let stream = receiver.stream_id().unwrap();
    loop {
        if t.set_states(&stream, EventType::SessionRevoked).await == ["delivered"] {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "failed once, then acted once"
    );
}
