//! Two issuers' reapers racing over the same expired leases: each lease is revoked once.

use std::time::Duration;

use serde_json::Value;

use crate::cluster::Cluster;

#[tokio::test(flavor = "multi_thread")]
async fn the_reapers_revoke_each_expired_lease_exactly_once() {
    let c = Cluster::start().await;
    let alice = c.sign_in("alice@example.com").await;

    // Leases issued through both issuers, the hops through both idps.
    const LEASES: usize = 12;
    let mut issued = vec![];
    for i in 0..LEASES {
        let t2 = c.reader_t2(&c.idps[i % 2], &alice).await;
        let vault = c.login(&c.vrs[i % 2], &t2).await;
        issued.push(c.creds(&c.vrs[(i + 1) % 2], &vault, "banking-reader").await);
    }

    // Five minutes pass for every lease at once (the clock is the database's, as the reapers'
    // is): both reapers now find the same expired rows.
    c.p.query(
        "UPDATE verify_rar.leases SET expires_at = now() - interval '1 second' WHERE state = 'active'",
        &[],
    )
    .await;
    let mut left = LEASES as i64;
    for _ in 0..900 {
        left =
            c.p.query(
                "SELECT count(*) FROM verify_rar.leases WHERE state <> 'revoked'",
                &[],
            )
            .await[0]
                .get(0);
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        left, 0,
        "the reapers revoked every expired lease within 90 s"
    );

    // The revocation commits first and is recorded right after: wait for the records, then a
    // moment longer, so that a second reaper's duplicate would have had its chance to appear.
    for _ in 0..900 {
        let events = c.p.service_events("verify_rar").await;
        let recorded = events
            .iter()
            .filter(|e| e["type"] == "lease_expired")
            .count();
        if recorded >= LEASES {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let events = c.p.service_events("verify_rar").await;
    let audit: Vec<Value> = ["audit.jsonl", "audit-1.jsonl"]
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(c.p.data_dir.join("verify-rar").join(f))
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap()["event"].clone())
                .collect::<Vec<_>>()
        })
        .collect();
    for (lease, pg_user) in &issued {
        let expired = |list: &[Value]| {
            list.iter()
                .filter(|e| e["type"] == "lease_expired" && e["lease"] == lease.as_str())
                .count()
        };
        assert_eq!(expired(&events), 1, "one lease_expired event for {lease}");
        assert_eq!(
            expired(&audit),
            1,
            "one lease_expired audit line for {lease}, over both logs"
        );
        let revoked =
            c.p.query(
                "SELECT revoke_reason FROM verify_rar.leases WHERE lease_id = $1",
                &[lease],
            )
            .await;
        assert_eq!(
            revoked[0].get::<_, Option<String>>(0).as_deref(),
            Some("expired")
        );
        let role =
            c.p.query("SELECT 1 FROM pg_roles WHERE rolname = $1", &[pg_user])
                .await;
        assert!(role.is_empty(), "{pg_user} is dropped");
    }
    // Each issuer's audit chain is intact: two writers never shared a file.
    for f in ["audit.jsonl", "audit-1.jsonl"] {
        let path = c.p.data_dir.join("verify-rar").join(f);
        // The binary the platform runs, not a fresh `cargo run` (which would rebuild).
        let out = std::process::Command::new(crate::cluster::bin_dir().join("verify-rar"))
            .arg("audit-verify")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
