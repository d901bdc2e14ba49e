//! Push approvals and one-time artefacts across idp replicas.

use serde_json::Value;

use crate::cluster::{BANKING, Cluster, balance, transfer};

#[tokio::test(flavor = "multi_thread")]
async fn an_approval_started_on_one_idp_is_approved_through_the_other() {
    let c = Cluster::start().await;
    let [a, b] = &c.idps;
    let alice = c.sign_in("alice@example.com").await;
    let before = c.p.balances("alice@example.com").await;

    // Hop 1 at A, hop 2 at B: B starts the approval (a tier-2 transfer).
    let business = transfer("100.00");
    let t1 = c.t1(a, &alice, &business).await;
    let (status, pending) = c.t2(b, &t1, &business, "banking-transfers").await;
    assert_eq!(
        (status, pending["error"].as_str()),
        (400, Some("authorization_pending")),
        "{pending}"
    );
    let auth_req_id = pending["auth_req_id"].as_str().unwrap().to_owned();
    let approval_id = pending["approval_id"].as_str().unwrap().to_owned();

    // The phone, talking to A, sees the approval B created.
    let listed: Vec<Value> =
        c.p.http
            .get(format!("{a}/api/approvals"))
            .bearer_auth(&alice.device_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert!(
        listed.iter().any(|x| x["id"] == approval_id.as_str()),
        "A lists B's approval: {listed:?}"
    );

    // Polls alternate; the polling interval is one clock for both instances: a poll at B right
    // after one at A is too fast.
    let (s1, first) = c.poll(a, &auth_req_id).await;
    assert_eq!(
        (s1, first["error"].as_str()),
        (400, Some("authorization_pending")),
        "{first}"
    );
    let (s2, second) = c.poll(b, &auth_req_id).await;
    assert_eq!(
        (s2, second["error"].as_str()),
        (400, Some("slow_down")),
        "{second}"
    );

    // Approved through A.
    let r =
        c.p.http
            .post(format!("{a}/api/approvals/{approval_id}/approve"))
            .bearer_auth(&alice.device_token)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);

    // Collected at B, exactly once: a second collection at A finds it consumed.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (s3, granted) = c.poll(b, &auth_req_id).await;
    assert_eq!(s3, 200, "{granted}");
    let t2 = granted["access_token"].as_str().unwrap().to_owned();
    let claims = e2e::claims(&t2);
    assert_eq!(claims["approval_id"], approval_id.as_str());
    assert_eq!(
        claims["iss"],
        c.issuer(),
        "minted by B for the shared issuer"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (s4, again) = c.poll(a, &auth_req_id).await;
    assert_eq!(
        s4, 400,
        "a collected approval is not collected twice: {again}"
    );

    // The token B minted works at both issuers: login at one, creds at the other, the lease
    // revoked through the first.
    let vault = c.login(&c.vrs[0], &t2).await;
    let (lease, pg_user) = c.creds(&c.vrs[1], &vault, "banking-transfers").await;
    assert!(pg_user.starts_with("v-banking-transfers-"), "{pg_user}");
    let (status, body) = c
        .vault(
            &c.vrs[0],
            "PUT",
            "/v1/sys/leases/lookup",
            Some(&vault),
            Some(serde_json::json!({"lease_id": lease})),
        )
        .await;
    assert_eq!(
        status, 200,
        "a lease issued by one issuer is known to the other: {body}"
    );
    let (status, body) = c
        .vault(
            &c.vrs[0],
            "PUT",
            "/v1/sys/leases/revoke",
            Some(&vault),
            Some(serde_json::json!({"lease_id": lease})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let roles =
        c.p.query("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&pg_user])
            .await;
    assert!(roles.is_empty(), "the role is dropped");
    assert_eq!(
        c.p.balances("alice@example.com").await,
        before,
        "nothing moved: no SQL was run"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_time_artefacts_are_one_time_across_idps() {
    let c = Cluster::start().await;
    let [a, b] = &c.idps;
    let alice = c.sign_in("alice@example.com").await;

    // An actor token spent at A is refused at B (its `jti` is single-use everywhere).
    let actor = c.actor_token("concierge");
    let (s1, first) = c
        .exchange_with(a, &actor, &alice.access_token, BANKING, &[balance()])
        .await;
    assert_eq!(s1, 200, "{first}");
    let (s2, replay) = c
        .exchange_with(b, &actor, &alice.access_token, BANKING, &[balance()])
        .await;
    assert_ne!(s2, 200, "{replay}");
    assert!(
        replay["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("already used")),
        "{replay}"
    );

    // A tier-2 write approved once is remembered for the session on both instances.
    let business = transfer("50.00");
    let t1 = c.t1(b, &alice, &business).await;
    let (status, pending) = c.t2(a, &t1, &business, "banking-transfers").await;
    assert_eq!(status, 400, "{pending}");
    let r =
        c.p.http
            .post(format!(
                "{b}/api/approvals/{}/approve",
                pending["approval_id"].as_str().unwrap()
            ))
            .bearer_auth(&alice.device_token)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, body) = c.poll(b, pending["auth_req_id"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let again = transfer("20.00");
    let t1 = c.t1(a, &alice, &again).await;
    let (status, body) = c.t2(b, &t1, &again, "banking-transfers").await;
    assert_eq!(
        status, 200,
        "the session's tier-2 approval is known to B: {body}"
    );
    assert!(e2e::claims(body["access_token"].as_str().unwrap())["approval_id"].is_string());
}
