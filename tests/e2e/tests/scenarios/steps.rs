//! Step-by-step runs (presenter mode's mechanism): the concierge pauses before each hop, shows
//! the artifact, and goes on only when told.

use e2e::Platform;
use kit::a2a::{Message, TaskState, ToolCall};
use serde_json::{Value, json};

#[tokio::test]
async fn a_step_by_step_run_pauses_before_each_hop() {
    let p = Platform::start().await;
    let alice = p.sign_in("alice@example.com").await;
    let call = ToolCall {
        skill: "assist".into(),
        arguments: json!({"text": "What's my checking balance?", "step_mode": true}),
    };
    let mut conv = p
        .ask_with(
            &alice,
            Message::tool_call("What's my checking balance?", &call),
        )
        .await;
    let task = conv.task_id().await;
    let url = format!("{}/steps/{task}", p.stack.urls.concierge);
    let mut hops = vec![];
    for expected in ["plan", "exchange", "dispatch"] {
        let view = loop {
            let v: Value = p
                .http
                .get(&url)
                .bearer_auth(&alice.access_token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if v["pending"].is_object() && !hops.contains(&v["pending"]["seq"]) {
                break v;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        assert_eq!(view["pending"]["hop"], expected, "{view}");
        hops.push(view["pending"]["seq"].clone());
        if expected == "exchange" {
            assert_eq!(
                view["pending"]["artifact"][0]["operationDetails"]["action"],
                "get_balance"
            );
        }
        if expected == "dispatch" {
            assert_eq!(
                view["pending"]["artifact"]["token"]["act"]["sub"],
                "spiffe://demo.local/agent/concierge"
            );
        }
        // Another user can neither see nor advance the run.
        let bob = p.sign_in("bob@example.com").await;
        assert_eq!(
            p.http
                .post(format!("{url}/next"))
                .bearer_auth(&bob.access_token)
                .send()
                .await
                .unwrap()
                .status(),
            404
        );
        assert_eq!(
            p.http
                .post(format!("{url}/next"))
                .bearer_auth(&alice.access_token)
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    let (state, text, _) = conv.finish().await;
    assert_eq!(state, TaskState::Completed, "{text}");
}

/// S7 over S1: the presenter talks to the concierge only. The concierge pauses before its own
/// hops, and relays banking's pauses (hop 2, the approval, the issuance, the SQL, the
/// revocation) as its own; "next" on the concierge continues banking.
#[tokio::test]
async fn s1_step_by_step_pauses_before_every_hop_including_the_specialists() {
    let p = Platform::start().await;
    let alice = p.sign_in("alice@example.com").await;
    let before = p.balances("alice@example.com").await;
    let sentence = "Transfer $1,000 from checking to savings.";
    let call = ToolCall {
        skill: "assist".into(),
        arguments: json!({"text": sentence, "step_mode": true}),
    };
    let mut conv = p
        .ask_with(&alice, Message::tool_call(sentence, &call))
        .await;
    let task = conv.task_id().await;
    let url = format!("{}/steps/{task}", p.stack.urls.concierge);

    let expected = [
        "plan",
        "exchange",
        "dispatch",
        "exchange",
        "approval",
        "issuance",
        "sql",
        "revocation",
    ];
    let mut seen: Vec<Value> = vec![];
    let mut t2_jti = String::new();
    for hop in expected {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        let view = loop {
            let v: Value = p
                .http
                .get(&url)
                .bearer_auth(&alice.access_token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if v["pending"].is_object() && !seen.iter().any(|s| s["seq"] == v["pending"]["seq"]) {
                break v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no pause before {hop} within a minute; last view {v}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        let pause = &view["pending"];
        let artifact = &pause["artifact"];
        assert_eq!(pause["hop"], hop, "{view}");
        assert!(!pause["narration"].as_str().unwrap().is_empty());
        // What was shown before stays in `done`, in order.
        let done: Vec<&Value> = view["done"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| &d["hop"])
            .collect();
        let earlier: Vec<&Value> = seen.iter().map(|s| &s["hop"]).collect();
        assert_eq!(done, earlier, "{view}");

        match (seen.len(), hop) {
            (0, "plan") => assert_eq!(artifact[0]["skill"], "transfer_funds"),
            (1, "exchange") => {
                // Hop 1: exactly the transfer, for banking.
                let d = &artifact[0]["operationDetails"];
                assert_eq!(artifact.as_array().unwrap().len(), 1, "{artifact}");
                assert_eq!(d["action"], "transfer_funds");
                assert_eq!(d["amount"], usd_1000(), "{d}");
                assert_eq!(d["source"], "checking");
                assert_eq!(d["destination"], "savings");
            }
            (2, "dispatch") => {
                let t1 = &artifact["token"];
                assert_eq!(t1["aud"], "spiffe://demo.local/agent/banking", "{t1}");
                assert_eq!(t1["act"]["sub"], "spiffe://demo.local/agent/concierge");
            }
            (3, "exchange") => {
                // Hop 2, banking's: the business RAR plus read access to one creds path.
                let entries = artifact.as_array().unwrap();
                assert_eq!(entries.len(), 2, "{artifact}");
                assert_eq!(entries[0]["operationDetails"]["amount"], usd_1000());
                assert_eq!(entries[1]["type"], "vault:path_access");
                assert_eq!(
                    entries[1]["locations"],
                    json!(["verify-rar/creds/banking-transfers"])
                );
            }
            (4, "approval") => {
                assert_eq!(
                    artifact["summary"],
                    "Transfer $1,000.00 from checking to savings"
                );
                assert_eq!(
                    artifact["chain"],
                    json!(["banking", "concierge", "alice@example.com"])
                );
                // The phone shows the same request: alice approves it there.
                let approval = p.approve_next(&alice).await;
                assert_eq!(approval["summary"], artifact["summary"]);
                assert_eq!(approval["chain"], artifact["chain"]);
                assert_eq!(approval["id"], artifact["approval_id"]);
            }
            (5, "issuance") => {
                assert_eq!(artifact["role"], "banking-transfers");
                assert_eq!(
                    artifact["creds"],
                    "GET /v1/verify-rar/creds/banking-transfers"
                );
                // T2, decoded: for the issuer, banking acting for the concierge acting for alice.
                let t2 = &artifact["token"];
                assert_eq!(t2["aud"], "verify-rar", "{t2}");
                assert_eq!(t2["sub"], alice.sub.as_str());
                assert_eq!(t2["act"]["sub"], "spiffe://demo.local/agent/banking");
                assert_eq!(
                    t2["act"]["act"]["sub"],
                    "spiffe://demo.local/agent/concierge"
                );
                t2_jti = t2["jti"].as_str().unwrap().to_owned();
            }
            (6, "sql") => {
                let statements = artifact.as_array().unwrap();
                let sql: Vec<&str> = statements
                    .iter()
                    .map(|s| s["sql"].as_str().unwrap())
                    .collect();
                assert_eq!(sql[0], "BEGIN");
                assert!(
                    sql[1].starts_with(
                        "UPDATE banking.accounts SET balance_cents = balance_cents + $3"
                    ),
                    "{sql:?}"
                );
                assert_eq!(
                    statements[1]["params"],
                    json!(["alice@example.com", "checking", -100_000])
                );
                assert_eq!(
                    statements[2]["params"],
                    json!(["alice@example.com", "savings", 100_000])
                );
                assert!(
                    sql[3].starts_with("INSERT INTO banking.transactions"),
                    "{sql:?}"
                );
                assert_eq!(sql[4], "COMMIT");
                // Nothing has moved yet.
                assert_eq!(p.balances("alice@example.com").await, before);
            }
            (7, "revocation") => {
                let lease = artifact["lease_id"].as_str().unwrap();
                let pg_user = artifact["pg_user"].as_str().unwrap();
                assert!(pg_user.starts_with("v-banking-transfers-"), "{pg_user}");
                // The money has moved; the one-transaction role still exists, until "next".
                let rows = p
                    .query(
                        "SELECT l.pg_user, l.state, l.jti FROM verify_rar.leases l JOIN pg_roles r ON r.rolname = l.pg_user WHERE l.lease_id = $1",
                        &[&lease],
                    )
                    .await;
                assert_eq!(rows.len(), 1, "lease {lease} and its role");
                assert_eq!(rows[0].get::<_, String>(0), pg_user);
                assert_eq!(rows[0].get::<_, String>(1), "active");
                assert_eq!(rows[0].get::<_, String>(2), t2_jti);
                assert_eq!(
                    p.balances("alice@example.com").await["checking"],
                    before["checking"] - 100_000
                );
            }
            other => panic!("unexpected pause {other:?}: {view}"),
        }
        seen.push(pause.clone());
        let next = p
            .http
            .post(format!("{url}/next"))
            .bearer_auth(&alice.access_token)
            .send()
            .await
            .unwrap();
        assert_eq!(next.status(), 200, "next after {hop}");
    }

    let (state, text, _) = conv.finish().await;
    assert_eq!(state, TaskState::Completed, "{text}");
    let hops: Vec<&str> = seen.iter().map(|s| s["hop"].as_str().unwrap()).collect();
    println!(
        "the S1 step-by-step run paused before: {}",
        hops.join(" → ")
    );
    // After "next", banking waited for the approval the way S1 does: AUTH_REQUIRED, relayed.
    assert!(conv.events.iter().any(|e| matches!(
        e,
        kit::a2a::StreamResponse::StatusUpdate(u) if u.status.state == TaskState::AuthRequired
    )));

    // Moved once: checking −1000, savings +1000, one ledger row under T2's jti; the role is gone.
    let after = p.balances("alice@example.com").await;
    assert_eq!(after["checking"], before["checking"] - 100_000);
    assert_eq!(after["savings"], before["savings"] + 100_000);
    assert_eq!(after.len(), before.len());
    let rows = p
        .query(
            "SELECT audit_jti, amount_cents FROM banking.transactions",
            &[],
        )
        .await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>(0), t2_jti);
    assert_eq!(rows[0].get::<_, i64>(1), 100_000);
    assert!(p.leftover_roles().await.is_empty());
    // The run is over: there is nothing left to step through.
    let gone = p
        .http
        .get(&url)
        .bearer_auth(&alice.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}

/// The RAR amount of S1, as the catalogue normalises it.
fn usd_1000() -> Value {
    json!({"value": "1000.00", "currency": "USD"})
}
