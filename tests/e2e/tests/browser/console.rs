//! The console in a browser (issue: S1 through the chat, approved on the phone panel, the
//! transfer and its events, the token inspector on the exchanged token, the forensics join;
//! then S2 refused with the policy's reason).

use thirtyfour::prelude::*;

use crate::browser::Browser;

#[tokio::test]
async fn s1_and_s2_in_the_browser() {
    let p = e2e::Platform::start().await;
    let web = p.stack.urls.web.clone();
    let before = p.balances("alice@example.com").await;
    let b = Browser::start().await;
    b.sign_in(&web, "alice@example.com").await;
    b.find("#events li.event").await;
    b.shot("02-console").await;

    // S1 through the chat.
    let ask = b.find("#ask-text").await;
    ask.send_keys("Transfer $1,000 from checking to savings.")
        .await
        .unwrap();
    b.find("#ask-send").await.click().await.unwrap();
    b.wait_text("#chat li.msg.user", "Transfer $1,000").await;

    // The approval arrives on the phone panel, in plain words, with the chain and code.
    let approval = b
        .wait_text(
            "#approvals article.approval",
            "Transfer $1,000.00 from checking to savings",
        )
        .await;
    assert!(
        approval.contains("Banking ← Concierge ← alice@example.com"),
        "{approval}"
    );
    assert!(approval.contains("Binding code"), "{approval}");
    b.wait_text("#chat li.msg.waiting", "approve").await;
    b.shot("03-phone-approval").await;
    b.find("#approvals button.approve")
        .await
        .click()
        .await
        .unwrap();

    // The transfer succeeds and its events appear.
    b.wait_text("#chat li.msg.done", "Transferred $1,000.00")
        .await;
    b.wait_text("#events li.event", "cred_issued").await;
    b.wait_text("#events li.event", "lease_revoked").await;
    b.wait_text("#approvals", "No approval waiting").await;
    b.shot("04-transfer-done").await;
    let after = p.balances("alice@example.com").await;
    assert_eq!(after["checking"], before["checking"] - 100_000);
    assert_eq!(after["savings"], before["savings"] + 100_000);

    // The token inspector on the exchanged token: T2, the one the ledger row names.
    let jti: String = p
        .query(
            "SELECT audit_jti FROM banking.transactions ORDER BY id DESC LIMIT 1",
            &[],
        )
        .await[0]
        .get(0);
    b.find(&format!("#events a.jti[href='/inspect/{jti}']"))
        .await
        .click()
        .await
        .unwrap();
    let chain = b.find("#act-chain").await.text().await.unwrap();
    assert!(
        chain.contains("Banking")
            && chain.contains("Concierge")
            && chain.contains("alice@example.com"),
        "{chain}"
    );
    b.wait_text(".chain-text", "Banking ← Concierge ← alice@example.com")
        .await;
    let rar = b.find("#rar").await.text().await.unwrap();
    assert!(rar.contains("transfer_funds"), "{rar}");
    assert!(rar.contains("verify-rar/creds/banking-transfers"), "{rar}");
    let claims = b.find("#claims").await.text().await.unwrap();
    assert!(claims.contains(&jti), "{claims}");
    let expiry = b.find("#expiry").await;
    assert!(
        !expiry.text().await.unwrap().is_empty(),
        "the expiry counts down"
    );
    b.shot("05-token-inspector").await;

    // Forensics: the idp, the issuer and the ledger agree about this jti.
    b.find(&format!("a[href='/forensics?jti={jti}']"))
        .await
        .click()
        .await
        .unwrap();
    let checks = b.find("#checks").await;
    let held = checks.find_all(By::Css("li.ok")).await.unwrap().len();
    let missing = checks.find_all(By::Css("li.missing")).await.unwrap();
    let mut missing_text = vec![];
    for m in &missing {
        missing_text.push(m.text().await.unwrap_or_default());
    }
    assert!(missing.is_empty(), "forensics disagrees: {missing_text:?}");
    assert_eq!(held, 7);
    b.wait_text("#issuer-records", "cred_issued").await;
    b.wait_text("#issuer-records", "lease_revoked").await;
    b.wait_text("#ledger-records", &jti).await;
    b.shot("06-forensics").await;

    // S2 from its scenario button: refused, with the policy's reason, in red.
    b.driver.goto(format!("{web}/")).await.unwrap();
    b.find("#scenario-s2").await.click().await.unwrap();
    let refusal = b.wait_text("#chat li.msg.refused", "never delegated").await;
    assert!(refusal.contains("identity provider"), "{refusal}");
    let denial = b
        .wait_text("#events li.event.denied", "policy_denied")
        .await;
    assert!(
        denial.contains("delete_user") || denial.contains("Delete"),
        "{denial}"
    );
    b.shot("07-s2-refused").await;
    assert!(
        p.service_events("iam").await.is_empty(),
        "the iam agent was never called"
    );

    // S6 from its picker: the banking agent, switched into asking for ten times the amount,
    // is refused by the idp, which names the rule in red.
    let picker = b.find("#attack-toggle").await;
    assert_eq!(
        picker.value().await.unwrap().as_deref(),
        Some("widen_amount"),
        "the picker starts at the first toggle"
    );
    let before = p.balances("alice@example.com").await;
    b.find("#scenario-s6").await.click().await.unwrap();
    b.wait_text("#chat li.msg", "Attack toggle widen_amount")
        .await;
    let refusal = b
        .wait_text("#chat li.msg.refused", "exceeds the granted")
        .await;
    assert!(refusal.contains("$10,000.00"), "{refusal}");
    b.wait_text("#events li.event.denied", "rar_widened").await;
    b.shot("08-s6-refused").await;
    assert_eq!(p.balances("alice@example.com").await, before);
    b.quit().await;
}
