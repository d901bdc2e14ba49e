//! Delivery: verification by push and by poll, a session-revoked event reaching every receiver
//! that asked for it, the SET format on the wire, long polls, paused and disabled streams,
//! removed subjects.

use std::time::Duration;

use kit::ssf::{EventType, StreamStatus, SubjectId};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestReceiver, Transmitter, decode, session_revoked};

#[tokio::test]
async fn a_push_receiver_gets_its_verification_by_push() {
    let t = Transmitter::spawn().await;
    let r = TestReceiver::push(&t, "idp", "idp", &[EventType::SessionRevoked]).await;
    let stream = r.receiver.stream().unwrap();
    assert_eq!(stream.delivery.method, kit::ssf::PUSH);
    assert_eq!(
        stream.delivery.endpoint_url.as_deref(),
        Some(r.push_url.as_str())
    );
    let state = r.receiver.request_verification().await.unwrap();
    let got = r.wait_for(EventType::Verification, 1).await;
    assert_eq!(got[0].claims.state.as_deref(), Some(state.as_str()));
    assert_eq!(got[0].sub_id, SubjectId::opaque(r.stream_id()));
    assert_eq!(got[0].iss, t.url);
    wait_state(&t, &r.stream_id(), EventType::Verification, "delivered").await;
}

#[tokio::test]
async fn a_poll_receiver_gets_its_verification_by_poll_and_acknowledges_it() {
    let t = Transmitter::spawn().await;
    let r = TestReceiver::poll(&t, "verify-rar", "verify-rar", &[EventType::SessionRevoked]).await;
    let stream = r.receiver.stream().unwrap();
    assert_eq!(stream.delivery.method, kit::ssf::POLL);
    assert_eq!(
        stream.delivery.endpoint_url,
        Some(format!("{}/ssf/poll/{}", t.url, r.stream_id()))
    );
    let state = r.receiver.request_verification().await.unwrap();
    // A long poll: the SET may be queued just after the request arrives.
    assert_eq!(r.receiver.poll_once(false).await.unwrap(), 1);
    let got = r.received(EventType::Verification);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].claims.state.as_deref(), Some(state.as_str()));
    // Not acknowledged yet: still pending, offered again until acknowledged.
    assert_eq!(
        t.set_states(&r.stream_id(), EventType::Verification).await,
        ["pending"]
    );
    // The next poll carries the ack; a duplicate offered meanwhile is not acted on twice.
    assert_eq!(r.receiver.poll_once(true).await.unwrap(), 0);
    assert_eq!(
        t.set_states(&r.stream_id(), EventType::Verification).await,
        ["delivered"]
    );
    assert_eq!(r.received(EventType::Verification).len(), 1);
}

#[tokio::test]
async fn a_revoked_session_reaches_every_receiver_that_asked_for_it() {
    let t = Transmitter::spawn().await;
    let idp = TestReceiver::push(&t, "idp", "idp", &[EventType::SessionRevoked]).await;
    let rar =
        TestReceiver::push(&t, "verify-rar", "verify-rar", &[EventType::SessionRevoked]).await;
    let bystander =
        TestReceiver::push(&t, "banking", "banking", &[EventType::CredentialChange]).await;

    let resp = t
        .send_event(&session_revoked("alice@example.com", "sid-alice-1"))
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["sets"], 2, "{body}");

    let a = idp.wait_for(EventType::SessionRevoked, 1).await.remove(0);
    let b = rar.wait_for(EventType::SessionRevoked, 1).await.remove(0);
    for (e, stream) in [(&a, idp.stream_id()), (&b, rar.stream_id())] {
        assert_eq!(
            e.sub_id,
            SubjectId::session_of(SubjectId::email("alice@example.com"), "sid-alice-1")
        );
        assert_eq!(e.sub_id.session_id(), Some("sid-alice-1"));
        assert_eq!(
            e.claims.reason_admin_text(),
            Some("revoked from the admin console")
        );
        assert_eq!(e.claims.initiating_entity.as_deref(), Some("admin"));
        assert_eq!(e.claims.event_timestamp, Some(1_767_225_600));
        assert_eq!(e.stream_id, stream);
        assert_eq!(e.txn.as_deref(), body["txn"].as_str());
    }
    assert_ne!(a.jti, b.jti, "one SET per stream");

    // The same with the user named by issuer and subject.
    let by_sub = json!({
        "type": "session-revoked",
        "subject": {"format": "complex",
                    "user": {"format": "iss_sub", "iss": "http://idp.test", "sub": "user-42"},
                    "session": {"format": "opaque", "id": "sid-42"}},
        "reason_admin": "three denied exchanges in a minute",
        "initiating_entity": "policy"
    });
    assert_eq!(t.send_event(&by_sub).await.status(), StatusCode::ACCEPTED);
    let e = idp.wait_for(EventType::SessionRevoked, 2).await.remove(1);
    assert_eq!(
        e.sub_id,
        SubjectId::session_of(SubjectId::iss_sub("http://idp.test", "user-42"), "sid-42")
    );
    assert_eq!(e.claims.initiating_entity.as_deref(), Some("policy"));
    assert_eq!(
        e.claims.reason_admin_text(),
        Some("three denied exchanges in a minute")
    );
    assert!(
        e.claims.event_timestamp.is_some(),
        "stamped when the source gave none"
    );
    rar.wait_for(EventType::SessionRevoked, 2).await;
    assert!(bystander.received(EventType::SessionRevoked).is_empty());
}

#[tokio::test]
async fn other_caep_events_carry_their_required_members() {
    let t = Transmitter::spawn().await;
    let r = TestReceiver::push(
        &t,
        "idp",
        "idp",
        &[
            EventType::CredentialChange,
            EventType::TokenClaimsChange,
            EventType::AssuranceLevelChange,
        ],
    )
    .await;
    let alice = json!({"format": "email", "email": "alice@example.com"});
    for (body, kind) in [
        (
            json!({"type": "credential-change", "subject": alice, "credential_type": "password",
                   "change_type": "update", "initiating_entity": "user"}),
            EventType::CredentialChange,
        ),
        (
            json!({"type": "token-claims-change", "subject": alice, "claims": {"role": "reader"}}),
            EventType::TokenClaimsChange,
        ),
        (
            json!({"type": "assurance-level-change", "subject": alice, "namespace": "NIST-AAL",
                   "current_level": "nist-aal2", "previous_level": "nist-aal1",
                   "change_direction": "increase"}),
            EventType::AssuranceLevelChange,
        ),
    ] {
        let resp = t.send_event(&body).await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED, "{body}");
        let e = r.wait_for(kind, 1).await.remove(0);
        assert_eq!(e.sub_id, SubjectId::email("alice@example.com"));
        match kind {
            EventType::CredentialChange => {
                assert_eq!(e.claims.credential_type.as_deref(), Some("password"));
                assert_eq!(e.claims.change_type.as_deref(), Some("update"));
            }
            EventType::TokenClaimsChange => {
                assert_eq!(e.claims.claims.as_ref().unwrap()["role"], "reader");
            }
            _ => {
                assert_eq!(e.claims.namespace.as_deref(), Some("NIST-AAL"));
                assert_eq!(e.claims.current_level.as_deref(), Some("nist-aal2"));
                assert_eq!(e.claims.change_direction.as_deref(), Some("increase"));
            }
        }
    }
    // A source event missing a required member, or of a type the source may not raise, is a 400.
    for bad in [
        json!({"type": "credential-change", "subject": alice, "credential_type": "password"}),
        json!({"type": "verification", "subject": alice}),
        json!({"type": "session-revoked", "subject": alice, "initiating_entity": "robot"}),
        json!({"type": "session-revoked", "subject": alice, "reason_admn": "typo"}),
        json!({"type": "session-revoked", "subject": {"format": "complex"}}),
    ] {
        assert_eq!(
            t.send_event(&bad).await.status(),
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn sets_on_the_wire_follow_rfc_8417_and_the_ssf_profile() {
    let t = Transmitter::spawn().await;
    let created: Value = t
        .call(
            Method::POST,
            "/ssf/streams",
            Some("banking"),
            Some(&json!({"events_requested": [EventType::SessionRevoked.uri()]})),
        )
        .await
        .json()
        .await
        .unwrap();
    let poll_url = created["delivery"]["endpoint_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = t
        .send_event(&session_revoked("bob@example.com", "sid-bob"))
        .await;
    let txn = resp.json::<Value>().await.unwrap()["txn"].clone();
    let polled: Value = t
        .http
        .post(&poll_url)
        .bearer_auth(crate::support::token("banking"))
        .json(&json!({"returnImmediately": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(polled["moreAvailable"], false);
    let sets = polled["sets"].as_object().unwrap();
    assert_eq!(sets.len(), 1);
    let (jti, token) = sets.iter().next().unwrap();
    let token = token.as_str().unwrap();

    let (header, claims) = decode(token);
    assert_eq!(header["typ"], "secevent+jwt");
    assert_eq!(header["alg"], "RS256");
    let jwks: Value = t
        .http
        .get(format!("{}/jwks", t.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(header["kid"], jwks["keys"][0]["kid"]);
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwks["keys"][0].clone()).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.validate_exp = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(),
        &v,
    )
    .expect("signed by the published key");

    assert_eq!(claims["iss"], t.url.as_str());
    assert_eq!(claims["aud"], "banking");
    assert_eq!(&claims["jti"], jti);
    assert_eq!(claims["txn"], txn);
    assert!(claims["iat"].as_i64().is_some());
    assert!(claims.get("sub").is_none(), "no sub: {claims}");
    assert!(claims.get("exp").is_none(), "no exp: {claims}");
    assert_eq!(
        claims["sub_id"],
        json!({"format": "complex", "user": {"format": "email", "email": "bob@example.com"},
               "session": {"format": "opaque", "id": "sid-bob"}})
    );
    let events = claims["events"].as_object().unwrap();
    assert_eq!(events.len(), 1);
    let event = &events[&EventType::SessionRevoked.uri()];
    assert_eq!(event["initiating_entity"], "admin");
    assert_eq!(
        event["reason_admin"],
        json!({"en": "revoked from the admin console"})
    );
    assert!(
        event.get("subject").is_none(),
        "the subject is sub_id, not in the event"
    );

    // Acknowledged, it is not offered again; an empty long poll ends within its bound.
    let after: Value = t
        .http
        .post(&poll_url)
        .bearer_auth(crate::support::token("banking"))
        .json(&json!({"ack": [jti]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after["sets"], json!({}));
    // A bad poll request is a 400.
    let bad = t
        .http
        .post(&poll_url)
        .bearer_auth(crate::support::token("banking"))
        .json(&json!({"maxEvents": -1}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_long_poll_is_answered_as_soon_as_an_event_arrives() {
    let t = Transmitter::spawn().await;
    let r = TestReceiver::poll(&t, "idp", "idp", &[EventType::SessionRevoked]).await;
    let receiver = r.receiver.clone();
    let waiting = tokio::spawn(async move { receiver.poll_once(false).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "the poll waits for events");
    t.send_event(&session_revoked("alice@example.com", "s1"))
        .await;
    assert_eq!(waiting.await.unwrap().unwrap(), 1);
    assert_eq!(r.received(EventType::SessionRevoked).len(), 1);
}

#[tokio::test]
async fn a_paused_stream_holds_events_until_enabled_and_a_disabled_one_drops_them() {
    let t = Transmitter::spawn().await;
    let r = TestReceiver::push(&t, "idp", "idp", &[EventType::SessionRevoked]).await;
    r.receiver
        .set_status(StreamStatus::Paused, Some("maintenance"))
        .await
        .unwrap();
    for sid in ["held-1", "held-2"] {
        let body: Value = t
            .send_event(&session_revoked("alice@example.com", sid))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(body["sets"], 1, "a paused stream still collects events");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        r.received(EventType::SessionRevoked).is_empty(),
        "held while paused"
    );
    assert_eq!(
        t.set_states(&r.stream_id(), EventType::SessionRevoked)
            .await,
        ["pending", "pending"]
    );

    r.receiver
        .set_status(StreamStatus::Enabled, None)
        .await
        .unwrap();
    let got = r.wait_for(EventType::SessionRevoked, 2).await;
    let order: Vec<_> = got.iter().map(|e| e.sub_id.session_id().unwrap()).collect();
    assert_eq!(order, ["held-1", "held-2"], "held events go out in order");
    // Each change of status was announced to the stream, once it could hear it.
    let updates = r.wait_for(EventType::StreamUpdated, 2).await;
    let statuses: Vec<_> = updates
        .iter()
        .map(|e| e.claims.status.clone().unwrap())
        .collect();
    assert_eq!(statuses, ["paused", "enabled"]);
    assert_eq!(updates[0].claims.reason.as_deref(), Some("maintenance"));

    r.receiver
        .set_status(StreamStatus::Disabled, None)
        .await
        .unwrap();
    let body: Value = t
        .send_event(&session_revoked("alice@example.com", "dropped"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["sets"], 0, "a disabled stream gets nothing");
    r.receiver
        .set_status(StreamStatus::Enabled, None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(r.received(EventType::SessionRevoked).len(), 2);
}

#[tokio::test]
async fn a_removed_subject_is_not_sent_to_that_stream() {
    let t = Transmitter::spawn().await;
    let r = TestReceiver::push(&t, "idp", "idp", &[EventType::SessionRevoked]).await;
    let resp = t
        .call(
            Method::POST,
            "/ssf/subjects/remove",
            Some("idp"),
            Some(&json!({"stream_id": r.stream_id(),
                         "subject": {"format": "email", "email": "bob@example.com"}})),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let bob: Value = t
        .send_event(&session_revoked("bob@example.com", "sid-bob"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bob["sets"], 0);
    let alice: Value = t
        .send_event(&session_revoked("alice@example.com", "sid-alice"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(alice["sets"], 1);
    let got = r.wait_for(EventType::SessionRevoked, 1).await;
    assert_eq!(got[0].sub_id.email_address(), Some("alice@example.com"));
}

#[tokio::test]
async fn a_restarted_receiver_reuses_its_stream() {
    let t = Transmitter::spawn().await;
    let first = TestReceiver::push(&t, "idp", "idp", &[EventType::SessionRevoked]).await;
    let again = TestReceiver::push(&t, "idp", "idp", &[EventType::SessionRevoked]).await;
    assert_eq!(first.stream_id(), again.stream_id());
    // The stream now pushes to the new process, with the new process's secret.
    t.send_event(&session_revoked("alice@example.com", "s"))
        .await;
    again.wait_for(EventType::SessionRevoked, 1).await;
    assert!(first.received(EventType::SessionRevoked).is_empty());
}

/// Waits until the stream's SETs of `kind` are all in `state`.
async fn wait_state(t: &Transmitter, stream_id: &str, kind: EventType, state: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let states = t.set_states(stream_id, kind).await;
        if !states.is_empty() && states.iter().all(|s| s == state) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{states:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
