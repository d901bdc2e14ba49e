//! A session revoked through one idp is dead everywhere at once.

use serde_json::json;

use crate::cluster::{BANKING, Cluster, balance};

#[tokio::test(flavor = "multi_thread")]
async fn a_session_revoked_through_one_idp_is_dead_on_both() {
    let c = Cluster::start().await;
    let [a, b] = &c.idps;
    let alice = c.sign_in("alice@example.com").await;
    let bob = c.sign_in("bob@example.com").await;
    // Tokens minted by each instance, and a Vault token from each issuer, all alive.
    let t2_a = c.reader_t2(a, &alice).await;
    let t2_b = c.reader_t2(b, &alice).await;
    let vault_a = c.login(&c.vrs[0], &t2_a).await;
    let vault_b = c.login(&c.vrs[1], &t2_b).await;
    // A live credential of the session from each issuer.
    let lease_a = c.creds(&c.vrs[0], &vault_a, "banking-reader").await;
    let lease_b = c.creds(&c.vrs[1], &vault_b, "banking-reader").await;
    for idp in &c.idps {
        assert!(
            introspect(&c, idp, &alice.access_token).await,
            "alive at {idp} before"
        );
    }

    // Alice ends her own session through B.
    let r =
        c.p.http
            .post(format!("{b}/api/sessions/{}/revoke", alice.sid))
            .bearer_auth(&alice.device_token)
            .json(&json!({"reason": "lost phone"}))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);

    for idp in &c.idps {
        for token in [&alice.access_token, &t2_a, &t2_b] {
            assert!(!introspect(&c, idp, token).await, "dead at {idp}");
        }
        let (status, body) = c
            .exchange(idp, "concierge", &alice.access_token, BANKING, &[balance()])
            .await;
        assert_ne!(
            status, 200,
            "no exchange for a dead session at {idp}: {body}"
        );
    }
    for (vr, vault) in c.vrs.iter().zip([&vault_a, &vault_b]) {
        let (status, body) = c
            .vault(
                vr,
                "GET",
                "/v1/verify-rar/creds/banking-reader",
                Some(vault),
                None,
            )
            .await;
        assert_eq!(
            status, 403,
            "no credential for a dead session at {vr}: {body}"
        );
        for jwt in [&t2_a, &t2_b] {
            let (status, body) = c
                .vault(
                    vr,
                    "POST",
                    "/v1/auth/jwt/login",
                    None,
                    Some(json!({"jwt": jwt})),
                )
                .await;
            assert_eq!(status, 400, "no login for a dead session at {vr}: {body}");
        }
    }
    // The signal reaches the issuers: each lease of the session is revoked, once, its role gone.
    for (lease, pg_user) in [&lease_a, &lease_b] {
        let mut state = String::new();
        for _ in 0..100 {
            state =
                c.p.query(
                    "SELECT state FROM verify_rar.leases WHERE lease_id = $1",
                    &[lease],
                )
                .await[0]
                    .get(0);
            if state == "revoked" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(
            state, "revoked",
            "{lease} is revoked after the session ended"
        );
        let role =
            c.p.query("SELECT 1 FROM pg_roles WHERE rolname = $1", &[pg_user])
                .await;
        assert!(role.is_empty(), "{pg_user} is dropped");
        // Recorded right after the revocation commits: wait for it, then a moment for a
        // duplicate (the other issuer acting on the same signal) to show.
        let count = || async {
            let events = c.p.service_events("verify_rar").await;
            let n = events
                .iter()
                .filter(|e| {
                    e["lease"] == lease.as_str()
                        && e["type"].as_str().is_some_and(|t| t.contains("revoked"))
                })
                .count();
            (n, events)
        };
        for _ in 0..100 {
            if count().await.0 >= 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let (revocations, events) = count().await;
        assert_eq!(revocations, 1, "{lease} revoked once: {events:#?}");
    }
    // Bob's session, on the same instances, is untouched.
    for idp in &c.idps {
        assert!(
            introspect(&c, idp, &bob.access_token).await,
            "bob alive at {idp}"
        );
    }
}

async fn introspect(c: &Cluster, idp: &str, token: &str) -> bool {
    let v: serde_json::Value =
        c.p.http
            .post(format!("{idp}/introspect"))
            .basic_auth("verify-rar", Some("verify-rar-dev-secret"))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    v["active"] == true
}
