//! `just bench`: the performance budget of `DESIGN.md`, measured against baselines taken in
//! the same run, on this machine. See `docs/BENCHMARKS.md` for what each row means.
//!
//! The platform is started exactly as `just up` starts it ([`stack::launch::Stack::start`]):
//! every service its own release-built process on free ports, an embedded Postgres with
//! durable commits in a temp directory, loopback HTTP. Processes rather than in-process
//! services because that is what runs in production and what `VmHWM` per service needs; the
//! one difference from `just up` is the idp's loud benchmark setting
//! (`IDP_BENCH_AUTO_APPROVE=true`), so the transfer chain runs without a person.
//!
//! The driver shares the machine's two cores with the platform; the report says so.
//! `BENCH_SCALE` (default 1) scales every iteration count (0.1 for a smoke run).

mod chain;
mod exchange;
mod load;
mod platform;
mod report;
mod signals;
mod vault;
mod web;

use std::{path::PathBuf, sync::Arc, time::Instant};

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    kit::telemetry::init("warn", false);
    let started = Instant::now();
    let load_before = load_average();
    let scale: f64 = std::env::var("BENCH_SCALE")
        .ok()
        .map(|v| v.parse().context("BENCH_SCALE must be a number"))
        .transpose()?
        .unwrap_or(1.0);
    let root = workspace_root()?;
    let bin_dir = std::env::var_os("BENCH_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/release"));
    eprintln!("bench: starting the platform from {}", bin_dir.display());
    let p = Arc::new(platform::Platform::start(root.clone(), bin_dir).await?);
    eprintln!("bench: data and service logs in {}", p.data_dir.display());
    let result = measure(&p, scale, started).await;
    let memory = memory(&p);
    let data_dir = p.data_dir.clone();
    match Arc::try_unwrap(p) {
        Ok(p) => p.stop().await?,
        Err(_) => eprintln!("bench: the platform is still shared; its processes die with us"),
    }
    // The services' logs stay for a failed run (and with BENCH_KEEP_LOGS=1); a good run leaves
    // nothing in the temp directory.
    let keep = result.is_err() || std::env::var_os("BENCH_KEEP_LOGS").is_some();
    if keep {
        eprintln!(
            "bench: service logs kept in {}",
            data_dir.join("logs").display()
        );
    } else {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    let mut measured = result?;
    measured.memory = memory;
    measured.duration_secs = started.elapsed().as_secs_f64();
    measured.load = format!("{load_before} before, {} after", load_average());
    let text = report::render(&measured);
    println!("{text}");
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("report.md"), &text)?;
    eprintln!("bench: wrote {}", out.join("report.md").display());
    Ok(())
}

async fn measure(
    p: &Arc<platform::Platform>,
    scale: f64,
    started: Instant,
) -> anyhow::Result<report::Measured> {
    let user = p.sign_in(platform::ALICE).await?;
    // For profiling one section alone (`perf record -a` meanwhile): `exchange` or `vault`.
    let only = std::env::var("BENCH_ONLY").ok();
    if only.as_deref() == Some("vault") {
        vault::run(p, &user, scale).await?;
        anyhow::bail!("BENCH_ONLY=vault: stopping after the credential lifecycle");
    }
    eprintln!("bench: token exchange …");
    let exchange = exchange::run(p, &user, scale).await?;
    if only.as_deref() == Some("exchange") {
        for (clients, s) in &exchange.loaded {
            eprintln!(
                "bench: {clients} clients: {:.0}/s, p50 {:.2} ms",
                s.per_sec(),
                s.p50()
            );
        }
        anyhow::bail!("BENCH_ONLY=exchange: stopping after the token exchange");
    }
    eprintln!("bench: credential lifecycle (Vault API and plain SQL, interleaved) …");
    let vault = vault::run(p, &user, scale).await?;
    eprintln!("bench: full transfer chain …");
    let chain = chain::run(p, &user, scale).await?;
    eprintln!("bench: events and session revocation …");
    let signals = signals::run(p, scale).await?;
    eprintln!("bench: event to browser through the web UI …");
    let web = web::run(p, ((100.0 * scale) as usize).max(5)).await?;
    Ok(report::Measured {
        machine: machine(),
        date: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        duration_secs: started.elapsed().as_secs_f64(),
        exchange,
        vault,
        chain,
        signals,
        web,
        load: String::new(),
        memory: vec![],
    })
}

/// `VmHWM` and `VmRSS` (kB) of every service process.
fn memory(p: &platform::Platform) -> Vec<(String, u64, u64)> {
    p.stack
        .pids()
        .into_iter()
        .map(|(name, pid)| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let field = |k: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(k))
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            (name, field("VmHWM:"), field("VmRSS:"))
        })
        .collect()
}

/// The 1, 5 and 15-minute load averages: how busy the machine was besides us.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// CPU model and count, memory, kernel: what a reader needs to compare two reports.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cores} cores, {cpu}, {mem_gib:.0} GiB, Linux {}",
        kernel.trim()
    )
}

fn workspace_root() -> anyhow::Result<PathBuf> {
    Ok(PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()?)
}
