//! Token exchange: the two-hop `act` chain, and every rule of a hop refused with its OAuth error
//! and a security event naming the rule.

use kit::{
    claims::{AccessClaims, Actor, Audience, MayAct},
    exchange::AgentIdentity,
    jwt::SigningKey,
};
use serde_json::{Value, json};

use crate::support::*;

/// Hop 1 for a balance read: the concierge gets T1 for banking.
async fn t1_balance(app: &TestApp, user_token: &str) -> String {
    app.hop1(user_token, BANKING, &[balance("checking")])
        .await
        .expect("hop 1")
        .access_token
}

async fn last_refusal(app: &TestApp) -> Value {
    app.events(None)
        .await
        .into_iter()
        .find(|e| e["type"] == "token_exchange" && e["outcome"] == "denied")
        .expect("a refusal event")
}

#[tokio::test]
async fn two_hops_nest_the_act_chain_and_carry_exactly_the_request() {
    let app = spawn_app().await;
    let alice = app.sign_in("alice@example.com").await;
    let t1 = t1_balance(&app, &alice.access_token).await;
    let c1 = claims_of(&t1);
    assert_eq!(c1.act, Some(Actor::nest(CONCIERGE, None)));
    assert_eq!(c1.may_act.as_ref().map(|m| m.sub.as_str()), Some(BANKING));
    assert!(c1.aud.contains(BANKING));

    let requested = vec![
        balance("checking").validated().unwrap(),
        vault("banking-reader"),
    ];
    let t2 = app
        .agent("banking")
        .exchange(&t1, "verify-rar", &requested)
        .await
        .expect("hop 2");
    assert_eq!(t2.token_type, "Bearer");
    assert_eq!(
        t2.issued_token_type.as_deref(),
        Some("urn:ietf:params:oauth:token-type:access_token")
    );
    let c2 = claims_of(&t2.access_token);
    // act = {banking, act: {concierge}}
    assert_eq!(
        serde_json::to_value(&c2.act).unwrap(),
        json!({"sub": BANKING, "act": {"sub": CONCIERGE}})
    );
    assert_eq!(
        c2.authorization_details.as_deref(),
        Some(requested.as_slice())
    );
    assert_eq!(c2.sub, c1.sub);
    assert_eq!(c2.sid, c1.sid);
    assert!(
        c2.may_act.is_none(),
        "a token for a resource allows no further delegation"
    );
    assert!(c2.exp <= c1.exp);
    // Introspection tells a resource server the same.
    let intro = app.introspect(&t2.access_token).await;
    assert_eq!(intro["active"], true);
    assert_eq!(intro["act"]["act"]["sub"], CONCIERGE);
    assert_eq!(
        intro["authorization_details"][0]["operationDetails"]["action"],
        "get_balance"
    );
    let issued = app.events(Some(&c2.jti)).await;
    assert_eq!(issued[0]["outcome"], "allowed");
    assert_eq!(
        issued[0]["actor_chain"],
        json!(["banking", "concierge", "alice@example.com"])
    );
}

#[tokio::test]
async fn an_actor_not_named_in_may_act_is_refused_as_chain_splicing() {
    let app = spawn_app().await;
    let alice = app.sign_in("alice@example.com").await;
    // banking presents the user's token, which names only the concierge.
    let (error, _) = refused(
        app.agent("banking")
            .exchange(&alice.access_token, "verify-rar", &[balance("checking")])
            .await,
    );
    assert_eq!(error, "invalid_request");
    assert!(
        last_refusal(&app).await["reason"]
            .as_str()
            .unwrap()
            .starts_with("may_act_mismatch")
    );
    // iam presents T1 minted for banking.
    let t1 = t1_balance(&app, &alice.access_token).await;
    let (error, _) = refused(
        app.agent("iam")
            .exchange(&t1, "scim", &[balance("checking")])
            .await,
    );
    assert_eq!(error, "invalid_request");
    assert!(
        last_refusal(&app).await["reason"]
            .as_str()
            .unwrap()
            .starts_with("may_act_mismatch")
    );
}

#[tokio::test]
async fn unregistered_and_suspended_actors_are_refused() {
    let app = spawn_app_tolerating_refusals().await;
    let alice = app.sign_in("alice@example.com").await;
    let rogue = AgentIdentity {
        spiffe_id: "spiffe://demo.local/agent/rogue".into(),
        key: SigningKey::generate("r").unwrap(),
    };
    let client = kit::exchange::ExchangeClient::new(app.http.clone(), &app.url, rogue);
    let (error, _) = refused(
        client
            .exchange(&alice.access_token, BANKING, &[balance("checking")])
            .await,
    );
    assert_eq!(error, "invalid_request");
    assert!(
        last_refusal(&app).await["reason"]
            .as_str()
            .unwrap()
            .starts_with("actor_unregistered")
    );

    // An impostor signing as the concierge with its own key fails the signature check.
    let impostor = AgentIdentity {
        spiffe_id: CONCIERGE.into(),
        key: SigningKey::generate("x").unwrap(),
    };
    let client = kit::exchange::ExchangeClient::new(app.http.clone(), &app.url, impostor);
    let (_, description) = refused(
        client
            .exchange(&alice.access_token, BANKING, &[balance("checking")])
            .await,
    );
    assert!(description.contains("signature"), "{description}");

    let t1 = t1_balance(&app, &alice.access_token).await;
    app.set_agent_status("banking", "suspended").await;
    let (error, description) = refused(
        app.agent("banking")
            .exchange(&t1, "verify-rar", &[balance("checking")])
            .await,
    );
    assert_eq!(error, "invalid_request");
    assert!(description.contains("suspended"));
    app.set_agent_status("banking", "active").await;
    app.agent("banking")
        .exchange(&t1, "verify-rar", &[balance("checking")])
        .await
        .expect("reactivated");
}

#[tokio::test]
async fn authority_only_narrows_and_stays_within_the_ceiling() {
    let app = spawn_app_tolerating_refusals().await;
    let alice = app.sign_in("alice@example.com").await;
    let t1 = app
        .hop1(
            &alice.access_token,
            BANKING,
            &[transfer("1000", "checking", "savings")],
        )
        .await
        .unwrap()
        .access_token;
    let banking = app.agent("banking");
    let (error, description) = refused(
        banking
            .exchange(
                &t1,
                "verify-rar",
                &[
                    transfer("1000.01", "checking", "savings"),
                    vault("banking-transfers"),
                ],
            )
            .await,
    );
    assert_eq!(error, "invalid_authorization_details");
    assert!(description.contains("exceeds"), "{description}");
    assert!(
        last_refusal(&app).await["reason"]
            .as_str()
            .unwrap()
            .starts_with("rar_widened")
    );
    let (error, _) = refused(
        banking
            .exchange(
                &t1,
                "verify-rar",
                &[
                    transfer("1000", "checking", "trading"),
                    vault("banking-transfers"),
                ],
            )
            .await,
    );
    assert_eq!(error, "invalid_authorization_details");
    let (error, _) = refused(
        banking
            .exchange(&t1, "verify-rar", &[iam("create_user", "x@example.com")])
            .await,
    );
    assert_eq!(error, "invalid_authorization_details");
    // A credential path outside banking's ceiling.
    let (error, description) = refused(
        banking
            .exchange(
                &t1,
                "verify-rar",
                &[transfer("1000", "checking", "savings"), vault("everything")],
            )
            .await,
    );
    assert_eq!(error, "invalid_authorization_details");
    assert!(description.contains("ceiling"), "{description}");
    assert!(
        last_refusal(&app).await["reason"]
            .as_str()
            .unwrap()
            .starts_with("ceiling_exceeded")
    );
    // An audience banking may not ask for.
    let (error, _) = refused(
        banking
            .exchange(&t1, "graph", &[transfer("10", "checking", "savings")])
            .await,
    );
    assert_eq!(error, "invalid_target");
}

#[tokio::test]
async fn a_replayed_actor_token_is_refused() {
    let app = spawn_app().await;
    let alice = app.sign_in("alice@example.com").await;
    let actor = app.identity("concierge").actor_token(&app.url).unwrap();
    let details = serde_json::to_string(&[balance("checking")]).unwrap();
    let form = |actor: &str| {
        vec![
            (
                "grant_type".to_owned(),
                "urn:ietf:params:oauth:grant-type:token-exchange".to_owned(),
            ),
            ("subject_token".into(), alice.access_token.clone()),
            (
                "subject_token_type".into(),
                "urn:ietf:params:oauth:token-type:access_token".into(),
            ),
            ("actor_token".into(), actor.to_owned()),
            (
                "actor_token_type".into(),
                "urn:ietf:params:oauth:token-type:jwt".into(),
            ),
            ("audience".into(), BANKING.into()),
            ("authorization_details".into(), details.clone()),
        ]
    };
    let first = app
        .http
        .post(format!("{}/token", app.url))
        .form(&form(&actor))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    let second: Value = app
        .http
        .post(format!("{}/token", app.url))
        .form(&form(&actor))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(second["error"], "invalid_request");
    assert!(
        last_refusal(&app).await["reason"]
            .as_str()
            .unwrap()
            .starts_with("actor_jti_replayed")
    );
}

fn b64(v: &Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

/// A subject token the idp could have issued to banking, three actors deep unless changed.
fn t1_claims(app: &TestApp, alice: &AccessClaims) -> AccessClaims {
    let now = kit::now_secs();
    AccessClaims {
        iss: app.url.clone(),
        sub: alice.sub.clone(),
        aud: Audience::one(BANKING),
        exp: now + 120,
        iat: now,
        jti: kit::random_id(8),
        sid: alice.sid.clone(),
        client_id: None,
        scope: None,
        email: alice.email.clone(),
        acr: None,
        auth_time: None,
        act: Some(Actor::nest(CONCIERGE, None)),
        may_act: Some(MayAct {
            sub: BANKING.into(),
        }),
        authorization_details: Some(vec![balance("checking").validated().unwrap()]),
        approval_id: None,
    }
}

#[tokio::test]
async fn forged_expired_and_misaddressed_subject_tokens_are_refused() {
    let app = spawn_app().await;
    let alice = app.sign_in("alice@example.com").await;
    let base = t1_claims(&app, &claims_of(&alice.access_token));
    let banking = app.agent("banking");
    let try_subject = |token: String| {
        let banking = banking.clone();
        async move {
            refused(
                banking
                    .exchange(&token, "verify-rar", &[balance("checking")])
                    .await,
            )
        }
    };
    // Positive control: the same claims, properly signed, pass.
    banking
        .exchange(&app.forge(&base), "verify-rar", &[balance("checking")])
        .await
        .expect("control passes");

    let payload = serde_json::to_value(&base).unwrap();
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "at+jwt"})),
        b64(&payload)
    );
    let (error, description) = try_subject(none).await;
    assert_eq!(error, "invalid_request");
    assert!(description.contains("algorithm none"), "{description}");

    // HS256 keyed with the idp's public key (the classic algorithm confusion).
    let public = serde_json::to_vec(app.idp_key().public_jwk()).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(app.idp_key().kid().to_owned());
    header.typ = Some("at+jwt".into());
    let hs = jsonwebtoken::encode(
        &header,
        &payload,
        &jsonwebtoken::EncodingKey::from_secret(&public),
    )
    .unwrap();
    let (_, description) = try_subject(hs).await;
    assert!(description.contains("HS256"), "{description}");

    let mut expired = base.clone();
    expired.iat -= 3600;
    expired.exp = kit::now_secs() - 600;
    let (_, description) = try_subject(app.forge(&expired)).await;
    assert!(description.contains("expired"), "{description}");

    let mut elsewhere = base.clone();
    elsewhere.aud = Audience::one(IAM);
    let (error, _) = try_subject(app.forge(&elsewhere)).await;
    assert_eq!(error, "invalid_request");
    assert!(
        last_refusal(&app).await["reason"]
            .as_str()
            .unwrap()
            .starts_with("audience_mismatch")
    );

    let mut unknown_key = base.clone();
    unknown_key.jti = kit::random_id(8);
    let other = SigningKey::generate("not-the-idp")
        .unwrap()
        .sign("at+jwt", &unknown_key)
        .unwrap();
    let (_, description) = try_subject(other).await;
    assert!(description.contains("unknown key"), "{description}");
}

#[tokio::test]
async fn the_chain_is_capped_at_four_actors() {
    let app = spawn_app().await;
    let alice = claims_of(&app.sign_in("alice@example.com").await.access_token);
    let deep = |levels: usize| {
        let mut act = Actor::nest("spiffe://demo.local/agent/origin", None);
        for i in 1..levels - 1 {
            act = Actor::nest(format!("spiffe://demo.local/agent/hop{i}"), Some(&act));
        }
        Actor::nest(CONCIERGE, Some(&act))
    };
    // Three actors so far: banking makes four, which is allowed.
    let mut three = t1_claims(&app, &alice);
    three.act = Some(deep(3));
    app.agent("banking")
        .exchange(&app.forge(&three), "verify-rar", &[balance("checking")])
        .await
        .expect("depth 4 is allowed");
    // Four so far: banking would make five.
    let mut four = t1_claims(&app, &alice);
    four.act = Some(deep(4));
    let (error, description) = refused(
        app.agent("banking")
            .exchange(&app.forge(&four), "verify-rar", &[balance("checking")])
            .await,
    );
    assert_eq!(error, "invalid_request");
    assert!(description.contains("limit is 4"), "{description}");
    assert!(
        last_refusal(&app).await["reason"]
            .as_str()
            .unwrap()
            .starts_with("chain_too_deep")
    );
}

#[tokio::test]
async fn an_agent_acts_only_for_the_actors_it_is_registered_to_follow() {
    let app = spawn_app().await;
    let alice = app.sign_in("alice@example.com").await;
    // A new agent allowed to act only for iam receives a token whose current actor is the concierge.
    let helper = app
        .register_agent(
            "helper",
            &["iam"],
            &["verify-rar"],
            json!([{"type": "urn:smt:agent:banking", "actions": ["*"]}]),
        )
        .await;
    let mut c = t1_claims(&app, &claims_of(&alice.access_token));
    c.aud = Audience::one(helper.spiffe_id.clone());
    c.may_act = Some(MayAct {
        sub: helper.spiffe_id.clone(),
    });
    let client = kit::exchange::ExchangeClient::new(app.http.clone(), &app.url, helper);
    let (error, _) = refused(
        client
            .exchange(&app.forge(&c), "verify-rar", &[balance("checking")])
            .await,
    );
    assert_eq!(error, "invalid_request");
    assert!(
        last_refusal(&app).await["reason"]
            .as_str()
            .unwrap()
            .starts_with("actor_not_allowed_for")
    );
}
