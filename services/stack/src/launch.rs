//! Starting the whole platform: the embedded Postgres (or `DATABASE_URL`), dev keys, every
//! service as its own process with its log lines prefixed, health waits, and a clean stop.
//! `just up` and the end-to-end tests both go through [`Stack::start`].

use std::{
    collections::HashMap,
    net::TcpListener,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context as _, bail};
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::{Child, Command},
};

use crate::{
    keys,
    postgres::{self, Cluster},
};

mod signals;
pub use signals::{RECEIVERS as SIGNAL_RECEIVERS, SignalTokens};

/// The agents whose dev keys the stack makes.
pub const AGENTS: &[&str] = &["concierge", "banking", "iam", "entra"];

/// Where each service listens. `0` picks a free port (tests).
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub postgres: u16,
    pub idp: u16,
    /// The signals transmitter.
    pub ssf: u16,
    pub verify_rar: u16,
    pub graph: u16,
    pub concierge: u16,
    pub banking: u16,
    pub iam: u16,
    pub entra: u16,
    /// The web UI.
    pub web: u16,
}

impl Ports {
    /// The demo's fixed ports (DESIGN.md).
    pub const DEMO: Ports = Ports {
        postgres: 55432,
        idp: 8081,
        ssf: 8082,
        verify_rar: 8200,
        graph: 8094,
        concierge: 8090,
        banking: 8091,
        iam: 8092,
        entra: 8093,
        web: 8080,
    };
    /// Every port free, for tests.
    pub const ANY: Ports = Ports {
        postgres: 0,
        idp: 0,
        ssf: 0,
        verify_rar: 0,
        graph: 0,
        concierge: 0,
        banking: 0,
        iam: 0,
        entra: 0,
        web: 0,
    };
}

/// Every service binary, in start order: each one's dependencies come before it.
pub const SERVICES: &[&str] = &[
    // The transmitter first: every receiver creates its stream there as it starts.
    "ssf",
    "idp",
    "verify-rar",
    "graph",
    "banking",
    "iam",
    "entra",
    "concierge",
    // The UI last: it talks to all of them.
    "web",
];

/// How to start the platform.
#[derive(Debug, Clone)]
pub struct Options {
    /// The repository root: `infra/` (agents, clients, policies, issuer roles) is read from here.
    pub root: PathBuf,
    /// Postgres data, keys, audit logs: `.data` for the demo, a temp dir for tests.
    pub data_dir: PathBuf,
    /// Use this server instead of starting the embedded one.
    pub database_url: Option<String>,
    pub ports: Ports,
    /// Where the service binaries are (`target/debug`).
    pub bin_dir: PathBuf,
    /// Host name in the URLs we print and configure (`localhost`).
    pub host: String,
    /// `Some(dir)`: write each service's log to `dir/<name>.log` instead of the terminal.
    pub log_dir: Option<PathBuf>,
    /// `Some`: the concierge plans with this OpenAI-compatible model. `None`: the deterministic
    /// planner (the concierge is given an empty `LLM_BASE_URL` explicitly, so an exported
    /// variable cannot switch it).
    pub concierge_llm: Option<LlmEndpoint>,
    /// **Benchmarks only**: start the idp with `IDP_BENCH_AUTO_APPROVE=true`, so every push
    /// approval is granted without the user (see the idp's config). `false` everywhere else;
    /// the idp is always given the value explicitly, so an exported variable cannot leak in.
    pub idp_bench_auto_approve: bool,
}

/// An OpenAI-compatible endpoint for the concierge's LLM planner (`docs/LLM_PLANNER.md`).
#[derive(Clone)]
pub struct LlmEndpoint {
    /// Up to and including `/v1`.
    pub base_url: String,
    pub model: String,
    pub api_key: String,
    /// `LLM_TIMEOUT_SECS` for one model request; `None` keeps the concierge's default.
    pub timeout_secs: Option<u64>,
}

impl std::fmt::Debug for LlmEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmEndpoint")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

/// The URLs of a running stack.
#[derive(Debug, Clone)]
pub struct Urls {
    pub idp: String,
    pub ssf: String,
    pub verify_rar: String,
    pub graph: String,
    pub concierge: String,
    pub banking: String,
    pub iam: String,
    pub entra: String,
    /// The web UI: the one URL a person opens.
    pub web: String,
    pub database: String,
}

/// A running platform. Stop it with [`Stack::stop`]; dropping it kills the service processes.
#[derive(Debug)]
pub struct Stack {
    pub urls: Urls,
    /// The admin token every service's admin API accepts in this run.
    pub admin_token: String,
    pub keys_dir: PathBuf,
    /// This run's tokens at the signals transmitter (`web`'s is for the UI).
    pub signal_tokens: SignalTokens,
    cluster: Option<Cluster>,
    services: Vec<(String, Child)>,
    /// How [`Stack::start`] started each service, so [`Stack::start_service`] can start one
    /// again exactly so; and the options it was given.
    started: Vec<Service>,
    opts: Options,
}

#[derive(Debug, Clone)]
struct Service {
    name: &'static str,
    port: u16,
    health: &'static str,
    env: Vec<(&'static str, String)>,
}

impl Stack {
    pub async fn start(opts: Options) -> anyhow::Result<Self> {
        let data = absolute(&opts.data_dir)?;
        std::fs::create_dir_all(&data)?;
        for bin in SERVICES {
            if !opts.bin_dir.join(bin).exists() {
                bail!(
                    "{} is missing: build the services first (cargo build --workspace --bins)",
                    opts.bin_dir.join(bin).display()
                );
            }
        }
        let pick = |p: u16, what: &str| -> anyhow::Result<u16> {
            if p == 0 {
                return postgres::free_port();
            }
            if TcpListener::bind(("127.0.0.1", p)).is_err() {
                bail!("port {p} for {what} is already taken (is the stack already up?)");
            }
            Ok(p)
        };
        let p = opts.ports;
        let ports = Ports {
            postgres: p.postgres,
            idp: pick(p.idp, "the idp")?,
            ssf: pick(p.ssf, "the signals transmitter")?,
            verify_rar: pick(p.verify_rar, "verify-rar")?,
            graph: pick(p.graph, "graph")?,
            concierge: pick(p.concierge, "the concierge")?,
            banking: pick(p.banking, "banking")?,
            iam: pick(p.iam, "iam")?,
            entra: pick(p.entra, "entra")?,
            web: pick(p.web, "the web UI")?,
        };

        let (cluster, database_url) = match &opts.database_url {
            Some(url) => (None, url.clone()),
            None => {
                let pg_port = if ports.postgres == 0 {
                    None
                } else {
                    Some(ports.postgres)
                };
                let c = Cluster::start(&postgres::Options {
                    data_dir: data.join("pg"),
                    port: pg_port,
                    durable: true,
                })?;
                // If this process dies without stopping it (a crash, SIGKILL), the cluster stops too.
                c.stop_with_this_process(false)?;
                let url = c.url(postgres::DATABASE);
                (Some(c), url)
            }
        };
        let url = |port: u16| format!("http://{}:{port}", opts.host);
        let mut stack = Self {
            urls: Urls {
                idp: url(ports.idp),
                ssf: url(ports.ssf),
                verify_rar: url(ports.verify_rar),
                graph: url(ports.graph),
                concierge: url(ports.concierge),
                banking: url(ports.banking),
                iam: url(ports.iam),
                entra: url(ports.entra),
                web: url(ports.web),
                database: database_url.clone(),
            },
            admin_token: admin_token(&data)?,
            keys_dir: data.join("keys"),
            signal_tokens: SignalTokens::generate(),
            cluster,
            services: vec![],
            started: vec![],
            opts: opts.clone(),
        };
        if let Err(e) = stack.launch(&opts, &data, ports).await {
            stack.stop().await.ok();
            return Err(e);
        }
        Ok(stack)
    }

    async fn launch(&mut self, opts: &Options, data: &Path, ports: Ports) -> anyhow::Result<()> {
        for agent in AGENTS {
            keys::ensure(&self.keys_dir, agent)?;
        }
        // The ledger's schema is the banking service's; the issuer writes grant rows into it,
        // so it must exist before the issuer runs.
        let pool = kit::pg::pool(&self.urls.database, "banking", 2)?;
        banking::migrate(&pool)
            .await
            .context("migrating the ledger")?;
        drop(pool);

        let infra = opts.root.join("infra");
        let path = |p: PathBuf| p.display().to_string();
        let u = self.urls.clone();
        let keys = path(self.keys_dir.clone());
        let bind = |port: u16| format!("127.0.0.1:{port}");
        const CARD: &str = "/.well-known/agent-card.json";
        let services = [
            signals::transmitter(ports.ssf, &u.ssf, &keys, &self.signal_tokens),
            Service {
                name: "idp",
                port: ports.idp,
                health: "/health",
                env: vec![
                    ("IDP_BIND", bind(ports.idp)),
                    ("IDP_ISSUER", u.idp.clone()),
                    ("IDP_KEYS_DIR", keys.clone()),
                    ("IDP_AGENTS", path(infra.join("agents.toml"))),
                    ("IDP_CLIENTS", path(infra.join("clients.toml"))),
                    ("IDP_POLICY_DIR", path(infra.join("policy"))),
                    ("IDP_ADMIN_TOKEN", self.admin_token.clone()),
                    (
                        "IDP_BENCH_AUTO_APPROVE",
                        opts.idp_bench_auto_approve.to_string(),
                    ),
                ],
            },
            Service {
                name: "verify-rar",
                port: ports.verify_rar,
                health: "/v1/sys/health",
                env: vec![
                    ("VR_BIND", bind(ports.verify_rar)),
                    ("IDP_ISSUER", u.idp.clone()),
                    ("VR_ADMIN_TOKEN", self.admin_token.clone()),
                    ("VR_ROLES_DIR", path(infra.join("verify-rar"))),
                    ("VR_AUDIT_LOG", path(data.join("verify-rar/audit.jsonl"))),
                    ("VR_INSTANCE_ID", "verify-rar-0".into()),
                ],
            },
            Service {
                name: "graph",
                port: ports.graph,
                health: "/health",
                env: vec![
                    ("GRAPH_BIND", bind(ports.graph)),
                    ("IDP_ISSUER", u.idp.clone()),
                ],
            },
            Service {
                name: "banking",
                port: ports.banking,
                health: CARD,
                env: vec![
                    ("BANKING_BIND", bind(ports.banking)),
                    ("BANKING_URL", u.banking.clone()),
                    ("IDP_ISSUER", u.idp.clone()),
                    ("VAULT_ADDR", u.verify_rar.clone()),
                    ("KEYS_DIR", keys.clone()),
                    // The demo takes the S6 attack toggles per run (the UI's switches).
                    ("ATTACK_TOGGLES", "on".into()),
                ],
            },
            Service {
                name: "iam",
                port: ports.iam,
                health: CARD,
                env: vec![
                    ("IAM_BIND", bind(ports.iam)),
                    ("IAM_URL", u.iam.clone()),
                    ("IDP_ISSUER", u.idp.clone()),
                    ("KEYS_DIR", keys.clone()),
                    ("ATTACK_TOGGLES", "on".into()),
                ],
            },
            Service {
                name: "entra",
                port: ports.entra,
                health: CARD,
                env: vec![
                    ("ENTRA_BIND", bind(ports.entra)),
                    ("ENTRA_URL", u.entra.clone()),
                    ("GRAPH_URL", u.graph.clone()),
                    ("IDP_ISSUER", u.idp.clone()),
                    ("KEYS_DIR", keys.clone()),
                    ("ATTACK_TOGGLES", "on".into()),
                ],
            },
            Service {
                name: "concierge",
                port: ports.concierge,
                health: CARD,
                env: vec![
                    ("CONCIERGE_BIND", bind(ports.concierge)),
                    ("CONCIERGE_URL", u.concierge.clone()),
                    ("IDP_ISSUER", u.idp.clone()),
                    ("KEYS_DIR", keys.clone()),
                    ("BANKING_URL", u.banking.clone()),
                    ("IAM_URL", u.iam.clone()),
                    ("ENTRA_URL", u.entra.clone()),
                    ("ATTACK_TOGGLES", "on".into()),
                ]
                .into_iter()
                .chain(match &opts.concierge_llm {
                    None => vec![("LLM_BASE_URL", String::new())],
                    Some(llm) => [
                        ("LLM_BASE_URL", llm.base_url.clone()),
                        ("LLM_MODEL", llm.model.clone()),
                        ("LLM_API_KEY", llm.api_key.clone()),
                    ]
                    .into_iter()
                    .chain(
                        llm.timeout_secs
                            .map(|t| ("LLM_TIMEOUT_SECS", t.to_string())),
                    )
                    .collect(),
                })
                .collect(),
            },
            Service {
                name: "web",
                port: ports.web,
                health: "/health",
                env: vec![
                    ("WEB_BIND", bind(ports.web)),
                    ("WEB_URL", u.web.clone()),
                    ("IDP_ISSUER", u.idp.clone()),
                    ("WEB_CLIENT_ID", "web".into()),
                    // The development secret of the `web` client in infra/clients.toml.
                    ("WEB_CLIENT_SECRET", "web-dev-secret-change-me".into()),
                    ("CONCIERGE_URL", u.concierge.clone()),
                    ("VAULT_ADDR", u.verify_rar.clone()),
                    ("WEB_ADMIN_TOKEN", self.admin_token.clone()),
                    (
                        "WEB_NARRATION_DIR",
                        path(opts.root.join("web").join("narration")),
                    ),
                ],
            },
        ];
        let services = signals::connect(services, &u.ssf, &self.signal_tokens);
        let http = reqwest::Client::new();
        for s in services {
            let child = spawn(opts, &s, &self.urls.database)?;
            self.services.push((s.name.to_owned(), child));
            let url = format!("http://127.0.0.1:{}{}", s.port, s.health);
            self.started.push(s.clone());
            self.wait_healthy(&http, s.name, &url).await?;
        }
        Ok(())
    }

    async fn wait_healthy(
        &mut self,
        http: &reqwest::Client,
        name: &str,
        url: &str,
    ) -> anyhow::Result<()> {
        for _ in 0..300 {
            if let Some((_, child)) = self.services.iter_mut().find(|(n, _)| n == name)
                && let Some(status) = child.try_wait()?
            {
                bail!("{name} exited during start-up ({status}); its log says why");
            }
            if http
                .get(url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("{name} did not become healthy at {url} within 30 seconds")
    }

    /// Resolves when any service process exits, naming it.
    pub async fn any_exit(&mut self) -> (String, std::io::Result<std::process::ExitStatus>) {
        let waits = self
            .services
            .iter_mut()
            .map(|(n, c)| Box::pin(async move { (n.clone(), c.wait().await) }));
        futures::future::select_all(waits).await.0
    }

    /// Stops every service (SIGTERM, then SIGKILL after 10 s) and the embedded Postgres.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        for (_, child) in self.services.iter().rev() {
            if let Some(pid) = child.id() {
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(pid.to_string())
                    .status()
                    .await;
            }
        }
        for (name, child) in self.services.iter_mut().rev() {
            if tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .is_err()
            {
                tracing::warn!(service = %name, "did not stop in 10 s; killing it");
                let _ = child.kill().await;
            }
        }
        self.services.clear();
        if let Some(c) = self.cluster.take() {
            c.stop()?;
        }
        Ok(())
    }
}

/// A fresh random admin token for this run, saved (0600) to `<data>/admin-token` so a presenter
/// can use the admin APIs by hand.
fn admin_token(data: &Path) -> anyhow::Result<String> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let token = kit::random_id(24);
    let path = data.join("admin-token");
    let _ = std::fs::remove_file(&path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    std::io::Write::write_all(&mut f, token.as_bytes())?;
    Ok(token)
}

fn spawn(opts: &Options, s: &Service, database_url: &str) -> anyhow::Result<Child> {
    let mut cmd = Command::new(opts.bin_dir.join(s.name));
    cmd.current_dir(&opts.root)
        .env("DATABASE_URL", database_url)
        .envs(s.env.iter().map(|(k, v)| (*k, v.as_str())))
        .env(
            "RUST_LOG",
            // Postgres NOTICEs (e.g. "schema already exists") are not news.
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info,tokio_postgres=warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", s.name))?;
    let sink: Option<PathBuf> = opts
        .log_dir
        .as_ref()
        .map(|d| d.join(format!("{}.log", s.name)));
    if let Some(d) = &opts.log_dir {
        std::fs::create_dir_all(d)?;
    }
    let outs: [Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>; 2] = [
        child.stdout.take().map(|o| Box::new(o) as _),
        child.stderr.take().map(|o| Box::new(o) as _),
    ];
    for out in outs.into_iter().flatten() {
        let name = s.name;
        let sink = sink.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(out).lines();
            let mut file = match &sink {
                Some(p) => tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .await
                    .ok(),
                None => None,
            };
            while let Ok(Some(line)) = lines.next_line().await {
                match &mut file {
                    Some(f) => {
                        let _ =
                            tokio::io::AsyncWriteExt::write_all(f, format!("{line}\n").as_bytes())
                                .await;
                    }
                    None => println!("{} {line}", prefix(name)),
                }
            }
        });
    }
    Ok(child)
}

/// `   idp │` in the service's colour, so interleaved logs stay readable.
fn prefix(name: &str) -> String {
    let colours: HashMap<&str, u8> = [
        ("idp", 33),
        ("ssf", 93),
        ("verify-rar", 35),
        ("graph", 34),
        ("concierge", 32),
        ("banking", 36),
        ("iam", 31),
        ("entra", 94),
        ("web", 97),
    ]
    .into_iter()
    .collect();
    let c = colours.get(name).copied().unwrap_or(36);
    format!("\x1b[{c}m{name:>10} │\x1b[0m")
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

impl Stack {
    /// Each running service's name and process id (the benchmarks read `/proc/<pid>/status`).
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.services
            .iter()
            .filter_map(|(name, child)| child.id().map(|pid| (name.clone(), pid)))
            .collect()
    }
}

/// The variable that holds each service's listen address (`<NAME>_BIND`).
fn bind_var(name: &str) -> Option<&'static str> {
    Some(match name {
        "idp" => "IDP_BIND",
        "ssf" => "SSF_BIND",
        "verify-rar" => "VR_BIND",
        "graph" => "GRAPH_BIND",
        "concierge" => "CONCIERGE_BIND",
        "web" => "WEB_BIND",
        "banking" => "BANKING_BIND",
        "iam" => "IAM_BIND",
        "entra" => "ENTRA_BIND",
        _ => return None,
    })
}

/// Where each service answers "healthy" (the same paths [`Stack::start`] waits on).
fn health_path(name: &str) -> &'static str {
    match name {
        "verify-rar" => "/v1/sys/health",
        "concierge" | "banking" | "iam" | "entra" => "/.well-known/agent-card.json",
        _ => "/health",
    }
}

impl Stack {
    /// Starts one more instance of `name`, a service this stack already runs, as a replica
    /// behind a load balancer would be: the first instance's exact environment (read from
    /// `/proc/<pid>/environ`, so whatever [`Stack::start`] configures is carried over, the
    /// shared `IDP_ISSUER` and public URLs included), on a free port, against the same database.
    /// `set` overrides single variables. What must differ per replica is set here: the listen
    /// address, and for verify-rar `VR_INSTANCE_ID` (`verify-rar-<n>`, n = 1, 2, …) and
    /// `VR_AUDIT_LOG` (its own hash chain, `audit-<n>.jsonl` beside the first). Logs go to
    /// `<log_dir>/replica-<n>/`.
    /// Returns the replica's base URL; [`Stack::stop`] stops it with the rest.
    pub async fn start_replica(
        &mut self,
        opts: &Options,
        name: &str,
        set: &[(&'static str, String)],
    ) -> anyhow::Result<String> {
        let name: &'static str = SERVICES
            .iter()
            .chain(["ssf"].iter())
            .find(|s| **s == name)
            .copied()
            .with_context(|| format!("{name} is not a service of the stack"))?;
        let pid = self
            .services
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, c)| c.id())
            .with_context(|| format!("{name} is not running"))?;
        let bind = bind_var(name).with_context(|| format!("{name} has no listen variable"))?;
        // The first instance is number 0 (`verify-rar-0`), replicas count on from 1.
        let n = self
            .services
            .iter()
            .filter(|(n, _)| n == name || n.starts_with(&format!("{name}#")))
            .count();
        let environ = std::fs::read(format!("/proc/{pid}/environ"))
            .with_context(|| format!("reading the environment of {name}"))?;
        let port = postgres::free_port()?;
        let mut env: Vec<(&'static str, String)> = vec![];
        let mut database_url = self.urls.database.clone();
        for pair in environ.split(|b| *b == 0).filter(|p| !p.is_empty()) {
            let pair = String::from_utf8_lossy(pair);
            let Some((k, v)) = pair.split_once('=') else {
                continue;
            };
            if k == "DATABASE_URL" {
                database_url = v.to_owned();
            } else if k
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                // `Service` names variables with `'static` keys; a replica's come from the first
                // instance at run time: a few short strings per replica, for the process's life.
                env.push((Box::leak(k.to_owned().into_boxed_str()), v.to_owned()));
            }
        }
        let mut own = vec![(bind, format!("127.0.0.1:{port}"))];
        if name == "verify-rar" {
            own.push(("VR_INSTANCE_ID", format!("verify-rar-{n}")));
            let first = env
                .iter()
                .find(|(k, _)| *k == "VR_AUDIT_LOG")
                .map(|(_, v)| PathBuf::from(v))
                .unwrap_or_else(|| PathBuf::from(".data/verify-rar/audit.jsonl"));
            let log = first.with_file_name(format!("audit-{n}.jsonl"));
            own.push(("VR_AUDIT_LOG", log.display().to_string()));
        }
        for (k, v) in own.into_iter().chain(set.iter().cloned()) {
            env.retain(|(key, _)| *key != k);
            env.push((k, v));
        }
        let replica_opts = Options {
            log_dir: opts
                .log_dir
                .as_ref()
                .map(|d| d.join(format!("replica-{n}"))),
            ..opts.clone()
        };
        let s = Service {
            name,
            port,
            health: health_path(name),
            env,
        };
        let child = spawn(&replica_opts, &s, &database_url)?;
        let label = format!("{name}#{n}");
        self.services.push((label.clone(), child));
        let http = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{port}{}", s.health);
        self.wait_healthy(&http, &label, &url).await?;
        Ok(format!("http://{}:{port}", opts.host))
    }
}

/// Faults, for the fault-injection tests: one service process killed and started again while
/// the rest runs, and the embedded Postgres crashed and restarted under the running stack.
impl Stack {
    /// The process id of the running service `name` (the first instance, not a replica).
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.services
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, c)| c.id())
    }

    /// Kills the service `name` with SIGKILL, as a crash would: no shutdown handler runs,
    /// in-flight requests and transactions are cut where they stand. Returns once the process
    /// is gone. [`Stack::start_service`] starts it again.
    pub async fn kill_service(&mut self, name: &str) -> anyhow::Result<()> {
        let i = self
            .services
            .iter()
            .position(|(n, _)| n == name)
            .with_context(|| format!("{name} is not running"))?;
        let (_, mut child) = self.services.remove(i);
        child
            .start_kill()
            .with_context(|| format!("killing {name}"))?;
        child.wait().await?;
        Ok(())
    }

    /// Starts the service `name` again after [`Stack::kill_service`]: the same binary, port and
    /// environment [`Stack::start`] gave it (so every peer's configured URL reaches it), its log
    /// appended to the same file. Returns once it answers its health check.
    pub async fn start_service(&mut self, name: &str) -> anyhow::Result<()> {
        if self.services.iter().any(|(n, _)| n == name) {
            bail!("{name} is already running");
        }
        let s = self
            .started
            .iter()
            .find(|s| s.name == name)
            .cloned()
            .with_context(|| format!("{name} is not a service this stack started"))?;
        let child = spawn(&self.opts, &s, &self.urls.database)?;
        self.services.push((s.name.to_owned(), child));
        let url = format!("http://127.0.0.1:{}{}", s.port, s.health);
        self.wait_healthy(&reqwest::Client::new(), s.name, &url)
            .await
    }

    /// [`Stack::kill_service`], then [`Stack::start_service`].
    pub async fn restart_service(&mut self, name: &str) -> anyhow::Result<()> {
        self.kill_service(name).await?;
        self.start_service(name).await
    }

    /// Crashes the embedded Postgres (`pg_ctl stop -m immediate`) and starts it again on the same
    /// port with the same data, while every service keeps running: their connections break and
    /// they must reconnect by themselves. Fails for a stack started on a `database_url`.
    pub async fn restart_postgres(&mut self) -> anyhow::Result<()> {
        let cluster = self
            .cluster
            .clone()
            .context("this stack runs on an external database, not its embedded Postgres")?;
        // `pg_ctl` blocks for seconds: not on the runtime's thread, which drives everyone else.
        tokio::task::spawn_blocking(move || {
            cluster.crash()?;
            cluster.start_again()
        })
        .await?
    }
}
