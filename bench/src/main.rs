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

use std::{path::PathBuf, sync::Arc, time::Instant};

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    kit::telemetry::init("warn", false);
    let started = Instant::now();
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
    match Arc::try_unwrap(p) {
        Ok(p) => p.stop().await?,
        Err(_) => eprintln!("bench: the platform is still shared; its processes die with us"),
    }
    let mut measured = result?;
    measured.memory = memory;
    measured.duration_secs = started.elapsed().as_secs_f64();
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
    eprintln!("bench: token exchange …");
    let exchange = exchange::run(p, &user, scale).await?;
    if std::env::var("BENCH_ONLY").is_ok_and(|v| v == "exchange") {
        // For profiling the token endpoint alone (`perf record -p <idp pid>` meanwhile).
        anyhow::bail!("BENCH_ONLY=exchange: stopping after the token exchange");
    }
    eprintln!("bench: credential lifecycle (Vault API and plain SQL) …");
    let vault = vault::run(p, &user, scale).await?;
    eprintln!("bench: full transfer chain …");
    let chain = chain::run(p, &user, scale).await?;
    eprintln!("bench: events and session revocation …");
    let signals = signals::run(p, scale).await?;
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
