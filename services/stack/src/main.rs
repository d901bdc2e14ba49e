//! `stack`: runs the whole platform on this machine (`just up`), until Ctrl-C.
//!
//! Configuration (environment): `DATABASE_URL` to use an existing Postgres instead of the
//! embedded one, `DATA_DIR` (default `.data`), `STACK_HOST` (localhost), and each port:
//! `PG_PORT` (55432), `IDP_PORT` (8081), `SSF_PORT` (8082), `VR_PORT` (8200), `GRAPH_PORT` (8094),
//! `CONCIERGE_PORT` (8090), `BANKING_PORT` (8091), `IAM_PORT` (8092), `ENTRA_PORT` (8093),
//! `WEB_PORT` (8080).
//! `LLM_BASE_URL`, `LLM_MODEL`, `LLM_API_KEY`: the concierge's optional LLM planner.

use std::path::PathBuf;

use anyhow::Context as _;
use stack::launch::{LlmEndpoint, Options, Ports, Stack};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    kit::telemetry::init("info,tokio_postgres=warn", false);
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    // Every port of this run with the variable that sets it, for the check below.
    let wanted = std::cell::RefCell::new(Vec::new());
    let port = |k: &'static str, d: u16| -> anyhow::Result<u16> {
        let p = var(k)
            .map(|v| v.parse().with_context(|| format!("{k} must be a port")))
            .unwrap_or(Ok(d))?;
        wanted.borrow_mut().push((k, p));
        Ok(p)
    };
    let exe = std::env::current_exe()?;
    let opts = Options {
        root: std::env::current_dir()?,
        data_dir: PathBuf::from(var("DATA_DIR").unwrap_or_else(|| ".data".into())),
        database_url: var("DATABASE_URL"),
        ports: Ports {
            postgres: port("PG_PORT", Ports::DEMO.postgres)?,
            idp: port("IDP_PORT", Ports::DEMO.idp)?,
            ssf: port("SSF_PORT", Ports::DEMO.ssf)?,
            verify_rar: port("VR_PORT", Ports::DEMO.verify_rar)?,
            graph: port("GRAPH_PORT", Ports::DEMO.graph)?,
            concierge: port("CONCIERGE_PORT", Ports::DEMO.concierge)?,
            banking: port("BANKING_PORT", Ports::DEMO.banking)?,
            iam: port("IAM_PORT", Ports::DEMO.iam)?,
            entra: port("ENTRA_PORT", Ports::DEMO.entra)?,
            web: port("WEB_PORT", Ports::DEMO.web)?,
        },
        bin_dir: exe
            .parent()
            .context("the stack binary has no directory")?
            .to_path_buf(),
        host: var("STACK_HOST").unwrap_or_else(|| "localhost".into()),
        log_dir: None,
        // `LLM_BASE_URL` (with `LLM_MODEL`, `LLM_API_KEY`) switches the concierge to the LLM
        // planner (docs/LLM_PLANNER.md); without it the demo stays deterministic.
        concierge_llm: var("LLM_BASE_URL").map(|base_url| LlmEndpoint {
            base_url,
            model: var("LLM_MODEL").unwrap_or_default(),
            api_key: var("LLM_API_KEY").unwrap_or_default(),
            timeout_secs: None,
        }),
        idp_bench_auto_approve: false,
    };
    anyhow::ensure!(
        opts.root.join("infra").is_dir(),
        "run the stack from the repository root (infra/ not found)"
    );
    // Before anything starts: every taken port named at once (a second `just up` takes them all).
    let taken: Vec<(&str, u16)> = wanted
        .into_inner()
        .into_iter()
        .filter(|(k, _)| *k != "PG_PORT" || opts.database_url.is_none())
        .filter(|(_, p)| std::net::TcpListener::bind(("127.0.0.1", *p)).is_err())
        .collect();
    if !taken.is_empty() {
        let (what, fix) = match taken.as_slice() {
            [(k, p)] => (
                format!("port {p} ({k}) is"),
                format!("set {k} to a free port"),
            ),
            _ => {
                let list: Vec<String> = taken.iter().map(|(k, p)| format!("{p} ({k})")).collect();
                let list = list.join(", ");
                (
                    format!("ports {list} are"),
                    "set those variables to free ports".into(),
                )
            }
        };
        anyhow::bail!(
            "cannot start: {what} already in use on 127.0.0.1. Is the platform already up \
             (another `just up`)? Stop it with Ctrl-C, or {fix}."
        );
    }
    let planner = match &opts.concierge_llm {
        Some(llm) => format!("LLM planner ({} at {})", llm.model, llm.base_url),
        None => "deterministic planner (offline; set LLM_BASE_URL for a model)".to_owned(),
    };
    let mut stack = Stack::start(opts).await?;
    println!();
    println!("  The platform is up.");
    println!("  Open {}/", stack.urls.web);
    println!(
        "  Concierge (A2A 1.0): {}/.well-known/agent-card.json",
        stack.urls.concierge
    );
    println!(
        "  Identity provider:   {}   Signals (SSF): {}",
        stack.urls.idp, stack.urls.ssf
    );
    println!(
        "  Credential issuer:   {} (Vault API)   Admin token: .data/admin-token",
        stack.urls.verify_rar
    );
    println!("  Sign in as alice@example.com or bob@example.com, password demo-password");
    println!("  The concierge plans with the {planner}.");
    println!("  Ctrl-C stops everything.");
    println!();
    let shutdown = kit::shutdown_signal();
    tokio::pin!(shutdown);
    let outcome = tokio::select! {
        biased;
        () = &mut shutdown => Ok(()),
        (name, status) = stack.any_exit() => {
            // Ctrl-C in a terminal reaches every process of the foreground group at once, so a
            // service may exit on it a moment before our own handler runs: that is a stop, not
            // a crash.
            match tokio::time::timeout(std::time::Duration::from_millis(500), &mut shutdown).await {
                Ok(()) => Ok(()),
                Err(_) => Err(anyhow::anyhow!("{name} stopped unexpectedly ({status:?}); stopping the platform")),
            }
        }
    };
    println!("stopping…");
    stack.stop().await?;
    outcome
}
