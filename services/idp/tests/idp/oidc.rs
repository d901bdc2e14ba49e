//! Sign-in: discovery, the authorization code flow with PKCE, refresh rotation, userinfo.

use serde_json::Value;

use crate::support::*;

#[tokio::test]
async fn discovery_documents_name_the_issuer_clients_use() {
    let app = spawn_app().await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let doc: Value = app
            .http
            .get(format!("{}{path}", app.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(doc["issuer"], app.url.as_str());
        assert_eq!(
            doc["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert!(
            doc["grant_types_supported"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g == "urn:ietf:params:oauth:grant-type:token-exchange")
        );
    }
    let jwks: Value = app
        .http
        .get(format!("{}/jwks", app.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kid"], app.idp_key().kid());
    assert_eq!(jwks["keys"][0]["crv"], "P-256");
}

#[tokio::test]
async fn code_flow_with_pkce_signs_alice_in() {
    let app = spawn_app().await;
    let (verifier, challenge) = pkce();
    let resp = app
        .submit_login("alice@example.com", idp::DEMO_PASSWORD, &challenge)
        .await;
    assert_eq!(resp.status(), 303);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(REDIRECT));
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-123"));
    assert_eq!(
        query_param(&location, "iss").as_deref(),
        Some(app.url.as_str())
    );
    let code = query_param(&location, "code").unwrap();
    let resp = app.redeem(&code, &verifier).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    let access = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(access.email.as_deref(), Some("alice@example.com"));
    assert_eq!(
        access.may_act.as_ref().map(|m| m.sub.as_str()),
        Some(CONCIERGE),
        "only the concierge may delegate"
    );
    assert!(access.aud.contains(CONCIERGE));
    assert!(access.sid.is_some());
    let (_, id) = kit::jwt::decode_unverified(body["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(id["nonce"], "n-456");
    assert_eq!(id["aud"], "web");
    // The code is single use.
    let again: Value = app.redeem(&code, &verifier).await.json().await.unwrap();
    assert_eq!(again["error"], "invalid_grant");
}

#[tokio::test]
async fn a_wrong_code_verifier_fails() {
    let app = spawn_app().await;
    let (_, challenge) = pkce();
    let resp = app
        .submit_login("alice@example.com", idp::DEMO_PASSWORD, &challenge)
        .await;
    let code = query_param(resp.headers()["location"].to_str().unwrap(), "code").unwrap();
    let (other_verifier, _) = pkce();
    let resp = app.redeem(&code, &other_verifier).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("www-authenticate").is_none());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn a_wrong_password_shows_the_form_again_and_is_recorded() {
    let app = spawn_app().await;
    let (_, challenge) = pkce();
    let resp = app
        .submit_login("alice@example.com", "not-her-password", &challenge)
        .await;
    assert_eq!(resp.status(), 401);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("Wrong email or password")
    );
    let event = app.last_event("login").await;
    assert_eq!(event["outcome"], "denied");
}

#[tokio::test]
async fn plain_pkce_and_unknown_redirects_are_refused() {
    let app = spawn_app().await;
    let base = [
        ("response_type", "code"),
        ("client_id", "web"),
        ("scope", "openid"),
    ];
    let mut q = base.to_vec();
    q.extend([
        ("redirect_uri", REDIRECT),
        ("code_challenge", "abc"),
        ("code_challenge_method", "plain"),
    ]);
    let resp = app
        .http
        .get(format!("{}/authorize", app.url))
        .query(&q)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(
        query_param(resp.headers()["location"].to_str().unwrap(), "error").as_deref(),
        Some("invalid_request")
    );
    let mut q = base.to_vec();
    q.extend([
        ("redirect_uri", "https://evil.example/cb"),
        ("code_challenge", "x"),
        ("code_challenge_method", "S256"),
    ]);
    let resp = app
        .http
        .get(format!("{}/authorize", app.url))
        .query(&q)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "never redirect to an unregistered URI");
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_refresh_token_kills_the_session() {
    let app = spawn_app().await;
    let tokens = app.sign_in("alice@example.com").await;
    let first: Value = app
        .refresh(&tokens.refresh_token, None)
        .await
        .json()
        .await
        .unwrap();
    assert!(first["access_token"].is_string());
    let replay: Value = app
        .refresh(&tokens.refresh_token, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(replay["error"], "invalid_grant");
    // The thief's replay ended the session: the rotated token and the access token die with it.
    let after: Value = app
        .refresh(first["refresh_token"].as_str().unwrap(), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["error"], "invalid_grant");
    assert_eq!(app.introspect(&tokens.access_token).await["active"], false);
}

#[tokio::test]
async fn userinfo_answers_for_the_users_own_token() {
    let app = spawn_app().await;
    let tokens = app.sign_in("bob@example.com").await;
    let info: Value = app
        .http
        .get(format!("{}/userinfo", app.url))
        .bearer_auth(&tokens.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["email"], "bob@example.com");
    assert!(!tokens.id_token.is_empty());
}

#[tokio::test]
async fn malformed_token_requests_get_oauth_errors() {
    let app = spawn_app().await;
    let url = format!("{}/token", app.url);
    let json_body = app
        .http
        .post(&url)
        .json(&serde_json::json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body.status(), 400);
    assert_eq!(
        json_body.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let repeated = app
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=a&grant_type=b")
        .send()
        .await
        .unwrap();
    assert_eq!(
        repeated.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let unknown = app
        .http
        .post(&url)
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        unknown.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
    let huge = app
        .http
        .post(&url)
        .form(&[("grant_type", "x".repeat(200_000))])
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 400);
    assert_eq!(
        huge.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
}
