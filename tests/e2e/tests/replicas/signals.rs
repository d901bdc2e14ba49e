//! The signals transmitter as replicas: streams, SETs and acknowledgements live in Postgres, and
//! both idps' outboxes feed it without sending a revocation twice.

use std::time::Duration;

use serde_json::{Value, json};

use crate::cluster::Cluster;

const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";

/// One poll at `ssf` (RFC 8936, returning at once), acknowledging `ack`: `{jti: claims}`.
async fn poll(
    c: &Cluster,
    ssf: &str,
    token: &str,
    stream: &str,
    ack: &[String],
) -> Vec<(String, Value)> {
    let resp =
        c.p.http
            .post(format!("{ssf}/ssf/poll/{stream}"))
            .bearer_auth(token)
            .json(&json!({"returnImmediately": true, "maxEvents": 100, "ack": ack}))
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), 200, "poll at {ssf}");
    let body: Value = resp.json().await.unwrap();
    body["sets"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(jti, set)| (jti.clone(), e2e::claims(set.as_str().unwrap())))
        .collect()
}

/// The session-revoked SETs among `sets` naming session `sid`.
fn revoked(sets: &[(String, Value)], sid: &str) -> Vec<String> {
    sets.iter()
        .filter(|(_, c)| {
            c["events"].get(SESSION_REVOKED).is_some() && c["sub_id"].to_string().contains(sid)
        })
        .map(|(jti, _)| jti.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn revocations_reach_a_receiver_once_through_either_transmitter() {
    let c = Cluster::start().await;
    let [ssf_a, ssf_b] = &c.ssfs;
    // The UI's receiver slot, unused by any service: a poll stream made on B.
    let token = c.p.stack.signal_tokens.of("web").unwrap().to_owned();
    let resp =
        c.p.http
            .post(format!("{ssf_b}/ssf/streams"))
            .bearer_auth(&token)
            .json(&json!({"events_requested": [SESSION_REVOKED], "description": "replicas test"}))
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), 201);
    let stream: Value = resp.json().await.unwrap();
    let id = stream["stream_id"].as_str().unwrap().to_owned();
    assert_eq!(
        stream["iss"],
        json!(c.ssfs[0]),
        "B publishes the shared transmitter URL"
    );
    let on_a: Value =
        c.p.http
            .get(format!("{ssf_a}/ssf/streams"))
            .query(&[("stream_id", &id)])
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(on_a["stream_id"], json!(id), "A serves the stream B made");

    // Two sessions, one revoked through each idp.
    let alice = c.sign_in("alice@example.com").await;
    let bob = c.sign_in("bob@example.com").await;
    for (idp, user) in c.idps.iter().zip([&alice, &bob]) {
        let r =
            c.p.http
                .post(format!("{idp}/api/sessions/{}/revoke", user.sid))
                .bearer_auth(&user.device_token)
                .json(&json!({"reason": "replicas test"}))
                .send()
                .await
                .unwrap();
        assert_eq!(r.status(), 200);
    }

    // Polls alternate between the transmitters until both revocations arrived, then a while
    // longer: a second SET for either would be a revocation sent twice.
    let mut seen: Vec<(String, Value)> = vec![];
    for i in 0..100 {
        let ssf = &c.ssfs[i % 2];
        for set in poll(&c, ssf, &token, &id, &[]).await {
            if !seen.iter().any(|(j, _)| *j == set.0) {
                seen.push(set);
            }
        }
        if !revoked(&seen, &alice.sid).is_empty() && !revoked(&seen, &bob.sid).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for set in poll(&c, ssf_b, &token, &id, &[]).await {
        if !seen.iter().any(|(j, _)| *j == set.0) {
            seen.push(set);
        }
    }
    assert_eq!(
        revoked(&seen, &alice.sid).len(),
        1,
        "alice's revocation (through idp A), once: {seen:#?}"
    );
    assert_eq!(
        revoked(&seen, &bob.sid).len(),
        1,
        "bob's revocation (through idp B), once: {seen:#?}"
    );

    // Acknowledged at A, gone from B.
    let all: Vec<String> = seen.iter().map(|(j, _)| j.clone()).collect();
    poll(&c, ssf_a, &token, &id, &all).await;
    let left = poll(&c, ssf_b, &token, &id, &[]).await;
    assert!(
        left.iter().all(|(j, _)| !all.contains(j)),
        "acknowledged SETs are not offered again by the other transmitter: {left:#?}"
    );
}
