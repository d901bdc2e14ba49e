//! Python `hvac` 2.4.0 against the issuer: login, creds, lookup, renew, revoke. The venv comes
//! from `scripts/python-env.sh` (idempotent); the client script is `tests/interop/hvac_flow.py`.

use std::process::Command;

use crate::{
    harness::{spawn_app, workspace_root},
    idp::transfer_rar,
};

#[tokio::test]
async fn hvac_logs_in_reads_creds_looks_up_renews_and_revokes() {
    let app = spawn_app().await;
    let root = workspace_root();
    let setup = Command::new("bash")
        .arg(root.join("scripts/python-env.sh"))
        .output()
        .unwrap();
    assert!(
        setup.status.success(),
        "python-env.sh failed: {}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let python = root.join("target/interop-venv/bin/python");
    let alice = app.idp.sign_in("alice@example.com").await;
    let (jwt, _) = app
        .idp
        .t2(
            &alice,
            transfer_rar("3.00", "checking", "savings"),
            "banking-transfers",
        )
        .await;
    let script = root.join("services/verify-rar/tests/interop/hvac_flow.py");
    let addr = app.addr.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .env("VAULT_ADDR", addr)
            .env("JWT", jwt)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "hvac flow failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(result["authenticated"], true);
    assert_eq!(result["revoke_status"], 204);
    assert_eq!(result["lookup_after_revoke"], "InvalidRequest");
    let user = result["username"].as_str().unwrap();
    assert!(user.starts_with("v-banking-transfers-"));
    assert!(!app.role_exists(user).await);
}
