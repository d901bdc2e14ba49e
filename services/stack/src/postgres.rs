//! A private Postgres cluster started from the installed binaries.
//!
//! Postgres refuses to run as root, so when we are root the cluster runs as the `postgres` OS
//! user on a data directory it owns. The cluster listens on 127.0.0.1 only, with password
//! (SCRAM) authentication over TCP: the per-transaction roles the issuer mints must really
//! authenticate, and `VALID UNTIL` only means something when passwords are checked.

use std::{
    net::TcpListener,
    os::unix::fs::MetadataExt as _,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};

/// How to start a cluster.
#[derive(Debug, Clone)]
pub struct Options {
    pub data_dir: PathBuf,
    /// `None` picks a free port.
    pub port: Option<u16>,
    /// Tests trade durability for speed (`fsync = off`); the demo keeps Postgres' defaults.
    pub durable: bool,
}

/// A running cluster this process started.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub port: u16,
    pub data_dir: PathBuf,
    password: String,
    bin: PathBuf,
    as_postgres_user: bool,
    durable: bool,
}

/// The database every service of the stack shares (each in its own schema).
pub const DATABASE: &str = "platform";

impl Cluster {
    /// Initializes the data directory if it is new, then starts the server and waits until it
    /// accepts connections.
    pub fn start(opts: &Options) -> anyhow::Result<Self> {
        let bin = find_bin_dir()?;
        let as_postgres_user = running_as_root()?;
        let data_dir = absolute(&opts.data_dir)?;
        let password_file = data_dir.join("stack.password");
        if !data_dir.join("PG_VERSION").exists() {
            init(&bin, &data_dir, as_postgres_user)?;
        }
        let password = std::fs::read_to_string(&password_file)
            .with_context(|| format!("reading {}", password_file.display()))?
            .trim()
            .to_owned();
        let mut cluster = Self {
            port: 0,
            data_dir,
            password,
            bin,
            as_postgres_user,
            durable: opts.durable,
        };
        if cluster.status_running() {
            bail!(
                "a Postgres cluster is already running in {} (is the stack already up? stop it first)",
                cluster.data_dir.display()
            );
        }
        cluster.port = match opts.port {
            Some(p) => {
                if TcpListener::bind(("127.0.0.1", p)).is_err() {
                    bail!("port {p} for Postgres is already taken (set PG_PORT to another port)");
                }
                p
            }
            None => free_port()?,
        };
        cluster.run_server()?;
        cluster.ensure_database(DATABASE)?;
        Ok(cluster)
    }

    /// URL of `db` as the cluster's superuser.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/{db}",
            self.password, self.port
        )
    }

    /// `pg_ctl start` on this cluster's port and settings; waits until it accepts connections.
    fn run_server(&self) -> anyhow::Result<()> {
        let mut settings = vec![
            format!("-p {}", self.port),
            "-c listen_addresses=127.0.0.1".into(),
            format!("-c unix_socket_directories={}", self.data_dir.display()),
            "-c log_statement=mod".into(),
            "-c max_connections=300".into(),
            "-c logging_collector=off".into(),
        ];
        if !self.durable {
            settings.extend(
                [
                    "-c fsync=off",
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                ]
                .map(String::from),
            );
        }
        let log = self.data_dir.join("server.log");
        let status = self
            .pg_command("pg_ctl")
            .args(["-D"])
            .arg(&self.data_dir)
            .arg("-l")
            .arg(&log)
            .args(["-o", &settings.join(" "), "-w", "-t", "60", "start"])
            .stdout(Stdio::null())
            .status()
            .context("running pg_ctl start")?;
        if !status.success() {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(10).collect();
            bail!(
                "Postgres did not start (see {}):\n{}",
                log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        Ok(())
    }

    /// Stops the server the way a crash would (`pg_ctl stop -m immediate`: every backend is
    /// killed, nothing is checkpointed, the next start replays the WAL). For fault tests.
    pub fn crash(&self) -> anyhow::Result<()> {
        let status = self
            .pg_command("pg_ctl")
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .status()?;
        if !status.success() && self.status_running() {
            bail!(
                "pg_ctl stop -m immediate failed for {}",
                self.data_dir.display()
            );
        }
        Ok(())
    }

    /// Starts the server again after [`Cluster::crash`] or [`Cluster::stop`]: same data
    /// directory, port, password and settings, so every client's URL still points at it.
    pub fn start_again(&self) -> anyhow::Result<()> {
        if self.status_running() {
            bail!(
                "the cluster in {} is already running",
                self.data_dir.display()
            );
        }
        self.run_server()
    }

    /// Stops the server (fast shutdown: open sessions are ended, no recovery needed next time).
    pub fn stop(&self) -> anyhow::Result<()> {
        let status = self
            .pg_command("pg_ctl")
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "fast", "-w", "stop"])
            .stdout(Stdio::null())
            .status()?;
        if !status.success() && self.status_running() {
            bail!("pg_ctl stop failed for {}", self.data_dir.display());
        }
        Ok(())
    }

    /// Starts a small watchdog process that stops this cluster (and, with `remove_data`, deletes
    /// its directory) as soon as the current process is gone, however it ends: a Postgres started
    /// by `pg_ctl` is a daemon and would otherwise outlive a crashed or killed owner.
    pub fn stop_with_this_process(&self, remove_data: bool) -> anyhow::Result<()> {
        let watch = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop}",
            pid = std::process::id(),
            stop = self.stop_command(remove_data)
        );
        // Its own process group: a Ctrl-C in the terminal (SIGINT to the foreground group) must
        // not kill the watchdog along with its owner, or a cluster started moments before
        // would be left running.
        Command::new("sh")
            .args(["-c", &watch])
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the cluster's watchdog")?;
        Ok(())
    }

    /// A shell command that stops this cluster; used by the watchdog that outlives its owner.
    pub fn stop_command(&self, remove_data: bool) -> String {
        let pg_ctl = self.bin.join("pg_ctl");
        let runuser = if self.as_postgres_user {
            "runuser -u postgres -- "
        } else {
            ""
        };
        let rm = if remove_data {
            format!(" ; rm -rf '{}'", self.data_dir.display())
        } else {
            String::new()
        };
        format!(
            "{runuser}'{}' -D '{}' -m immediate -w stop >/dev/null 2>&1{rm}",
            pg_ctl.display(),
            self.data_dir.display()
        )
    }

    fn status_running(&self) -> bool {
        self.pg_command("pg_ctl")
            .arg("-D")
            .arg(&self.data_dir)
            .arg("status")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn ensure_database(&self, db: &str) -> anyhow::Result<()> {
        let exists = self.psql(
            "postgres",
            &format!("SELECT 1 FROM pg_database WHERE datname = '{db}'"),
        )?;
        if exists.trim() != "1" {
            self.psql("postgres", &format!("CREATE DATABASE {db}"))?;
        }
        Ok(())
    }

    /// Runs one SQL statement through `psql` over the cluster's socket; returns its output.
    pub fn psql(&self, db: &str, sql: &str) -> anyhow::Result<String> {
        let out = self
            .pg_command("psql")
            .args(["-h"])
            .arg(&self.data_dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-tAqc",
                sql,
            ])
            .output()
            .context("running psql")?;
        if !out.status.success() {
            bail!(
                "psql failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn pg_command(&self, tool: &str) -> Command {
        pg_command(&self.bin, tool, self.as_postgres_user)
    }
}

fn pg_command(bin: &Path, tool: &str, as_postgres_user: bool) -> Command {
    let path = if tool == "psql" && !bin.join("psql").exists() {
        PathBuf::from("psql")
    } else {
        bin.join(tool)
    };
    if as_postgres_user {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
        c
    } else {
        Command::new(path)
    }
}

fn init(bin: &Path, data_dir: &Path, as_postgres_user: bool) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let password = kit::random_id(18);
    let pwfile = data_dir.with_extension("pwfile");
    std::fs::write(&pwfile, &password)?;
    if as_postgres_user {
        for p in [data_dir, pwfile.as_path()] {
            let ok = Command::new("chown")
                .arg("postgres:postgres")
                .arg(p)
                .status()?
                .success();
            if !ok {
                bail!("could not give {} to the postgres OS user", p.display());
            }
        }
    }
    let out = pg_command(bin, "initdb", as_postgres_user)
        .arg("-D")
        .arg(data_dir)
        .args([
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
        ])
        .arg(format!("--pwfile={}", pwfile.display()))
        .output()
        .context("running initdb")?;
    let _ = std::fs::remove_file(&pwfile);
    if !out.status.success() {
        bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    std::fs::write(data_dir.join("stack.password"), &password)?;
    Ok(())
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`: `PG_BIN`, else the newest
/// `/usr/lib/postgresql/<v>/bin`, else wherever `pg_ctl` is on `PATH`.
pub fn find_bin_dir() -> anyhow::Result<PathBuf> {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, p): &(u32, PathBuf)| p.join("initdb").exists())
        .collect();
    versions.sort();
    if let Some((_, p)) = versions.pop() {
        return Ok(p);
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir);
        if p.join("pg_ctl").exists() && p.join("initdb").exists() {
            return Ok(p.to_path_buf());
        }
    }
    bail!(
        "Postgres server binaries (initdb, pg_ctl) were not found. Install them \
         (Debian/Ubuntu: apt-get install postgresql), set PG_BIN to their directory, \
         or set DATABASE_URL to use an existing server"
    )
}

fn running_as_root() -> anyhow::Result<bool> {
    Ok(std::fs::metadata("/proc/self")
        .context("reading /proc/self")?
        .uid()
        == 0)
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

/// A port that was free a moment ago on 127.0.0.1.
///
/// Chosen at random below the kernel's ephemeral range (32768–60999 on Linux): a port from that
/// range (what binding port 0 gives) can be handed to an outgoing connection between our check
/// and the service binding it, which happens when several stacks start at once.
pub fn free_port() -> anyhow::Result<u16> {
    use std::hash::{BuildHasher as _, Hasher as _};
    const FIRST: u16 = 20_000;
    const SPAN: u16 = 12_000;
    for _ in 0..200 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        let port = FIRST + (h.finish() % u64::from(SPAN)) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}
