//! The web UI's security and input handling over plain HTTP, against the whole platform: who
//! may see what, CSRF, what never reaches a page (tokens), the cookie's flags, the sign-in's
//! `state` and redirect checks, malformed input, and the live stream carrying every service's
//! events and the revocation banner.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly where it stands"
)]

use e2e::Platform;

#[tokio::test]
async fn the_ui_guards_its_pages_forms_and_tokens() {
    let p = Platform::start().await;
    let web = p.stack.urls.web.clone();
    let anon = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // Signed out: pages send you to sign in; htmx requests are told to; nothing is served.
    for path in [
        "/",
        "/phone",
        "/live",
        "/forensics?jti=x",
        "/inspect/me",
        "/present",
    ] {
        let r = anon.get(format!("{web}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 303, "{path}");
        assert!(
            r.headers()["location"]
                .to_str()
                .unwrap()
                .starts_with("/auth/login"),
            "{path}"
        );
    }
    let r = anon
        .post(format!("{web}/chat"))
        .header("hx-request", "true")
        .form(&[("text", "Transfer $1,000 from checking to savings.")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["hx-redirect"], "/auth/login?then=%2F");

    // The session cookie is HttpOnly and SameSite; it holds an id, not a token.
    let r = anon.get(format!("{web}/auth/login")).send().await.unwrap();
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.starts_with("web_session="), "{set}");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    assert!(!set.contains("eyJ"), "{set}");
    // PKCE S256 and a state on the way to the idp.
    let to = r.headers()["location"].to_str().unwrap();
    assert!(
        to.contains("code_challenge_method=S256") && to.contains("state="),
        "{to}"
    );

    // A callback this browser did not start, or with another state, signs nobody in.
    let r = anon
        .get(format!("{web}/auth/callback?code=abc&state=forged"))
        .header("cookie", set.split(';').next().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Only our own paths after sign-in: never an open redirect.
    let r = anon
        .get(format!("{web}/auth/login?then=//evil.example/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);

    let s = p.web_sign_in(&web, "alice@example.com").await;
    let mut live = s.live().await;

    // CSRF: without the page's token, or with another, a form changes nothing.
    for token in [None, Some("not-the-token")] {
        let mut req = reqwest::Client::new()
            .post(format!("{web}/chat"))
            .header("cookie", &s.cookie)
            .form(&[("text", "Delete sarah.smith@example.com permanently.")]);
        if let Some(t) = token {
            req = req.header("x-csrf-token", t);
        }
        assert_eq!(req.send().await.unwrap().status(), 403);
    }
    assert!(
        p.service_events("concierge").await.is_empty(),
        "a forged form reached the concierge"
    );

    // Malformed input gets a plain answer, never a 500.
    assert_eq!(s.post("/chat", &[("text", "")]).await.status(), 422);
    assert_eq!(
        s.post("/chat", &[("text", &"x".repeat(1001))])
            .await
            .status(),
        422
    );
    assert_eq!(s.post("/chat", &[("text", "a\u{0}b")]).await.status(), 422);
    assert_eq!(s.post("/chat", &[("nope", "x")]).await.status(), 422);
    // An attack toggle that does not exist never reaches the concierge.
    for id in ["steal_everything", "<script>"] {
        let r = s.post("/chat", &[("attack", id)]).await;
        assert_eq!(r.status(), 422, "{id}");
        assert!(!r.text().await.unwrap().contains("<script>"), "escaped");
    }
    // On a connection of its own: the UI answers 413 without reading the body and closes the
    // connection, which a pooled client could otherwise pick for the next request.
    assert_eq!(
        reqwest::Client::new()
            .post(format!("{web}/chat"))
            .header("cookie", &s.cookie)
            .header("x-csrf-token", &s.csrf)
            .form(&[("text", "x".repeat(64 * 1024))])
            .send()
            .await
            .unwrap()
            .status(),
        413
    );
    assert_eq!(s.post("/approvals/..%2F/approve", &[]).await.status(), 404);
    assert_eq!(s.post("/approvals/apr_x/explode", &[]).await.status(), 404);
    assert_eq!(
        s.post("/approvals/apr_nope/approve", &[]).await.status(),
        409
    );
    assert_eq!(s.get("/inspect/%00").await.status(), 404);
    assert_eq!(s.get("/inspect/nosuchjti").await.status(), 404);
    let f = s.get("/forensics?jti=%3Cscript%3E").await;
    assert_eq!(f.status(), 200);
    let body = f.text().await.unwrap();
    assert!(
        body.contains("not a token id") && !body.contains("<script>"),
        "escaped"
    );
    assert_eq!(s.get("/static/../Cargo.toml").await.status(), 404);
    assert_eq!(
        s.post("/present", &[("scenario", "s9")]).await.status(),
        404
    );

    // S2 through the UI: the refusal and the red event arrive on the live stream.
    assert_eq!(
        s.post(
            "/chat",
            &[("text", "Delete sarah.smith@example.com permanently.")]
        )
        .await
        .status(),
        200
    );
    let refused = live.wait("chat", "msg refused").await;
    assert!(refused.contains("never delegated"), "{refused}");
    let denied = live.wait("security", "event denied").await;
    assert!(denied.contains("policy_denied"), "{denied}");

    // No page carries a token: no compact JWT anywhere in what the browser is sent.
    for path in ["/", "/phone", "/inspect/me", "/present", "/forensics"] {
        let html = s.get(path).await.text().await.unwrap();
        assert!(
            !html.contains("eyJ"),
            "{path} carries something that looks like a JWT"
        );
    }

    // Kill session: revoked at the idp, the banner arrives through the SET, and the UI holds
    // no usable token of that session any more.
    assert_eq!(s.post("/session/kill", &[]).await.status(), 204);
    let banner = live.wait("banner", "Session revoked").await;
    assert!(banner.contains("killed from the console"), "{banner}");
    assert_eq!(
        s.post("/chat", &[("text", "What's my checking balance?")])
            .await
            .status(),
        200
    );
    let ended = live.wait("chat", "session has ended").await;
    assert!(ended.contains("msg failed"), "{ended}");
    assert!(
        p.query(
            "SELECT 1 FROM idp.sessions WHERE user_id = (SELECT id FROM idp.users WHERE email = 'alice@example.com') AND revoked_at IS NULL",
            &[]
        )
        .await
        .is_empty(),
        "alice's session is revoked at the idp"
    );
}
