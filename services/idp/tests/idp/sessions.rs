//! Sessions: once revoked, every token of the session is inactive and cannot be exchanged.

use serde_json::Value;

use crate::support::*;

#[tokio::test]
async fn a_revoked_session_kills_its_tokens_everywhere() {
    let app = spawn_app().await;
    let alice = app.sign_in("alice@example.com").await;
    let t1 = app
        .hop1(&alice.access_token, BANKING, &[balance("checking")])
        .await
        .unwrap()
        .access_token;
    assert_eq!(app.introspect(&t1).await["active"], true);
    let sid = claims_of(&alice.access_token).sid.unwrap();

    // Another user cannot see or end alice's session.
    let bob = app
        .device_token(&app.sign_in("bob@example.com").await)
        .await;
    let resp = app
        .http
        .post(format!("{}/api/sessions/{sid}/revoke", app.url))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    let phone = app.device_token(&alice).await;
    let mine: Vec<Value> = app
        .http
        .get(format!("{}/api/sessions", app.url))
        .bearer_auth(&phone)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(mine.iter().any(|s| s["id"] == sid.as_str()));
    let resp = app
        .http
        .post(format!("{}/api/sessions/{sid}/revoke", app.url))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"reason": "presenter pressed Kill session"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    for token in [&alice.access_token, &t1] {
        let intro = app.introspect(token).await;
        assert_eq!(intro, serde_json::json!({"active": false}));
    }
    let (error, description) = refused(
        app.agent("banking")
            .exchange(&t1, "verify-rar", &[balance("checking")])
            .await,
    );
    assert_eq!(error, "invalid_request");
    assert!(description.contains("session"), "{description}");
    let (error, _) = refused(
        app.hop1(&alice.access_token, BANKING, &[balance("checking")])
            .await,
    );
    assert_eq!(error, "invalid_request");
    let event = app.last_event("session_revoked").await;
    assert_eq!(event["reason"], "admin: presenter pressed Kill session");
}

#[tokio::test]
async fn revoking_an_access_token_makes_it_inactive() {
    let app = spawn_app().await;
    let alice = app.sign_in("alice@example.com").await;
    let t1 = app
        .hop1(&alice.access_token, BANKING, &[balance("checking")])
        .await
        .unwrap()
        .access_token;
    // The concierge holds T1 only as its issuer; banking (the audience) may revoke it.
    let assertion = app.identity("banking").actor_token(&app.url).unwrap();
    let resp = app
        .http
        .post(format!("{}/revoke", app.url))
        .form(&[
            ("token", t1.as_str()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(app.introspect(&t1).await["active"], false);
    assert_eq!(
        app.introspect(&alice.access_token).await["active"],
        true,
        "only that token"
    );
}

#[tokio::test]
async fn introspection_requires_client_authentication() {
    let app = spawn_app().await;
    let resp = app
        .http
        .post(format!("{}/introspect", app.url))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    let resp = app
        .http
        .post(format!("{}/introspect", app.url))
        .basic_auth("verify-rar", Some("wrong-secret-123"))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn every_decision_is_published_on_the_security_events_channel() {
    let app = spawn_app().await;
    let published = kit::pg::listen(&app.db_url, kit::events::CHANNEL).unwrap();
    let mut rx = published.subscribe();
    // Give the LISTEN connection a moment to subscribe before the decision is made.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let alice = app.sign_in("alice@example.com").await;
    let t1 = app
        .hop1(&alice.access_token, BANKING, &[balance("checking")])
        .await
        .unwrap()
        .access_token;
    let jti = claims_of(&t1).jti;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let payload = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("the exchange was published")
            .unwrap();
        let event: Value = serde_json::from_str(&payload).unwrap();
        if event["jti"] == jti.as_str() {
            assert_eq!(event["type"], "token_exchange");
            assert_eq!(event["service"], "idp");
            assert!(event["duration_ms"].as_f64().is_some());
            break;
        }
    }
}
