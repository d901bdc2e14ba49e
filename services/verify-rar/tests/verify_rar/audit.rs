//! The audit log: every decision is a hash-chained line; `verify-rar audit-verify` checks it
//! and names the first line that was edited. The same decisions land as security events.

use std::process::Command;

use crate::{harness::spawn_app, idp::transfer_rar};

fn audit_verify(file: &std::path::Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_verify-rar"))
        .arg("audit-verify")
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn audit_chain_verifies_and_an_edited_line_is_named() {
    let app = spawn_app().await;
    let alice = app.idp.sign_in("alice@example.com").await;
    let (jwt, claims) = app
        .idp
        .t2(
            &alice,
            transfer_rar("7.00", "checking", "savings"),
            "banking-transfers",
        )
        .await;
    let token = app.login(&jwt).await;
    let (lease, user, _) = app.creds(&token, "banking-transfers").await;
    let _ = app
        .call(
            "GET",
            "/v1/verify-rar/creds/banking-reader",
            Some(&token),
            None,
        )
        .await;

    let path = &app.config.audit_log;
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["event"]["type"].as_str().unwrap(),
                l["event"]["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("login", "allowed"),
            ("cred_issued", "allowed"),
            ("cred_denied", "denied")
        ]
    );
    let issued = &lines[1]["event"];
    assert_eq!(
        (
            issued["jti"].as_str(),
            issued["lease"].as_str(),
            issued["pg_user"].as_str()
        ),
        (
            Some(claims.jti.as_str()),
            Some(lease.as_str()),
            Some(user.as_str())
        )
    );
    assert_eq!(
        issued["actor_chain"],
        serde_json::json!(["banking", "concierge", "alice@example.com"])
    );
    assert!(
        lines[2]["event"]["reason"]
            .as_str()
            .unwrap()
            .contains("banking-reader")
    );

    let (ok, out) = audit_verify(path);
    assert!(ok, "{out}");
    assert!(out.contains("3 lines"), "{out}");

    // The same decisions were published as security events, joinable by jti.
    let events: i64 = app
        .admin
        .query_one(
            "SELECT count(*) FROM verify_rar.events WHERE jti = $1",
            &[&claims.jti],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(events, 3);

    // Someone turns the refusal into an approval.
    let edited = text.replacen("\"outcome\":\"denied\"", "\"outcome\":\"allowed\"", 1);
    assert_ne!(edited, text);
    std::fs::write(path, edited).unwrap();
    let (ok, out) = audit_verify(path);
    assert!(!ok);
    assert!(out.contains("line 3"), "{out}");
    let _ = std::fs::remove_file(path);
}
