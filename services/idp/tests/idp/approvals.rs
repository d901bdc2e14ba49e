//! Tiers and push approvals: read allowed, write approved once per session, sensitive approved
//! every time, blocked never minted; the CIBA polling answers; the approvals stream.

use futures::StreamExt as _;
use kit::exchange::ExchangeError;
use serde_json::{Value, json};

use crate::support::*;

/// Hop 1 for `details`, then banking's hop 2 to the issuer.
async fn hop2(
    app: &TestApp,
    user_token: &str,
    details: kit::rar::AuthorizationDetail,
    role: &str,
) -> Result<kit::exchange::Exchanged, ExchangeError> {
    let t1 = app
        .hop1(user_token, BANKING, std::slice::from_ref(&details))
        .await
        .expect("hop 1 is delegation, tier 1");
    app.agent("banking")
        .exchange(&t1.access_token, "verify-rar", &[details, vault(role)])
        .await
}

fn open_account(kind: &str) -> kit::rar::AuthorizationDetail {
    kit::rar::AuthorizationDetail::operation(
        kit::rar::BANKING,
        "open_account",
        [("kind", json!(kind))],
    )
}

#[tokio::test]
async fn tier_one_reads_are_issued_without_asking() {
    let app = spawn_app().await;
    let alice = app.sign_in("alice@example.com").await;
    let t2 = hop2(
        &app,
        &alice.access_token,
        balance("savings"),
        "banking-reader",
    )
    .await
    .expect("no approval for a read");
    assert!(claims_of(&t2.access_token).approval_id.is_none());
}

#[tokio::test]
async fn tier_two_is_approved_once_then_remembered_for_the_session() {
    let app = spawn_app().await;
    let alice = app.sign_in("alice@example.com").await;
    let phone = app.device_token(&alice).await;
    let p = pending(
        hop2(
            &app,
            &alice.access_token,
            transfer("400", "checking", "savings"),
            "banking-transfers",
        )
        .await,
    );
    let approval_id = p.approval_id.clone().unwrap();
    // The phone sees what it approves, in plain words.
    let list: Vec<Value> = app
        .http
        .get(format!("{}/api/approvals", app.url))
        .bearer_auth(&phone)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        list[0]["summary"],
        "Transfer $400.00 from checking to savings"
    );
    assert_eq!(
        list[0]["chain"],
        json!(["banking", "concierge", "alice@example.com"])
    );
    assert_eq!(list[0]["binding_code"].as_str(), p.binding_code.as_deref());
    assert_eq!(list[0]["fingerprint"].as_str().unwrap().len(), 64);
    // Polling before the user decides.
    assert!(matches!(
        app.agent("banking").poll(&p.auth_req_id).await,
        Err(ExchangeError::Pending(_))
    ));
    assert_eq!(app.approve(&phone, &approval_id).await.status(), 200);
    let t2 = app.agent("banking").wait(p).await.expect("approved");
    let c = claims_of(&t2.access_token);
    assert_eq!(c.approval_id.as_deref(), Some(approval_id.as_str()));
    assert_eq!(c.acr.as_deref(), Some("urn:smt:acr:push"));
    // The next write in the session is covered by the same approval.
    let t2b = hop2(
        &app,
        &alice.access_token,
        open_account("trading"),
        "banking-accounts",
    )
    .await
    .expect("cached, no second approval");
    assert_eq!(
        claims_of(&t2b.access_token).approval_id.as_deref(),
        Some(approval_id.as_str())
    );
    let cached = app.events(Some(&claims_of(&t2b.access_token).jti)).await;
    assert_eq!(cached[0]["outcome"], "hitl_cached");
    // Another session of the same user is not covered.
    let other = app.sign_in("alice@example.com").await;
    pending(
        hop2(
            &app,
            &other.access_token,
            open_account("savings"),
            "banking-accounts",
        )
        .await,
    );
}

#[tokio::test]
async fn tier_three_asks_every_single_time() {
    let app = spawn_app().await;
    let alice = app.sign_in("alice@example.com").await;
    let phone = app.device_token(&alice).await;
    let mut approvals = vec![];
    for _ in 0..2 {
        let p = pending(
            hop2(
                &app,
                &alice.access_token,
                transfer("1000", "checking", "savings"),
                "banking-transfers",
            )
            .await,
        );
        approvals.push(p.approval_id.clone().unwrap());
        app.approve(&phone, p.approval_id.as_deref().unwrap()).await;
        let t2 = app.agent("banking").wait(p).await.expect("approved");
        let c = claims_of(&t2.access_token);
        assert_eq!(
            c.authorization_details.unwrap()[0].amount().unwrap().cents,
            100_000
        );
    }
    assert_ne!(approvals[0], approvals[1]);
    let requested = app
        .events(None)
        .await
        .into_iter()
        .filter(|e| e["type"] == "approval_requested" && e["tier"] == 3)
        .count();
    assert_eq!(requested, 2);
}

#[tokio::test]
async fn tier_four_is_denied_with_the_policys_reason_and_no_token() {
    let app = spawn_app().await;
    let alice = app.sign_in("alice@example.com").await;
    let before = app.events(None).await.len();
    let (error, description) = refused(
        app.hop1(
            &alice.access_token,
            IAM,
            &[iam("delete_user", "sarah.smith@example.com")],
        )
        .await,
    );
    assert_eq!(error, "access_denied");
    assert!(description.contains("never delegated"), "{description}");
    let event = app.last_event("token_exchange").await;
    assert_eq!(event["outcome"], "denied");
    assert_eq!(event["tier"], 4);
    assert!(event["reason"].as_str().unwrap().contains("policy_denied"));
    assert!(event["jti"].is_null(), "no token was minted");
    let events = app.events(None).await;
    assert_eq!(events.len(), before + 1);
    assert!(
        !events
            .iter()
            .any(|e| e["outcome"] == "allowed" && e["tool"] == "delete_user")
    );
}

#[tokio::test]
async fn a_denied_approval_is_access_denied_and_a_consumed_one_cannot_be_reused() {
    let app = spawn_app().await;
    let alice = app.sign_in("alice@example.com").await;
    let phone = app.device_token(&alice).await;
    let p = pending(
        hop2(
            &app,
            &alice.access_token,
            transfer("1000", "checking", "savings"),
            "banking-transfers",
        )
        .await,
    );
    assert_eq!(
        app.deny(&phone, p.approval_id.as_deref().unwrap())
            .await
            .status(),
        200
    );
    let (error, description) = refused(app.agent("banking").poll(&p.auth_req_id).await);
    assert_eq!(
        (error.as_str(), description.as_str()),
        ("access_denied", "the user denied the request")
    );
    // Deciding twice is refused.
    assert_eq!(
        app.approve(&phone, p.approval_id.as_deref().unwrap())
            .await
            .status(),
        409
    );

    let p = pending(
        hop2(
            &app,
            &alice.access_token,
            transfer("1000", "checking", "savings"),
            "banking-transfers",
        )
        .await,
    );
    app.approve(&phone, p.approval_id.as_deref().unwrap()).await;
    let auth_req_id = p.auth_req_id.clone();
    app.agent("banking").wait(p).await.expect("approved");
    let (error, _) = refused(app.agent("banking").poll(&auth_req_id).await);
    assert_eq!(error, "invalid_grant", "an auth_req_id mints one token");
}

#[tokio::test]
async fn polling_rules_slow_down_and_other_clients() {
    let app = spawn_app().await;
    let alice = app.sign_in("alice@example.com").await;
    let p = pending(
        hop2(
            &app,
            &alice.access_token,
            transfer("1000", "checking", "savings"),
            "banking-transfers",
        )
        .await,
    );
    assert!(matches!(
        app.agent("banking").poll(&p.auth_req_id).await,
        Err(ExchangeError::Pending(_))
    ));
    let (second, _) = refused(app.agent("banking").poll(&p.auth_req_id).await);
    assert_eq!(second, "slow_down", "polled again within the interval");
    // The auth_req_id is bound to banking: the concierge cannot collect it.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (error, _) = refused(app.agent("concierge").poll(&p.auth_req_id).await);
    assert_eq!(error, "invalid_grant");
    // Without client authentication, nothing.
    let resp = app
        .http
        .post(format!("{}/token", app.url))
        .form(&[
            ("grant_type", "urn:openid:params:grant-type:ciba"),
            ("auth_req_id", &p.auth_req_id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn only_the_users_own_device_token_can_approve() {
    let app = spawn_app().await;
    let alice = app.sign_in("alice@example.com").await;
    let bob = app.sign_in("bob@example.com").await;
    let p = pending(
        hop2(
            &app,
            &alice.access_token,
            transfer("1000", "checking", "savings"),
            "banking-transfers",
        )
        .await,
    );
    let id = p.approval_id.clone().unwrap();
    // The concierge holds alice's access token; it is not accepted by the approvals API.
    assert_eq!(app.approve(&alice.access_token, &id).await.status(), 403);
    // Bob cannot approve alice's request.
    assert_eq!(
        app.approve(&app.device_token(&bob).await, &id)
            .await
            .status(),
        409
    );
    assert_eq!(
        app.approve(&app.device_token(&alice).await, &id)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn the_ciba_backchannel_endpoint_uses_the_same_approvals() {
    let app = spawn_app().await;
    let alice = app.sign_in("alice@example.com").await;
    let phone = app.device_token(&alice).await;
    let details = serde_json::to_string(&[transfer("20", "checking", "savings")]).unwrap();
    let ack: Value = app
        .http
        .post(format!("{}/bc-authorize", app.url))
        .basic_auth("ciba-demo", Some("ciba-demo-dev-secret"))
        .form(&[
            ("scope", "openid"),
            ("login_hint", "alice@example.com"),
            ("binding_message", "W4-X"),
            ("authorization_details", &details),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let auth_req_id = ack["auth_req_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{ack}"))
        .to_owned();
    assert!(ack["expires_in"].as_u64().unwrap() > 0 && ack["interval"].as_u64().unwrap() > 0);
    let poll = || {
        app.http
            .post(format!("{}/token", app.url))
            .basic_auth("ciba-demo", Some("ciba-demo-dev-secret"))
            .form(&[
                ("grant_type", "urn:openid:params:grant-type:ciba"),
                ("auth_req_id", auth_req_id.as_str()),
            ])
            .send()
    };
    let resp = poll().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(
        resp.headers().get("www-authenticate").is_none(),
        "CIBA clients stop polling on a challenge"
    );
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "authorization_pending"
    );
    let list: Vec<Value> = app
        .http
        .get(format!("{}/api/approvals", app.url))
        .bearer_auth(&phone)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    app.approve(&phone, list[0]["id"].as_str().unwrap()).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let token: Value = poll().await.unwrap().json().await.unwrap();
    let c = claims_of(
        token["access_token"]
            .as_str()
            .expect("token after approval"),
    );
    assert_eq!(c.email.as_deref(), Some("alice@example.com"));
    assert!(c.approval_id.is_some());
}

#[tokio::test]
async fn the_approvals_stream_shows_a_new_request_live() {
    let app = spawn_app().await;
    let alice = app.sign_in("alice@example.com").await;
    let phone = app.device_token(&alice).await;
    let resp = app
        .http
        .get(format!("{}/api/approvals/stream", app.url))
        .bearer_auth(&phone)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.bytes_stream();
    let mut seen = String::new();
    let mut next_event = async || -> String {
        loop {
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), body.next())
                .await
                .expect("an event in time")
                .unwrap()
                .unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if let Some(end) = seen.find("\n\n") {
                let event = seen[..end].to_owned();
                seen.drain(..end + 2);
                if event.contains("event: approvals") {
                    return event;
                }
            }
        }
    };
    assert!(next_event().await.contains("data: []"));
    let p = pending(
        hop2(
            &app,
            &alice.access_token,
            transfer("1000", "checking", "savings"),
            "banking-transfers",
        )
        .await,
    );
    let event = next_event().await;
    assert!(event.contains(p.approval_id.as_deref().unwrap()), "{event}");
    assert!(event.contains("Transfer $1,000.00 from checking to savings"));
}
