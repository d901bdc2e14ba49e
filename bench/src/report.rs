//! The report: one table row per line of the DESIGN.md budget, each with its baseline from the
//! same run and the ratio, then the details (concurrency, hop breakdown, memory). Printed, and
//! written to `target/bench/report.md`.

use std::fmt::Write as _;

use crate::{chain, exchange, load::Samples, signals, vault, web};

/// What the run measured, section by section.
#[derive(Debug)]
pub struct Measured {
    pub machine: String,
    pub date: String,
    pub duration_secs: f64,
    pub exchange: exchange::Results,
    pub vault: vault::Results,
    pub chain: chain::Results,
    pub signals: signals::Results,
    pub web: web::Results,
    /// Load averages (1, 5, 15 min) before and after the run.
    pub load: String,
    /// (service, VmHWM kB, VmRSS kB)
    pub memory: Vec<(String, u64, u64)>,
}

fn f(ms: f64) -> String {
    if ms.is_nan() {
        "–".into()
    } else if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

fn lat(s: &Samples) -> String {
    format!("{} / {}", f(s.p50()), f(s.p99()))
}

fn verdict(ok: bool) -> &'static str {
    if ok { "✅ meets" } else { "❌ misses" }
}

fn med(v: &[f64]) -> f64 {
    Samples::from_ms(v.to_vec()).p50()
}

/// The DB leg of the chain, as the seed measured its own: banking's Vault login, creds, SQL
/// and revoke, from banking's events.
pub fn db_leg(c: &chain::Results) -> f64 {
    [
        "vault_login",
        "credential_issued",
        "sql_executed",
        "lease_revoked",
    ]
    .iter()
    .map(|k| {
        c.hops
            .get(&("banking".to_owned(), (*k).to_owned()))
            .map_or(0.0, Samples::p50)
    })
    .sum()
}

pub fn render(m: &Measured) -> String {
    let mut o = String::new();
    let e = &m.exchange;
    let best = e
        .loaded
        .iter()
        .max_by(|a, b| a.1.per_sec().total_cmp(&b.1.per_sec()));
    let crypto = e.crypto.p50();
    // Two cores doing nothing but the crypto of exchanges.
    let floor_rate = 2.0 * 1000.0 / crypto;
    let (api1, sql1) = (&m.vault.api[0], &m.vault.sql[0]);
    let (api4, sql4) = (&m.vault.api[1], &m.vault.sql[1]);
    let r1 = api1.total.p50() / sql1.total.p50();
    let r4 = api4.total.p50() / sql4.total.p50();
    let chain_floor = 2.0 * crypto + sql1.total.p50();
    let s = &m.signals;

    let _ = writeln!(o, "## Performance budget: {} ({})\n", m.date, m.machine);
    let _ = writeln!(
        o,
        "Load average (1, 5, 15 min): {}. The driver shares the two cores with the platform.\n",
        m.load
    );
    let _ = writeln!(
        o,
        "| row | target | measured (p50 / p99) | baseline, same run | ratio | verdict |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|");
    let _ = writeln!(
        o,
        "| token exchange (RAR policy + actor token), warm, 1 client | p50 ≤ 2 ms | {} | bare crypto (verify 2 × ES256, sign 1): {} | {:.1}× | {} |",
        lat(&e.sequential),
        lat(&e.crypto),
        e.sequential.p50() / crypto,
        verdict(e.sequential.p50() <= 2.0)
    );
    if let Some((w, b)) = best {
        let _ = writeln!(
            o,
            "| token exchange throughput ({w} clients) | ≥ 2,000/s | {:.0}/s ({}) | crypto floor on 2 cores: {:.0}/s | {:.2} of floor | {} |",
            b.per_sec(),
            lat(b),
            floor_rate,
            b.per_sec() / floor_rate,
            verdict(b.per_sec() >= 2000.0)
        );
    }
    for (api, sql, r) in [(api1, sql1, r1), (api4, sql4, r4)] {
        let _ = writeln!(
            o,
            "| credential issue + revoke via the Vault API, {} client(s) (login, creds, connect, 3-statement transfer, revoke) | ≤ 1.3 × SQL | {}; {:.0}/s | same lifecycle as plain SQL: {}; {:.0}/s | {:.2}× | {} |",
            api.clients,
            lat(&api.total),
            api.total.per_sec(),
            lat(&sql.total),
            sql.total.per_sec(),
            r,
            verdict(r <= 1.3)
        );
    }
    let _ = writeln!(
        o,
        "| full transfer chain (S1, approval auto-granted) | p50 ≤ 30 ms | {} | our floor (2 × exchange crypto + the SQL lifecycle): {}; the seed's DB leg alone: ~108 ms | {:.1}× floor; {:.2}× seed DB leg | {} |",
        lat(&m.chain.total),
        f(chain_floor),
        m.chain.total.p50() / chain_floor,
        m.chain.total.p50() / 108.0,
        verdict(m.chain.total.p50() <= 30.0)
    );
    let _ = writeln!(
        o,
        "| event to browser through the web UI (exchange sent → its row on a signed-in session's `/live` SSE stream) | ≤ 100 ms | {} | the exchange itself: {}; a bare `LISTEN` subscriber: {} | {:.2}× the exchange | {} |",
        lat(&m.web.live),
        lat(&m.web.request),
        lat(&s.listen),
        m.web.live.p50() / m.web.request.p50(),
        verdict(m.web.live.p99() <= 100.0)
    );
    let _ = writeln!(
        o,
        "| event to browser over SSE (the idp's approvals stream: CIBA request → SSE event) | ≤ 100 ms | {} | the request itself: {} | {:.2}× | {} |",
        lat(&s.sse),
        lat(&s.sse_request),
        s.sse.p50() / s.sse_request.p50(),
        verdict(s.sse.p99() <= 100.0)
    );
    let _ = writeln!(
        o,
        "| security event to a `LISTEN security_events` subscriber (exchange sent → NOTIFY received) | ≤ 100 ms | {} | the exchange itself: {} | {:.2}× | {} |",
        lat(&s.listen),
        lat(&s.listen_request),
        s.listen.p50() / s.listen_request.p50(),
        verdict(s.listen.p99() <= 100.0)
    );
    let _ = writeln!(
        o,
        "| session revoked → every receiver refusing | ≤ 250 ms | median {} / worst {} of {} | the revocation request itself: {} | {:.2}× | {} |",
        f(s.revoked_all.p50()),
        f(s.revoked_all.max()),
        s.revoked_all.len(),
        lat(&s.revoke_request),
        s.revoked_all.p50() / s.revoke_request.p50(),
        verdict(s.revoked_all.max() <= 250.0)
    );

    let _ = writeln!(o, "\n### Token exchange under load\n");
    let _ = writeln!(o, "| clients | exchanges/s | p50 / p99 | samples |");
    let _ = writeln!(o, "|---|---|---|---|");
    let _ = writeln!(
        o,
        "| 1 | {:.0} | {} | {} |",
        e.sequential.per_sec(),
        lat(&e.sequential),
        e.sequential.len()
    );
    for (w, s) in &e.loaded {
        let _ = writeln!(o, "| {w} | {:.0} | {} | {} |", s.per_sec(), lat(s), s.len());
    }

    let _ = writeln!(o, "\n### Credential lifecycle, step by step (p50)\n");
    let _ = writeln!(
        o,
        "| way | clients | issue (login + creds / create + grant) | connect as the role | transfer | revoke / drop | issue + revoke only | whole |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|");
    for (way, runs) in [("Vault API", &m.vault.api), ("plain SQL", &m.vault.sql)] {
        for r in runs.iter() {
            let _ = writeln!(
                o,
                "| {way} | {} | {} | {} | {} | {} | {} | {} |",
                r.clients,
                f(med(&r.steps.issue)),
                f(med(&r.steps.connect)),
                f(med(&r.steps.transfer)),
                f(med(&r.steps.revoke)),
                f(r.issue_revoke.p50()),
                f(r.total.p50())
            );
        }
    }

    for (a, q) in m.vault.api.iter().zip(&m.vault.sql) {
        let _ = writeln!(
            o,
            "\n{} client(s): the issuer's own part (issue + revoke only) is {} against {} as plain SQL ({:.2}×); connecting and the transfer are the same SQL either way.",
            a.clients,
            f(a.issue_revoke.p50()),
            f(q.issue_revoke.p50()),
            a.issue_revoke.p50() / q.issue_revoke.p50()
        );
    }

    let _ = writeln!(
        o,
        "\n### Full chain, by hop (p50 of each event's `duration_ms`, {} chains)\n",
        m.chain.total.len()
    );
    let _ = writeln!(o, "| service | event | p50 | p99 |");
    let _ = writeln!(o, "|---|---|---|---|");
    for ((svc, kind), s) in &m.chain.hops {
        let _ = writeln!(o, "| {svc} | {kind} | {} | {} |", f(s.p50()), f(s.p99()));
    }
    let _ = writeln!(
        o,
        "\nDB leg (banking: Vault login + creds + SQL + revoke, p50s summed): {} — the seed reported ~108 ms for its DB leg.",
        f(db_leg(&m.chain))
    );

    let _ = writeln!(o, "\n### Session revoked → first refusal, per receiver\n");
    let _ = writeln!(o, "| receiver | p50 / p99 |");
    let _ = writeln!(o, "|---|---|");
    for (name, s) in &s.revoked {
        let _ = writeln!(o, "| {name} | {} |", lat(s));
    }

    let _ = writeln!(o, "\n### Memory after the run\n");
    let _ = writeln!(
        o,
        "| service | peak resident (VmHWM) | resident now (VmRSS) |"
    );
    let _ = writeln!(o, "|---|---|---|");
    for (name, hwm, rss) in &m.memory {
        let _ = writeln!(
            o,
            "| {name} | {:.1} MiB | {:.1} MiB |",
            *hwm as f64 / 1024.0,
            *rss as f64 / 1024.0
        );
    }
    let _ = writeln!(
        o,
        "\nThe whole run took {:.0} s (stack start-up included, build excluded).",
        m.duration_secs
    );
    o
}
