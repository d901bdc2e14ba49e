//! `just up` as a person runs it: started from the repository root in its own process group,
//! waited on until it prints where to open the UI, the sign-in page fetched through that URL,
//! then stopped with Ctrl-C (SIGINT to the group), leaving no process, no Postgres cluster and
//! no taken port behind. Starting twice, or with a port held by anything else, fails before
//! anything starts, with a message naming the port and the variable that moves it.
//!
//! Every port is a free one and `DATA_DIR` a temp dir, so a demo running on the default ports is
//! never touched. Needs `just` on `PATH` (README, "Prerequisites"; CI installs it).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly where they stand"
)]

use std::{
    collections::{BTreeMap, HashMap},
    io::{BufRead as _, BufReader, Read},
    net::TcpListener,
    os::unix::{fs::PermissionsExt as _, process::CommandExt as _},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, OnceLock, mpsc},
    thread::JoinHandle,
    time::{Duration, Instant},
};

/// From `just up` to the Open line. `just up` builds first: a no-op here, as the test builds
/// the binaries before it starts the clock.
const UP_TIMEOUT: Duration = Duration::from_secs(180);
/// From Ctrl-C to exit: each service gets 10 s before it is killed, then Postgres stops.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// A start that must fail fails before it starts anything: well within this.
const FAIL_FAST: Duration = Duration::from_secs(10);

/// Every port variable of the stack (`services/stack/src/main.rs`).
const PORT_VARS: &[&str] = &[
    "PG_PORT",
    "IDP_PORT",
    "SSF_PORT",
    "VR_PORT",
    "GRAPH_PORT",
    "CONCIERGE_PORT",
    "BANKING_PORT",
    "IAM_PORT",
    "ENTRA_PORT",
    "WEB_PORT",
];

/// Each test runs a whole platform; one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn just_up_serves_the_sign_in_page_and_ctrl_c_stops_everything() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let run = Run::new();
    let mut up = Up::start(&run);
    let url = up.wait_for_open_line();
    assert_sign_in_page(&run, &url, &up);

    up.ctrl_c();
    up.assert_nothing_left(&run);
}

#[test]
fn a_second_start_or_a_taken_port_fails_fast_with_a_clear_message() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let run = Run::new();
    let mut up = Up::start(&run);
    let url = up.wait_for_open_line();
    let admin_token = std::fs::read_to_string(run.data_dir.join("admin-token")).unwrap();

    // The same command again, on the same ports and data: every port is named, nothing is touched.
    let taken: Vec<(&str, u16)> = run
        .ports
        .iter()
        .copied()
        .filter(|(_, p)| TcpListener::bind(("127.0.0.1", *p)).is_err())
        .collect();
    assert!(
        taken.iter().any(|(k, _)| *k == "IDP_PORT"),
        "the running stack holds its ports: {taken:?}"
    );
    let (status, output, took) = run_to_end(run.command(stack_bin()));
    assert!(
        !status.success(),
        "a second stack on the same ports started ({status}):\n{output}"
    );
    assert!(
        took < FAIL_FAST,
        "a second stack took {took:?} to fail:\n{output}"
    );
    for (var, port) in &taken {
        assert!(
            output.contains(&format!("{port} ({var})")) && output.contains("already in use"),
            "the message names every taken port, {port} ({var}) among them:\n{output}"
        );
    }
    assert!(
        output.contains("already up"),
        "the message says what probably holds the ports:\n{output}"
    );
    // The first one is unharmed.
    assert!(
        up.child.try_wait().unwrap().is_none(),
        "the first stack stopped:\n{}",
        up.tail()
    );
    assert_eq!(
        std::fs::read_to_string(run.data_dir.join("admin-token")).unwrap(),
        admin_token,
        "the failed start rewrote the running stack's admin token"
    );
    assert_sign_in_page(&run, &url, &up);

    // One port held by something else, each port in turn: the start fails naming it, before
    // anything starts (no Postgres cluster is even initialised).
    let other = Run::new();
    for (var, port) in &other.ports {
        let _holder = TcpListener::bind(("127.0.0.1", *port)).unwrap();
        let (status, output, took) = run_to_end(other.command(stack_bin()));
        assert!(
            !status.success(),
            "the stack started with {var} ({port}) taken:\n{output}"
        );
        assert!(
            took < FAIL_FAST,
            "with {var} taken the stack took {took:?} to fail:\n{output}"
        );
        assert!(
            output.contains(&format!("port {port} ({var}) is already in use"))
                && output.contains(&format!("set {var} to a free port")),
            "the message names the port and its variable:\n{output}"
        );
        assert!(
            !other.data_dir.join("pg").exists(),
            "with {var} taken, Postgres was set up before the start failed"
        );
        assert!(
            processes_mentioning(&other.data_dir).is_empty(),
            "with {var} taken, something was left running on {}",
            other.data_dir.display()
        );
    }

    up.ctrl_c();
    up.assert_nothing_left(&run);
}

/// A port variable added to the stack and not moved here would put that service on its demo
/// port, next to someone's demo: the list above must be the stack's.
#[test]
fn every_port_variable_of_the_stack_is_moved_to_a_free_port() {
    let main =
        std::fs::read_to_string(e2e::workspace_root().join("services/stack/src/main.rs")).unwrap();
    let read: std::collections::BTreeSet<&str> = main
        .match_indices("port(\"")
        .filter_map(|(i, m)| main.get(i + m.len()..)?.split('"').next())
        .collect();
    let moved: std::collections::BTreeSet<&str> = PORT_VARS.iter().copied().collect();
    assert_eq!(
        read, moved,
        "the stack reads these port variables (left), this test sets these (right)"
    );
}

/// Fetches the URL `just up` printed, following redirects as a browser does, and checks it ends
/// on this run's idp with its sign-in form.
fn assert_sign_in_page(run: &Run, url: &str, up: &Up) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (status, landed, body) = rt.block_on(async {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let resp = http
            .get(url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e:#}\n{}", up.tail()));
        let status = resp.status();
        let landed = resp.url().clone();
        (status, landed, resp.text().await.unwrap_or_default())
    });
    assert!(
        status.is_success(),
        "GET {url} ended on {landed} with {status}:\n{body}"
    );
    assert_eq!(
        landed.port(),
        Some(run.port("IDP_PORT")),
        "GET {url} should end on this run's idp, ended on {landed}"
    );
    assert!(
        body.contains(r#"name="password""#),
        "GET {url} ended on {landed} without a password field:\n{body}"
    );
}

/// The ports and data directory of one run, handed to the stack through its variables.
struct Run {
    ports: Vec<(&'static str, u16)>,
    data_dir: PathBuf,
}

impl Run {
    fn new() -> Self {
        build_once();
        let mut ports: Vec<(&'static str, u16)> = vec![];
        for var in PORT_VARS {
            let port = loop {
                let p = stack::postgres::free_port().unwrap();
                if ports.iter().all(|(_, q)| *q != p) {
                    break p;
                }
            };
            ports.push((var, port));
        }
        let data_dir = std::env::temp_dir().join(format!("just-up-{}", kit::random_id(6)));
        std::fs::create_dir(&data_dir).unwrap();
        // When we are root, Postgres runs as the `postgres` user and must reach its directory.
        std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self { ports, data_dir }
    }

    fn port(&self, var: &str) -> u16 {
        self.ports
            .iter()
            .find(|(k, _)| *k == var)
            .map(|(_, p)| *p)
            .unwrap()
    }

    /// `program` from the repository root with this run's ports and data, and nothing from the
    /// environment that would point the stack elsewhere.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(e2e::workspace_root())
            .env("DATA_DIR", &self.data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for var in [
            "DATABASE_URL",
            "STACK_HOST",
            "LLM_BASE_URL",
            "LLM_MODEL",
            "LLM_API_KEY",
        ] {
            cmd.env_remove(var);
        }
        for (var, port) in &self.ports {
            cmd.env(var, port.to_string());
        }
        cmd
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        // A failed run's data (Postgres' server.log among it) stays for a look.
        if std::thread::panicking() {
            eprintln!("data of the failed run: {}", self.data_dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

/// A running `just up`, and every process it started.
struct Up {
    child: Child,
    /// Its process group (its pid): what Ctrl-C in a terminal signals.
    pgid: u32,
    data_dir: PathBuf,
    output: Arc<Mutex<Vec<String>>>,
    stdout_lines: mpsc::Receiver<String>,
    /// Every process seen belonging to it, by (pid, start time), with its command line.
    seen: BTreeMap<(u32, u64), String>,
    stopped: bool,
}

impl Up {
    fn start(run: &Run) -> Self {
        let just = find_on_path("just").unwrap_or_else(|| {
            panic!(
                "`just` is not on PATH; this test runs `just up` as a person would. Install it: \
                 `pip install rust-just` or `cargo install just --locked` (README, Prerequisites)."
            )
        });
        // `env --default-signal=INT` runs `just` itself (exec), with SIGINT at its default even
        // when this test was started with SIGINT ignored (a background job of a script).
        let mut cmd = run.command("env");
        cmd.arg("--default-signal=INT")
            .arg(just)
            .arg("up")
            .process_group(0);
        let mut child = cmd.spawn().expect("starting `just up`");
        let output = Arc::new(Mutex::new(Vec::new()));
        let (tx, stdout_lines) = mpsc::channel();
        drain(child.stdout.take().unwrap(), output.clone(), Some(tx));
        drain(child.stderr.take().unwrap(), output.clone(), None);
        let pgid = child.id();
        Self {
            child,
            pgid,
            data_dir: run.data_dir.clone(),
            output,
            stdout_lines,
            seen: BTreeMap::new(),
            stopped: false,
        }
    }

    /// Waits for `  Open http://…` and returns the URL; notes every process on the way.
    fn wait_for_open_line(&mut self) -> String {
        let deadline = Instant::now() + UP_TIMEOUT;
        loop {
            self.note_processes();
            match self.stdout_lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    if let Some(url) = open_url(&line) {
                        self.note_processes();
                        return url;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.wait_for_exit(Duration::from_secs(10));
                    panic!(
                        "`just up` closed its output ({status:?}) without an `Open http://…` \
                         line:\n{}",
                        self.tail()
                    );
                }
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "`just up` exited ({status}) before printing an `Open http://…` line:\n{}",
                    self.tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "`just up` printed no `Open http://…` line within {UP_TIMEOUT:?}:\n{}",
                self.tail()
            );
        }
    }

    /// Ctrl-C: SIGINT to the whole process group, then waits for `just` to exit. The platform
    /// stops as asked (`stopping…`, no error of its own); `just` itself reports the interrupt
    /// (`error: interrupted by SIGINT`, status 130), as it does for any recipe.
    fn ctrl_c(&mut self) {
        self.note_processes();
        signal_group("INT", self.pgid);
        let status = self.wait_for_exit(STOP_TIMEOUT);
        self.stopped = true;
        let status = status.unwrap_or_else(|| {
            panic!(
                "`just up` did not exit within {STOP_TIMEOUT:?} of Ctrl-C:\n{}",
                self.tail()
            )
        });
        let out = self
            .output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        assert!(
            status.success() || status.code() == Some(130),
            "`just up` stopped by Ctrl-C exited with {status}:\n{}",
            self.tail()
        );
        assert!(
            out.iter().any(|l| l.trim() == "stopping…")
                && !out
                    .iter()
                    .any(|l| l.starts_with("Error:") || l.contains("stopped unexpectedly")),
            "the platform did not stop cleanly on Ctrl-C:\n{}",
            self.tail()
        );
    }

    fn wait_for_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            self.note_processes();
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// After it stopped: none of its processes runs, no Postgres runs on its data, no
    /// `postmaster.pid` is left, and every port can be bound again.
    fn assert_nothing_left(&self, run: &Run) {
        // The launcher stops everything before it exits; a little grace for the kernel.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left: Vec<&String> = self
                .seen
                .iter()
                .filter(|((pid, start), _)| alive(*pid, *start))
                .map(|(_, cmd)| cmd)
                .collect();
            if left.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "still running after `just up` stopped:\n  {}\noutput:\n{}",
                left.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("\n  "),
                self.tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let on_data = processes_mentioning(&self.data_dir);
        assert!(
            on_data.is_empty(),
            "still running on {} after `just up` stopped:\n  {}",
            self.data_dir.display(),
            on_data.join("\n  ")
        );
        let pid_file = self.data_dir.join("pg/postmaster.pid");
        assert!(
            !pid_file.exists(),
            "{} is left: the cluster was not shut down cleanly",
            pid_file.display()
        );
        for (var, port) in &run.ports {
            if let Err(e) = TcpListener::bind(("127.0.0.1", *port)) {
                panic!("port {port} ({var}) is still taken after `just up` stopped: {e}");
            }
        }
        assert!(
            self.seen.values().any(|c| c.contains("postgres")),
            "the embedded Postgres was never seen running: the checks above checked nothing"
        );
    }

    /// Notes every process of its group, every descendant, and every process naming its data
    /// directory (Postgres runs detached, in a session of its own).
    fn note_processes(&mut self) {
        let procs = processes();
        let data = self.data_dir.display().to_string();
        let is_descendant = |mut pid: u32| {
            for _ in 0..64 {
                let Some(p) = procs.get(&pid) else {
                    return false;
                };
                if p.ppid == self.pgid {
                    return true;
                }
                pid = p.ppid;
            }
            false
        };
        for (pid, p) in &procs {
            if p.zombie {
                continue;
            }
            let ours = *pid == self.pgid || p.pgrp == self.pgid || is_descendant(*pid);
            let cmdline = cmdline(*pid);
            if ours || cmdline.contains(&data) {
                self.seen
                    .entry((*pid, p.start))
                    .or_insert_with(|| format!("{pid} {}", truncate(&cmdline, 240)));
            }
        }
    }

    /// The last lines it printed (stdout and stderr), for failure messages.
    fn tail(&self) -> String {
        let out = self.output.lock().unwrap_or_else(|e| e.into_inner());
        let from = out.len().saturating_sub(80);
        out[from..].join("\n")
    }
}

impl Drop for Up {
    /// A failed test still stops what it started: Ctrl-C, then SIGKILL, then the cluster.
    fn drop(&mut self) {
        if !self.stopped {
            signal_group("INT", self.pgid);
            if self.wait_for_exit(Duration::from_secs(30)).is_none() {
                signal_group("KILL", self.pgid);
                let _ = self.child.wait();
            }
        }
        let pg = self.data_dir.join("pg");
        if pg.join("postmaster.pid").exists()
            && let Ok(bin) = stack::postgres::find_bin_dir()
        {
            let pg_ctl = bin.join("pg_ctl");
            let mut cmd = if running_as_root() {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(pg_ctl);
                c
            } else {
                Command::new(pg_ctl)
            };
            let _ = cmd
                .arg("-D")
                .arg(&pg)
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The URL of a `  Open http://…` line.
fn open_url(line: &str) -> Option<String> {
    let url = line
        .trim_start()
        .strip_prefix("Open ")?
        .split_whitespace()
        .next()?;
    url.starts_with("http://").then(|| url.to_owned())
}

/// Runs `cmd` to its end (killed past a generous limit); returns its status, its stdout and
/// stderr together, and how long it took.
fn run_to_end(mut cmd: Command) -> (ExitStatus, String, Duration) {
    let started = Instant::now();
    let mut child = cmd.spawn().expect("starting the stack");
    let output = Arc::new(Mutex::new(Vec::new()));
    let readers = [
        drain(child.stdout.take().unwrap(), output.clone(), None),
        drain(child.stderr.take().unwrap(), output.clone(), None),
    ];
    let limit = FAIL_FAST * 6;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let out = output.lock().unwrap_or_else(|e| e.into_inner()).join("\n");
            panic!("the stack was still running after {limit:?}; it should have failed:\n{out}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = started.elapsed();
    // The readers end with the pipes; anything that still holds them is reported by the caller.
    let deadline = Instant::now() + Duration::from_secs(2);
    while readers.iter().any(|r| !r.is_finished()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = output.lock().unwrap_or_else(|e| e.into_inner()).join("\n");
    (status, out, took)
}

/// Copies `from` line by line into `output` (and `lines`) until it closes.
fn drain(
    from: impl Read + Send + 'static,
    output: Arc<Mutex<Vec<String>>>,
    lines: Option<mpsc::Sender<String>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut from = BufReader::new(from);
        let mut buf = vec![];
        loop {
            buf.clear();
            match from.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
            output
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(line.clone());
            if let Some(tx) = &lines {
                let _ = tx.send(line);
            }
        }
    })
}

/// `kill -<sig> -- -<pgid>`: the signal to every process of the group.
fn signal_group(sig: &str, pgid: u32) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg("--")
        .arg(format!("-{pgid}"))
        .stderr(Stdio::null())
        .status();
}

struct Proc {
    ppid: u32,
    pgrp: u32,
    start: u64,
    zombie: bool,
}

/// Every process, from `/proc/<pid>/stat`.
fn processes() -> HashMap<u32, Proc> {
    let mut all = HashMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        if let Some(p) = stat(pid) {
            all.insert(pid, p);
        }
    }
    all
}

fn stat(pid: u32) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime
    // stime cutime cstime priority nice threads itrealvalue starttime …`; comm may hold spaces.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    Some(Proc {
        zombie: matches!(*fields.first()?, "Z" | "X"),
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// Whether the process `pid` that started at `start` still runs (a zombie has stopped).
fn alive(pid: u32, start: u64) -> bool {
    stat(pid).is_some_and(|p| p.start == start && !p.zombie)
}

fn cmdline(pid: u32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&raw)
        .replace('\0', " ")
        .trim()
        .to_owned()
}

/// Running processes whose command line names `dir` (Postgres' `-D`, its watchdog, `pg_ctl`).
fn processes_mentioning(dir: &Path) -> Vec<String> {
    let dir = dir.display().to_string();
    processes()
        .into_iter()
        .filter(|(pid, p)| !p.zombie && *pid != std::process::id())
        .filter_map(|(pid, _)| {
            let c = cmdline(pid);
            c.contains(&dir)
                .then(|| format!("{pid} {}", truncate(&c, 240)))
        })
        .collect()
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| {
                p.metadata()
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
    })
}

/// `target/debug/stack`, the binary `just up` runs.
fn stack_bin() -> PathBuf {
    e2e::workspace_root().join("target/debug/stack")
}

/// Builds the binaries once, before any clock starts: `just up`'s own build is then a no-op.
fn build_once() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--workspace", "--bins"])
            .current_dir(e2e::workspace_root())
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    });
    if let Err(e) = built {
        panic!("cargo build --workspace --bins failed:\n{e}");
    }
}
