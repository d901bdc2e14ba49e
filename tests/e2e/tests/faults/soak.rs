//! A bounded soak: several concurrent sessions of two users each run a stream of tier-3
//! transfers (every one approved or denied on the phone through the approvals API), both
//! directions between the same two accounts at once, mixed with policy refusals; one more
//! session is killed from the console while its transfer waits for approval, and another is
//! ended by the anomaly rule. Afterwards: the ledger's total is unchanged and every account
//! moved by exactly the transfers recorded, every approved transfer was applied exactly once
//! and nothing else was, no approval is left pending, no ephemeral role exists, each
//! revocation reached every receiver, and every issuer audit chain verifies.

use std::collections::BTreeMap;

use e2e::{Platform, User};
use kit::a2a::TaskState;

use crate::{
    approval_for, decide, ledger_total, no_ephemeral_role_left, signal_delivered_everywhere,
    tokens_of_approval, transfers_of_approval,
};

/// Concurrent sessions per user (alice and bob).
const SESSIONS_PER_USER: usize = 3;
/// Transfers each session attempts.
const TRANSFERS_PER_SESSION: usize = 40;
/// Every how many transfers the user denies one on the phone.
const DENY_EVERY: usize = 6;

/// What one attempted transfer came to.
#[derive(Debug)]
struct Attempt {
    owner: String,
    approval: String,
    approved: bool,
    state: TaskState,
    source: &'static str,
    destination: &'static str,
    cents: i64,
}

/// One session's run: transfers of a distinct amount each (so its approval is told apart from
/// its siblings' on the shared phone), the direction chosen to keep its net movement near zero.
async fn session(p: &Platform, user: User, lane: usize) -> Vec<Attempt> {
    let mut out = vec![];
    let mut net = 0i64;
    for i in 0..TRANSFERS_PER_SESSION {
        if i == TRANSFERS_PER_SESSION / 2 {
            // One tier-4 request in the middle: refused by policy, nothing minted.
            let (state, text, _) = p
                .ask(&user, "Delete sarah.smith@example.com permanently.")
                .await
                .finish()
                .await;
            assert_eq!(state, TaskState::Rejected, "{text}");
        }
        let dollars = 501 + 3 * (i as i64) + lane as i64;
        let (source, destination) = if net <= 0 {
            ("checking", "savings")
        } else {
            ("savings", "checking")
        };
        let mut conv = p
            .ask(
                &user,
                &format!("Transfer ${dollars} from {source} to {destination}."),
            )
            .await;
        conv.wait_for(TaskState::AuthRequired).await;
        let summary = format!("Transfer ${dollars}.00 from {source} to {destination}");
        let approval = approval_for(p, &user, &summary).await;
        let id = approval["id"].as_str().unwrap().to_owned();
        let approved = (i + lane) % DENY_EVERY != DENY_EVERY - 1;
        let decision = if approved { "approve" } else { "deny" };
        assert_eq!(
            decide(p, &user, &id, decision).await,
            200,
            "{decision} {id}"
        );
        let (state, text, _) = conv.finish().await;
        let expected = if approved {
            TaskState::Completed
        } else {
            TaskState::Rejected
        };
        if state != expected {
            let rows: Vec<(String, String, i64, String)> = p
                .query(
                    "SELECT source, destination, amount_cents, audit_jti FROM banking.transactions WHERE owner = $1 ORDER BY id",
                    &[&user.email],
                )
                .await
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                .collect();
            panic!(
                "{summary}: {state:?}, expected {expected:?}: {text}\nbalances {:?}\nledger {rows:#?}\nthis session so far {out:#?}",
                p.balances(&user.email).await
            );
        }
        if approved {
            net += if source == "checking" { 1 } else { -1 };
        }
        out.push(Attempt {
            owner: user.email.clone(),
            approval: id,
            approved,
            state,
            source,
            destination,
            cents: dollars * 100,
        });
    }
    out
}

/// A session killed from the console while its transfer waits for approval: the transfer
/// never happens, the approval is closed, and the session's tokens are dead.
async fn killed_session(p: &Platform, user: User) -> String {
    let mut conv = p
        .ask(&user, "Transfer $999 from checking to savings.")
        .await;
    conv.wait_for(TaskState::AuthRequired).await;
    p.revoke_session(&user.sid, "soak: killed mid-approval")
        .await;
    let (state, text, _) = conv.finish().await;
    assert!(
        matches!(state, TaskState::Failed | TaskState::Rejected),
        "{state:?}: {text}"
    );
    assert!(!p.introspect_active(&user.access_token).await);
    user.sid
}

/// A session that keeps asking for what policy forbids: the third refusal ends it.
async fn anomalous_session(p: &Platform, user: User) -> String {
    for _ in 0..3 {
        let (state, text, _) = p
            .ask(&user, "Delete sarah.smith@example.com permanently.")
            .await
            .finish()
            .await;
        assert!(
            matches!(state, TaskState::Rejected | TaskState::Failed),
            "{state:?}: {text}"
        );
    }
    user.sid
}

#[tokio::test]
async fn soak_concurrent_sessions_keep_every_invariant() {
    let p = Platform::start().await;
    let total = ledger_total(&p).await;
    let mut before = BTreeMap::new();
    for owner in ["alice@example.com", "bob@example.com"] {
        before.insert(owner, p.balances(owner).await);
    }

    let mut users = vec![];
    for owner in ["alice@example.com", "bob@example.com"] {
        for lane in 0..SESSIONS_PER_USER {
            users.push((p.sign_in(owner).await, lane));
        }
    }
    let victim = p.sign_in("alice@example.com").await;
    let anomalous = p.sign_in("bob@example.com").await;

    let started = std::time::Instant::now();
    let (runs, killed, ended) = tokio::join!(
        futures::future::join_all(users.into_iter().map(|(u, lane)| session(&p, u, lane))),
        killed_session(&p, victim),
        anomalous_session(&p, anomalous),
    );
    let attempts: Vec<Attempt> = runs.into_iter().flatten().collect();
    println!(
        "soak: {} transfers ({} approved) in {:.0} s",
        attempts.len(),
        attempts.iter().filter(|a| a.approved).count(),
        started.elapsed().as_secs_f64()
    );

    // Exactly once: one token and one ledger row per approved transfer, none for a denied one
    // (the same join as `transfers_of_approval`, for every approval at once).
    let minted: BTreeMap<String, (i64, i64)> = p
        .query(
            "SELECT e.body->>'approval_id', count(DISTINCT e.id), count(t.id)
             FROM idp.events e LEFT JOIN banking.transactions t ON t.audit_jti = e.jti
             WHERE e.kind = 'token_exchange' AND e.outcome = 'approved' AND e.body ? 'approval_id'
             GROUP BY 1",
            &[],
        )
        .await
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    for a in &attempts {
        let once = i64::from(a.approved);
        let got = minted.get(&a.approval).copied().unwrap_or((0, 0));
        assert_eq!(got, (once, once), "tokens and ledger rows of {a:?}");
    }
    // Spot-check the batch against the per-approval helpers.
    let a = &attempts[0];
    assert_eq!(
        (
            tokens_of_approval(&p, &a.approval).await,
            transfers_of_approval(&p, &a.approval).await
        ),
        minted.get(&a.approval).copied().unwrap_or((0, 0))
    );
    let approved = attempts.iter().filter(|a| a.approved).count() as i64;
    let rows: i64 = p
        .query("SELECT count(*) FROM banking.transactions", &[])
        .await[0]
        .get(0);
    assert_eq!(rows, approved, "ledger rows vs approved transfers");
    let duplicates: i64 = p
        .query(
            "SELECT count(*) FROM (SELECT audit_jti FROM banking.transactions GROUP BY audit_jti HAVING count(*) > 1) d",
            &[],
        )
        .await[0]
        .get(0);
    assert_eq!(duplicates, 0);

    // The money: the ledger's total is unchanged, and each account moved by exactly the
    // approved transfers.
    assert_eq!(ledger_total(&p).await, total);
    for (owner, was) in &before {
        let mut expected = was.clone();
        for a in attempts
            .iter()
            .filter(|a| a.approved && a.owner == *owner && a.state == TaskState::Completed)
        {
            *expected.get_mut(a.source).unwrap() -= a.cents;
            *expected.get_mut(a.destination).unwrap() += a.cents;
        }
        assert_eq!(&p.balances(owner).await, &expected, "{owner}");
    }

    // No approval is left waiting, and none was decided twice.
    let pending: i64 = p
        .query(
            "SELECT count(*) FROM idp.approvals WHERE status = 'pending'",
            &[],
        )
        .await[0]
        .get(0);
    assert_eq!(pending, 0);

    // Both revocations reached every receiver; the anomaly rule's is in the idp's own events.
    signal_delivered_everywhere(&p, &killed).await;
    signal_delivered_everywhere(&p, &ended).await;
    let reason: Option<String> = p
        .query(
            "SELECT revoked_reason FROM idp.sessions WHERE id = $1",
            &[&ended],
        )
        .await[0]
        .get(0);
    assert_eq!(
        reason.as_deref(),
        Some("anomaly: 3 denied exchanges in 60 s")
    );
    let recorded: i64 = p
        .query(
            "SELECT count(*) FROM idp.events WHERE kind = 'session_revoked' AND session = $1",
            &[&ended],
        )
        .await[0]
        .get(0);
    assert_eq!(
        recorded, 1,
        "the idp's session_revoked event of the anomaly rule"
    );

    no_ephemeral_role_left(&p).await;
    for (file, said) in p.verify_issuer_audit_chains() {
        println!("soak: {file}: {said}");
    }
    // The issuer's admin API verifies the same chain, for a transfer of the run.
    let jti: String = p
        .query("SELECT audit_jti FROM banking.transactions LIMIT 1", &[])
        .await[0]
        .get(0);
    let audit: serde_json::Value = p
        .http
        .get(format!("{}/v1/sys/audit-log", p.stack.urls.verify_rar))
        .query(&[("jti", jti.as_str())])
        .header("X-Vault-Token", &p.stack.admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit["chain"]["intact"], true, "{audit}");
    let kinds: Vec<&str> = audit["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["event"]["type"].as_str())
        .collect();
    assert!(
        kinds.contains(&"cred_issued") && kinds.contains(&"lease_revoked"),
        "{kinds:?}"
    );
}
