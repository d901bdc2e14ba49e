//! The SCIM API: real HTTP, real tokens minted by the two real hops (the concierge for alice to
//! the iam agent, the iam agent to `scim`), approved on alice's phone where policy asks. Each
//! operation takes exactly its grant for exactly its target; everything else is refused in the
//! SCIM error shape.

use kit::{
    claims::{AccessClaims, Actor, Audience, MayAct},
    exchange::ExchangeError,
    rar::AuthorizationDetail,
};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::{Value, json};

use crate::support::*;

const SARAH: &str = "sarah.smith@example.com";
const BOB: &str = "bob@example.com";
const ALICE: &str = "alice@example.com";

fn list_users() -> AuthorizationDetail {
    AuthorizationDetail::operation(kit::rar::IAM, "list_users", std::iter::empty())
}

fn to_group(email: &str, group: &str) -> AuthorizationDetail {
    AuthorizationDetail::operation(
        kit::rar::IAM,
        "add_user_to_group",
        [("email", json!(email)), ("group", json!(group))],
    )
}

/// The token the iam agent holds for the SCIM API: the concierge's hop for the user to the iam
/// agent, then the iam agent's hop to `scim`, approved on the user's phone if policy asks.
async fn scim_token(
    app: &TestApp,
    user_token: &str,
    phone: &str,
    details: &[AuthorizationDetail],
) -> String {
    let t1 = app
        .hop1(user_token, IAM, details)
        .await
        .expect("hop 1 is delegation, tier 1");
    match app
        .agent("iam")
        .exchange(&t1.access_token, "scim", details)
        .await
    {
        Ok(t2) => t2.access_token,
        Err(ExchangeError::Pending(p)) => {
            let id = p.approval_id.clone().expect("approval id");
            assert_eq!(app.approve(phone, &id).await.status(), 200);
            app.agent("iam")
                .wait(p)
                .await
                .expect("approved")
                .access_token
        }
        Err(e) => panic!("hop 2 refused: {e}"),
    }
}

/// A token signed with the idp's own key for alice's live session, as the iam agent acting for
/// the concierge would hold it: for testing what the endpoints check when policy is bypassed.
fn forged(
    app: &TestApp,
    alice: &AccessClaims,
    aud: &str,
    details: Vec<AuthorizationDetail>,
) -> String {
    let now = kit::now_secs();
    app.forge(&AccessClaims {
        iss: app.url.clone(),
        sub: alice.sub.clone(),
        aud: Audience::one(aud),
        exp: now + 120,
        iat: now,
        jti: kit::random_id(8),
        sid: alice.sid.clone(),
        client_id: Some(IAM.into()),
        scope: None,
        email: alice.email.clone(),
        acr: None,
        auth_time: None,
        act: Some(Actor::nest(IAM, Some(&Actor::nest(CONCIERGE, None)))),
        may_act: None,
        authorization_details: Some(details),
        approval_id: None,
    })
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    /// An RFC 7644 error with this status (and `scimType`, if given), as application/scim+json.
    #[track_caller]
    fn scim_error(&self, status: u16, scim_type: Option<&str>) {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert_eq!(self.headers["content-type"], "application/scim+json");
        assert_eq!(
            self.body["schemas"],
            json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
        );
        assert_eq!(self.body["status"], status.to_string());
        assert!(self.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
        if let Some(t) = scim_type {
            assert_eq!(self.body["scimType"], t, "{}", self.body);
        }
    }
}

async fn scim(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Answer {
    let mut req = app
        .http
        .request(method, format!("{}/scim/v2{path}", app.url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/scim+json")
            .body(b.to_owned());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    };
    Answer {
        status,
        headers,
        body,
    }
}

fn filter(attribute: &str, value: &str) -> String {
    let f = format!(r#"{attribute} eq "{value}""#);
    format!(
        "?filter={}",
        url::form_urlencoded::byte_serialize(f.as_bytes()).collect::<String>()
    )
}

/// Finds a user's id by userName with a get_user grant for them (tier 1: no approval).
async fn user_id(app: &TestApp, user_token: &str, email: &str) -> String {
    let token = scim_token(app, user_token, "", &[iam("get_user", email)]).await;
    let a = scim(
        app,
        Method::GET,
        &format!("/Users{}", filter("userName", email)),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["totalResults"], 1);
    a.body["Resources"][0]["id"].as_str().unwrap().to_owned()
}

fn deactivate() -> String {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": false}],
    })
    .to_string()
}

fn add_member(user_id: &str) -> String {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": user_id}]}],
    })
    .to_string()
}

async fn cannot_sign_in(app: &TestApp, email: &str) -> bool {
    let (_, challenge) = pkce();
    app.submit_login(email, idp::DEMO_PASSWORD, &challenge)
        .await
        .status()
        != 303
}

/// The newest event of `kind` whose token was `jti`.
async fn event_for(app: &TestApp, jti: &str, kind: &str) -> Value {
    app.events(Some(jti))
        .await
        .into_iter()
        .find(|e| e["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} event for {jti}"))
}

#[tokio::test]
async fn sarah_is_created_and_read_back() {
    let app = spawn_app().await;
    let spc = scim(&app, Method::GET, "/ServiceProviderConfig", None, None).await;
    assert_eq!(spc.status, 200);
    assert_eq!(spc.body["patch"]["supported"], true);
    assert_eq!(
        spc.body["authenticationSchemes"][0]["type"],
        "oauthbearertoken"
    );

    let alice = app.sign_in(ALICE).await;
    let phone = app.device_token(&alice).await;
    let token = scim_token(
        &app,
        &alice.access_token,
        &phone,
        &[iam("create_user", SARAH), iam("get_user", SARAH)],
    )
    .await;
    let c = claims_of(&token);
    assert_eq!(c.aud, Audience::one("scim"));
    assert_eq!(c.chain_names(), ["iam", "concierge", ALICE]);
    assert!(c.approval_id.is_some(), "create_user is tier 2");

    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": SARAH,
        "name": {"givenName": "Sarah", "familyName": "Smith"},
        "displayName": "Sarah Smith",
        "emails": [{"value": SARAH, "type": "work", "primary": true}],
        "active": true,
    })
    .to_string();
    let created = scim(&app, Method::POST, "/Users", Some(&token), Some(&body)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.headers["content-type"], "application/scim+json");
    let u = &created.body;
    let id = u["id"].as_str().unwrap();
    assert_eq!(
        created.headers["location"],
        u["meta"]["location"].as_str().unwrap()
    );
    assert_eq!(
        u["meta"]["location"],
        format!("{}/scim/v2/Users/{id}", app.url)
    );
    assert_eq!(u["meta"]["resourceType"], "User");
    assert!(u["meta"]["created"].as_str().unwrap().ends_with('Z'));
    assert!(u["meta"]["lastModified"].is_string());
    assert_eq!(
        u["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User"])
    );

    let read = scim(
        &app,
        Method::GET,
        &format!("/Users/{id}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.body["userName"], SARAH);
    assert_eq!(read.body["name"]["givenName"], "Sarah");
    assert_eq!(read.body["name"]["familyName"], "Smith");
    assert_eq!(read.body["displayName"], "Sarah Smith");
    assert_eq!(read.body["emails"][0]["value"], SARAH);
    assert_eq!(read.body["active"], true);
    assert_eq!(read.body["groups"], json!([]));

    let event = event_for(&app, &c.jti, "scim_create_user").await;
    assert_eq!(event["outcome"], "allowed");
    assert_eq!(event["tool"], "create_user");
    assert_eq!(event["user"], ALICE);
    assert_eq!(event["actor_chain"], json!(["iam", "concierge", ALICE]));
    assert_eq!(event["rar_summary"], format!("Create user {SARAH}"));
    assert_eq!(event["session"], c.sid.as_deref().unwrap());

    let again = scim(&app, Method::POST, "/Users", Some(&token), Some(&body)).await;
    again.scim_error(409, Some("uniqueness"));
    let event = event_for(&app, &c.jti, "scim_create_user").await;
    assert_eq!(event["outcome"], "denied");
    assert!(event["reason"].as_str().unwrap().starts_with("uniqueness"));

    // Created without a password: the login form does not let her in yet.
    assert!(cannot_sign_in(&app, SARAH).await);
}

#[tokio::test]
async fn bob_is_added_to_traders_and_to_nothing_else() {
    let app = spawn_app().await;
    let alice = app.sign_in(ALICE).await;
    let phone = app.device_token(&alice).await;
    let bob = user_id(&app, &alice.access_token, BOB).await;
    let token = scim_token(
        &app,
        &alice.access_token,
        &phone,
        &[list_users(), to_group(BOB, "traders")],
    )
    .await;
    let groups = scim(&app, Method::GET, "/Groups", Some(&token), None).await;
    assert_eq!(groups.status, 200, "{}", groups.body);
    assert_eq!(
        groups.body["totalResults"], 2,
        "traders and admins are seeded"
    );
    let traders = scim(
        &app,
        Method::GET,
        &format!("/Groups{}", filter("displayName", "traders")),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(traders.body["totalResults"], 1);
    let traders = traders.body["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let added = scim(
        &app,
        Method::PATCH,
        &format!("/Groups/{traders}"),
        Some(&token),
        Some(&add_member(&bob)),
    )
    .await;
    assert_eq!(added.status, 200, "{}", added.body);
    assert_eq!(added.body["members"][0]["value"], bob.as_str());
    assert_eq!(added.body["members"][0]["display"], BOB);

    let users = scim(&app, Method::GET, "/Users", Some(&token), None).await;
    let listed = users.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["userName"] == BOB)
        .unwrap();
    assert_eq!(listed["groups"][0]["display"], "traders");
    assert!(listed.get("roles").is_none());

    // The grant names bob and traders: not alice, and not admins (that is the admin role).
    let alice_id = user_id(&app, &alice.access_token, ALICE).await;
    let other = scim(
        &app,
        Method::PATCH,
        &format!("/Groups/{traders}"),
        Some(&token),
        Some(&add_member(&alice_id)),
    )
    .await;
    other.scim_error(403, None);
    assert!(
        other.body["detail"]
            .as_str()
            .unwrap()
            .contains("another user")
    );
    let admins = groups.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["displayName"] == "admins")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = scim(
        &app,
        Method::PATCH,
        &format!("/Groups/{admins}"),
        Some(&token),
        Some(&add_member(&bob)),
    )
    .await;
    admin.scim_error(403, None);
    assert!(
        admin.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"error="insufficient_scope""#)
    );
    let event = app.last_event("scim_grant_admin_role").await;
    assert_eq!(event["outcome"], "denied");
    assert!(event["reason"].as_str().unwrap().starts_with("not_granted"));
    // Removing members is never delegated.
    let remove = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "remove", "path": format!("members[value eq \"{bob}\"]")}],
    })
    .to_string();
    scim(
        &app,
        Method::PATCH,
        &format!("/Groups/{traders}"),
        Some(&token),
        Some(&remove),
    )
    .await
    .scim_error(403, None);
}

#[tokio::test]
async fn deactivating_bob_ends_every_session_of_his() {
    let app = spawn_app().await;
    let bob = app.sign_in(BOB).await;
    let bob_t1 = app
        .hop1(&bob.access_token, BANKING, &[balance("checking")])
        .await
        .unwrap()
        .access_token;
    assert_eq!(app.introspect(&bob.access_token).await["active"], true);
    let alice = app.sign_in(ALICE).await;
    let phone = app.device_token(&alice).await;
    let token = scim_token(
        &app,
        &alice.access_token,
        &phone,
        &[iam("get_user", BOB), iam("deactivate_user", BOB)],
    )
    .await;
    let found = scim(
        &app,
        Method::GET,
        &format!("/Users{}", filter("userName", BOB)),
        Some(&token),
        None,
    )
    .await;
    let id = found.body["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let done = scim(
        &app,
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(&token),
        Some(&deactivate()),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["active"], false);

    for t in [&bob.access_token, &bob_t1] {
        assert_eq!(app.introspect(t).await, json!({"active": false}));
    }
    assert!(cannot_sign_in(&app, BOB).await);
    assert_eq!(app.introspect(&alice.access_token).await["active"], true);

    let jti = claims_of(&token).jti;
    let event = event_for(&app, &jti, "scim_deactivate_user").await;
    assert_eq!(event["outcome"], "allowed");
    assert_eq!(event["tool"], "deactivate_user");
    assert_eq!(event["actor_chain"], json!(["iam", "concierge", ALICE]));
    assert_eq!(event["rar_summary"], format!("Deactivate user {BOB}"));
    let ended = event_for(&app, &jti, "session_revoked").await;
    assert_eq!(ended["user"], BOB);
    assert_eq!(ended["session"], claims_of(&bob.access_token).sid.unwrap());
}

#[tokio::test]
async fn revoking_sessions_ends_them_and_keeps_the_user() {
    let app = spawn_app().await;
    let bob_one = app.sign_in(BOB).await;
    let bob_two = app.sign_in(BOB).await;
    let alice = app.sign_in(ALICE).await;
    let phone = app.device_token(&alice).await;
    let id = user_id(&app, &alice.access_token, BOB).await;
    let token = scim_token(
        &app,
        &alice.access_token,
        &phone,
        &[iam("revoke_user_sessions", BOB)],
    )
    .await;
    let done = scim(
        &app,
        Method::DELETE,
        &format!("/Users/{id}/sessions"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["revokedSessions"], 2);
    for t in [&bob_one.access_token, &bob_two.access_token] {
        assert_eq!(app.introspect(t).await["active"], false);
    }
    // Still active: bob signs in again.
    let again = app.sign_in(BOB).await;
    assert_eq!(app.introspect(&again.access_token).await["active"], true);
}

#[tokio::test]
async fn a_token_granted_create_user_cannot_deactivate() {
    let app = spawn_app().await;
    let bob = app.sign_in(BOB).await;
    let alice = app.sign_in(ALICE).await;
    let phone = app.device_token(&alice).await;
    let id = user_id(&app, &alice.access_token, BOB).await;
    let token = scim_token(
        &app,
        &alice.access_token,
        &phone,
        &[iam("create_user", BOB)],
    )
    .await;

    let refused = scim(
        &app,
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(&token),
        Some(&deactivate()),
    )
    .await;
    refused.scim_error(403, None);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("deactivate_user")
    );
    scim(
        &app,
        Method::DELETE,
        &format!("/Users/{id}/sessions"),
        Some(&token),
        None,
    )
    .await
    .scim_error(403, None);
    scim(
        &app,
        Method::GET,
        &format!("/Users/{id}"),
        Some(&token),
        None,
    )
    .await
    .scim_error(403, None);

    let event = event_for(&app, &claims_of(&token).jti, "scim_deactivate_user").await;
    assert_eq!(event["outcome"], "denied");
    assert_eq!(event["tool"], "deactivate_user");
    assert!(
        event["reason"].as_str().unwrap().starts_with("not_granted"),
        "{event}"
    );
    assert_eq!(app.introspect(&bob.access_token).await["active"], true);
}

#[tokio::test]
async fn a_token_for_another_user_cannot_touch_bob() {
    let app = spawn_app().await;
    let bob = app.sign_in(BOB).await;
    let alice = app.sign_in(ALICE).await;
    let phone = app.device_token(&alice).await;
    let id = user_id(&app, &alice.access_token, BOB).await;
    let token = scim_token(
        &app,
        &alice.access_token,
        &phone,
        &[
            iam("get_user", SARAH),
            iam("deactivate_user", SARAH),
            iam("revoke_user_sessions", SARAH),
        ],
    )
    .await;
    for (method, path, body) in [
        (Method::GET, format!("/Users/{id}"), None),
        (Method::PATCH, format!("/Users/{id}"), Some(deactivate())),
        (Method::DELETE, format!("/Users/{id}/sessions"), None),
        (
            Method::GET,
            format!("/Users{}", filter("userName", BOB)),
            None,
        ),
    ] {
        let a = scim(&app, method, &path, Some(&token), body.as_deref()).await;
        a.scim_error(403, None);
    }
    let event = event_for(&app, &claims_of(&token).jti, "scim_deactivate_user").await;
    assert!(
        event["reason"]
            .as_str()
            .unwrap()
            .starts_with("target_mismatch"),
        "{event}"
    );
    assert_eq!(event["rar_summary"], format!("Deactivate user {BOB}"));
    assert_eq!(app.introspect(&bob.access_token).await["active"], true);
}

#[tokio::test]
async fn only_live_delegated_tokens_for_scim_are_accepted() {
    let app = spawn_app().await;
    let alice = app.sign_in(ALICE).await;
    let phone = app.device_token(&alice).await;
    let claims = claims_of(&alice.access_token);

    let none = scim(&app, Method::GET, "/Users", None, None).await;
    none.scim_error(401, None);
    assert!(
        none.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let garbage = scim(&app, Method::GET, "/Users", Some("not.a.jwt"), None).await;
    garbage.scim_error(401, None);
    assert!(
        garbage.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"error="invalid_token""#)
    );

    // The user's own tokens (for the concierge, for the idp) are not for this API.
    for own in [&alice.access_token, &phone] {
        scim(&app, Method::GET, "/Users", Some(own), None)
            .await
            .scim_error(401, None);
    }
    // Neither is the concierge's token for the iam agent (hop 1).
    let t1 = app
        .hop1(&alice.access_token, IAM, &[list_users()])
        .await
        .unwrap();
    scim(&app, Method::GET, "/Users", Some(&t1.access_token), None)
        .await
        .scim_error(401, None);
    let event = app.last_event("scim_list_users").await;
    assert!(
        event["reason"]
            .as_str()
            .unwrap()
            .starts_with("audience_mismatch")
    );

    // A user's own token for scim (no act) is not delegated.
    let mut own = claims_of(&forged(&app, &claims, "scim", vec![list_users()]));
    own.act = None;
    scim(&app, Method::GET, "/Users", Some(&app.forge(&own)), None)
        .await
        .scim_error(403, None);
    let event = app.last_event("scim_list_users").await;
    assert!(
        event["reason"]
            .as_str()
            .unwrap()
            .starts_with("not_delegated")
    );

    // An actor the registry does not know.
    let mut stranger = claims_of(&forged(&app, &claims, "scim", vec![list_users()]));
    stranger.act = Some(Actor::nest("spiffe://demo.local/agent/mallory", None));
    scim(
        &app,
        Method::GET,
        "/Users",
        Some(&app.forge(&stranger)),
        None,
    )
    .await
    .scim_error(403, None);

    // The real token works until alice's session ends.
    let token = scim_token(&app, &alice.access_token, &phone, &[list_users()]).await;
    assert_eq!(
        scim(&app, Method::GET, "/Users", Some(&token), None)
            .await
            .status,
        200
    );
    let sid = claims.sid.unwrap();
    let resp = app
        .http
        .post(format!("{}/api/sessions/{sid}/revoke", app.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    scim(&app, Method::GET, "/Users", Some(&token), None)
        .await
        .scim_error(401, None);
    let event = app.last_event("scim_list_users").await;
    assert!(
        event["reason"]
            .as_str()
            .unwrap()
            .starts_with("session_revoked")
    );
}

#[tokio::test]
async fn malformed_requests_are_400_in_the_scim_shape() {
    let app = spawn_app().await;
    let alice = app.sign_in(ALICE).await;
    let token = scim_token(&app, &alice.access_token, "", &[list_users()]).await;
    let post = |body: &'static str| scim(&app, Method::POST, "/Users", Some(&token), Some(body));
    post("{not json")
        .await
        .scim_error(400, Some("invalidSyntax"));
    post(r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":42}"#)
        .await
        .scim_error(400, Some("invalidValue"));
    post(r#"{"userName":"x@example.com"}"#)
        .await
        .scim_error(400, Some("invalidValue"));
    post(r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"not an email"}"#)
        .await
        .scim_error(400, Some("invalidValue"));
    post(r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"x@example.com","password":"hunter2"}"#)
        .await
        .scim_error(400, Some("invalidValue"));
    post(r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"x@example.com","name":"X"}"#)
        .await
        .scim_error(400, Some("invalidValue"));

    let patch = |body: &'static str| {
        scim(
            &app,
            Method::PATCH,
            "/Users/usr_x",
            Some(&token),
            Some(body),
        )
    };
    patch(r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":"x"}"#)
        .await
        .scim_error(400, Some("invalidValue"));
    patch(r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"frobnicate","path":"active","value":false}]}"#)
        .await
        .scim_error(400, Some("invalidSyntax"));
    patch(r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":"maybe"}]}"#)
        .await
        .scim_error(400, Some("invalidValue"));
    patch("[").await.scim_error(400, Some("invalidSyntax"));

    let get = |path: &'static str| scim(&app, Method::GET, path, Some(&token), None);
    get(r#"/Users?filter=name%20co%20%22x%22"#)
        .await
        .scim_error(400, Some("invalidFilter"));
    get("/Users?count=many")
        .await
        .scim_error(400, Some("invalidValue"));
    get("/Nope").await.scim_error(404, None);
    scim(&app, Method::PUT, "/Users/usr_x", Some(&token), Some("{}"))
        .await
        .scim_error(405, None);
    let text = app
        .http
        .post(format!("{}/scim/v2/Users", app.url))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), 415);

    let event = app.last_event("scim_create_user").await;
    assert_eq!(event["outcome"], "denied");
    // Paging follows RFC 7644: startIndex is 1-based, count bounds the page.
    let page = get("/Users?startIndex=2&count=1").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.body["totalResults"], 2);
    assert_eq!(page.body["startIndex"], 2);
    assert_eq!(page.body["itemsPerPage"], 1);
    assert_eq!(page.body["Resources"][0]["userName"], BOB);
}

#[tokio::test]
async fn delete_user_and_the_admin_role_are_never_minted_and_still_enforced() {
    let app = spawn_app_tolerating_refusals().await;
    let alice = app.sign_in(ALICE).await;
    let claims = claims_of(&alice.access_token);
    let bob = user_id(&app, &alice.access_token, BOB).await;

    // Tier 4 at the first hop: no token exists for either.
    for action in ["delete_user", "grant_admin_role"] {
        let (error, _) = refused(
            app.hop1(&alice.access_token, IAM, &[iam(action, BOB)])
                .await,
        );
        assert_eq!(error, "access_denied", "{action}");
    }
    // Even handed a T1 that grants it, the iam agent's ceiling stops the second hop.
    let now = kit::now_secs();
    let t1 = app.forge(&AccessClaims {
        aud: Audience::one(IAM),
        act: Some(Actor::nest(CONCIERGE, None)),
        may_act: Some(MayAct { sub: IAM.into() }),
        client_id: Some(CONCIERGE.into()),
        iat: now,
        ..claims_of(&forged(&app, &claims, IAM, vec![iam("delete_user", BOB)]))
    });
    let (error, description) = refused(
        app.agent("iam")
            .exchange(&t1, "scim", &[iam("delete_user", BOB)])
            .await,
    );
    assert_eq!(error, "invalid_authorization_details");
    assert!(description.contains("ceiling"), "{description}");

    // A forged idp-signed token with the grant but for the wrong audience.
    let misaddressed = forged(&app, &claims, IAM, vec![iam("delete_user", BOB)]);
    scim(
        &app,
        Method::DELETE,
        &format!("/Users/{bob}"),
        Some(&misaddressed),
        None,
    )
    .await
    .scim_error(401, None);
    // For scim, but granting another user, or another action.
    for details in [
        vec![iam("delete_user", SARAH)],
        vec![iam("deactivate_user", BOB)],
    ] {
        let t = forged(&app, &claims, "scim", details);
        scim(
            &app,
            Method::DELETE,
            &format!("/Users/{bob}"),
            Some(&t),
            None,
        )
        .await
        .scim_error(403, None);
    }
    let make_admin = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "roles", "value": [{"value": "admin"}]}],
    })
    .to_string();
    let for_alice = forged(&app, &claims, "scim", vec![iam("grant_admin_role", ALICE)]);
    scim(
        &app,
        Method::PATCH,
        &format!("/Users/{bob}"),
        Some(&for_alice),
        Some(&make_admin),
    )
    .await
    .scim_error(403, None);
    let event = app.last_event("scim_grant_admin_role").await;
    assert!(
        event["reason"]
            .as_str()
            .unwrap()
            .starts_with("target_mismatch")
    );

    // The endpoints enforce the grant themselves: exactly the grant for bob does it.
    let for_bob = forged(
        &app,
        &claims,
        "scim",
        vec![
            iam("grant_admin_role", BOB),
            iam("delete_user", BOB),
            iam("get_user", BOB),
        ],
    );
    let admin = scim(
        &app,
        Method::PATCH,
        &format!("/Users/{bob}"),
        Some(&for_bob),
        Some(&make_admin),
    )
    .await;
    assert_eq!(admin.status, 200, "{}", admin.body);
    assert_eq!(admin.body["roles"][0]["value"], "admin");
    assert_eq!(admin.body["groups"][0]["display"], "admins");
    let gone = scim(
        &app,
        Method::DELETE,
        &format!("/Users/{bob}"),
        Some(&for_bob),
        None,
    )
    .await;
    assert_eq!(gone.status, 204);
    scim(
        &app,
        Method::GET,
        &format!("/Users/{bob}"),
        Some(&for_bob),
        None,
    )
    .await
    .scim_error(404, None);
}

#[tokio::test]
async fn a_single_operation_token_can_look_up_its_own_target_and_nobody_else() {
    let app = spawn_app().await;
    let alice = app.sign_in(ALICE).await;
    let phone = app.device_token(&alice).await;
    // What the iam agent holds for "Deactivate bob": one operation, nothing else.
    let token = scim_token(
        &app,
        &alice.access_token,
        &phone,
        &[iam("deactivate_user", BOB)],
    )
    .await;
    let found = scim(
        &app,
        Method::GET,
        &format!("/Users{}", filter("userName", BOB)),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert_eq!(found.body["totalResults"], 1);
    assert_eq!(found.body["Resources"][0]["userName"], BOB);
    let other = scim(
        &app,
        Method::GET,
        &format!("/Users{}", filter("userName", ALICE)),
        Some(&token),
        None,
    )
    .await;
    other.scim_error(403, None);
    let all = scim(&app, Method::GET, "/Users", Some(&token), None).await;
    all.scim_error(403, None);
}
