//! S1: "Transfer $1,000 from checking to savings." — approval on the phone, a role that exists
//! for one transaction, and one `jti` joining the idp, the issuer and the ledger.

use e2e::Platform;
use kit::a2a::TaskState;
use serde_json::json;

#[tokio::test]
async fn s1_transfer_end_to_end() {
    let p = Platform::start().await;
    let alice = p.sign_in("alice@example.com").await;
    let before = p.balances("alice@example.com").await;

    let mut conv = p
        .ask(&alice, "Transfer $1,000 from checking to savings.")
        .await;
    let waiting = conv.wait_for(TaskState::AuthRequired).await;
    assert!(
        waiting.contains("Transfer $1,000.00 from checking to savings"),
        "{waiting}"
    );

    let approval = p.approve_next(&alice).await;
    assert_eq!(
        approval["summary"],
        "Transfer $1,000.00 from checking to savings"
    );
    assert_eq!(
        approval["chain"],
        json!(["banking", "concierge", "alice@example.com"])
    );
    assert_eq!(approval["tier"], 3);

    let (state, text, _) = conv.finish().await;
    assert_eq!(state, TaskState::Completed, "{text}");

    // Balances: checking −1000, savings +1000, nothing else.
    let after = p.balances("alice@example.com").await;
    assert_eq!(after["checking"], before["checking"] - 100_000);
    assert_eq!(after["savings"], before["savings"] + 100_000);
    assert_eq!(after.len(), before.len());

    // The ledger row names the one-transaction role and the token it was minted for.
    let rows = p.query("SELECT audit_pg_user, audit_jti, audit_grant_id::text, audit_rar_fingerprint, amount_cents FROM banking.transactions", &[]).await;
    assert_eq!(rows.len(), 1);
    let pg_user: String = rows[0].get(0);
    let jti: String = rows[0].get(1);
    let fingerprint: String = rows[0].get(3);
    assert!(pg_user.starts_with("v-banking-transfers-"), "{pg_user}");
    assert_eq!(rows[0].get::<_, i64>(4), 100_000);

    // The idp minted T2 under alice's approval, with the nested act chain.
    let issued = p.idp_events(Some(&jti)).await;
    let t2 = issued
        .iter()
        .find(|e| e["type"] == "token_exchange")
        .unwrap_or_else(|| panic!("idp issuance of {jti}: {issued:?}"));
    assert_eq!(t2["outcome"], "approved");
    assert_eq!(
        t2["actor_chain"],
        json!(["banking", "concierge", "alice@example.com"])
    );
    assert_eq!(t2["approval_id"], approval["id"]);

    // The issuer's audit log has the issuance and the revocation for the same jti and role.
    let audit: Vec<_> = p
        .issuer_audit()
        .into_iter()
        .filter(|l| l["event"]["jti"] == jti.as_str())
        .collect();
    let kinds: Vec<&str> = audit
        .iter()
        .filter_map(|l| l["event"]["type"].as_str())
        .collect();
    assert!(
        kinds.contains(&"cred_issued") && kinds.contains(&"lease_revoked"),
        "{kinds:?}"
    );
    assert!(
        audit
            .iter()
            .any(|l| l["event"]["pg_user"] == pg_user.as_str())
    );
    assert!(
        audit
            .iter()
            .any(|l| l["event"]["fingerprint"] == fingerprint.as_str())
    );

    // The role existed for this one transaction only.
    assert!(p.leftover_roles().await.is_empty());
    let banking = p.service_events("banking").await;
    assert!(
        banking.iter().any(|e| e["jti"] == jti.as_str()),
        "banking's events name the jti"
    );
}
