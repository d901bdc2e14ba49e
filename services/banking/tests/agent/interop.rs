//! The official A2A Python SDK (`a2a-sdk` 1.3.0) as the client: its card resolver, its
//! `ClientFactory`, its `AuthInterceptor` for the bearer token. The venv comes from
//! `scripts/python-env.sh` (idempotent); the client script is `tests/interop/a2a_client.py`.

use std::process::Command;

use serde_json::{Value, json};

use crate::{
    harness::{ALICE, spawn_app, workspace_root},
    idp::{BANKING, banking_rar},
};

#[tokio::test]
async fn the_a2a_python_sdk_reads_the_card_sends_streams_and_gets_tasks() {
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

    let alice = app.idp.sign_in(ALICE).await;
    // One T1 for the two reads the script makes.
    let t1 = app
        .idp
        .t1_for(
            &alice,
            BANKING,
            &[
                banking_rar("get_balance", json!({"account": "checking"})),
                banking_rar("list_accounts", json!({})),
            ],
        )
        .await;
    let python = root.join("target/interop-venv/bin/python");
    let script = root.join("services/banking/tests/interop/a2a_client.py");
    let url = app.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .env("A2A_URL", url)
            .env("TOKEN", t1)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "a2a-sdk client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();

    assert_eq!(r["card"]["name"], "Banking");
    assert_eq!(
        r["card"]["interfaces"][0],
        json!({"url": app.endpoint, "binding": "JSONRPC", "version": "1.0"})
    );
    assert_eq!(
        r["card"]["skills"],
        json!([
            "get_balance",
            "list_accounts",
            "open_account",
            "transfer_funds"
        ])
    );
    assert_eq!(r["card"]["streaming"], true);
    assert_eq!(r["card"]["security_schemes"], json!(["bearer"]));

    assert_eq!(r["send"]["state"], "TASK_STATE_COMPLETED", "{r}");
    assert_eq!(r["send"]["text"], "The balance of checking is $5,000.00.");
    assert!(
        r["send"]["data"]["pg_user"]
            .as_str()
            .unwrap()
            .starts_with("v-banking-reader-")
    );

    assert_eq!(r["get_task"]["id"], r["send"]["task_id"]);
    assert_eq!(r["get_task"]["state"], "TASK_STATE_COMPLETED");

    assert_eq!(r["stream"]["kinds"][0], "task", "{r}");
    assert_eq!(
        r["stream"]["states"].as_array().unwrap().last().unwrap(),
        "TASK_STATE_COMPLETED",
        "{r}"
    );
    assert!(
        r["stream"]["kinds"]
            .as_array()
            .unwrap()
            .contains(&json!("artifact_update")),
        "{r}"
    );

    assert_eq!(r["unknown_skill"]["error"], "InvalidParamsError", "{r}");
}
