//! Policy as code: editing a policy file changes decisions without a restart, and a broken edit
//! is refused while the previous policies stay in force.

use std::time::Duration;

use crate::support::*;

async fn until<F: AsyncFnMut() -> bool>(mut check: F) -> bool {
    for _ in 0..100 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn a_policy_edit_changes_the_decision_without_a_restart() {
    let app = spawn_app().await;
    let alice = app.sign_in("alice@example.com").await;
    app.hop1(&alice.access_token, BANKING, &[balance("checking")])
        .await
        .expect("reads are allowed before the edit");

    // A presenter blocks balance reads of savings.
    let extra = r#"
@id("freeze-savings") @tier("4")
@reason("Savings is frozen during the audit")
forbid (principal, action == Action::"get_balance", resource) when { context has account && context.account == "savings" };
"#;
    std::fs::write(app.policy_dir.join("zz-freeze.cedar"), extra).unwrap();
    let blocked = until(async || {
        matches!(app.hop1(&alice.access_token, BANKING, &[balance("savings")]).await,
            Err(kit::exchange::ExchangeError::Refused { ref description, .. }) if description == "Savings is frozen during the audit")
    })
    .await;
    assert!(blocked, "the new policy took effect");
    app.hop1(&alice.access_token, BANKING, &[balance("checking")])
        .await
        .expect("other reads still allowed");
    assert_eq!(app.last_event("policy_reloaded").await["outcome"], "info");

    // A broken edit is refused; the policies in force stay.
    std::fs::write(
        app.policy_dir.join("zz-broken.cedar"),
        "permit (principal, action, resource) when { nonsense };",
    )
    .unwrap();
    let reported = until(async || {
        app.events(None)
            .await
            .iter()
            .any(|e| e["type"] == "policy_reload_failed")
    })
    .await;
    assert!(reported);
    let (error, _) = refused(
        app.hop1(&alice.access_token, BANKING, &[balance("savings")])
            .await,
    );
    assert_eq!(error, "access_denied");
}
