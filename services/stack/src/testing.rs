//! Test support: one Postgres cluster per test binary, a fresh database per test.
//!
//! The cluster is started on first use and stopped by a small watchdog process when the test
//! binary exits (however it exits), so no test run leaves a server or a data directory behind.
//! With `DATABASE_URL` set, tests create their databases on that server instead.

use std::sync::OnceLock;

use crate::postgres::{Cluster, Options};

static SERVER: OnceLock<Result<String, String>> = OnceLock::new();

/// URL template of the server tests use: `{db}` stands for the database name.
fn server() -> anyhow::Result<&'static str> {
    let r = SERVER.get_or_init(|| {
        if let Ok(url) = std::env::var("DATABASE_URL") {
            return Ok(replace_db(&url, "{db}"));
        }
        start_cluster().map_err(|e| format!("{e:#}"))
    });
    r.as_deref().map_err(|e| anyhow::anyhow!("{e}"))
}

fn start_cluster() -> anyhow::Result<String> {
    let dir = std::env::temp_dir().join(format!(
        "platform-test-pg-{}-{}",
        std::process::id(),
        kit::random_id(4)
    ));
    let cluster = Cluster::start(&Options {
        data_dir: dir,
        port: None,
        durable: false,
    })?;
    // Stopped and removed when this test binary exits, however it exits.
    cluster.stop_with_this_process(true)?;
    Ok(cluster.url("{db}"))
}

fn replace_db(url: &str, db: &str) -> String {
    match url.rsplit_once('/') {
        Some((base, tail)) => {
            let query = tail
                .split_once('?')
                .map(|(_, q)| format!("?{q}"))
                .unwrap_or_default();
            format!("{base}/{db}{query}")
        }
        None => url.to_owned(),
    }
}

/// Creates an empty database for one test and returns its URL.
pub async fn fresh_database() -> anyhow::Result<String> {
    let template = server()?;
    let name = format!(
        "t_{}",
        kit::random_id(9)
            .to_ascii_lowercase()
            .replace(['-', '_'], "x")
    );
    let (client, conn) =
        tokio_postgres::connect(&template.replace("{db}", "postgres"), tokio_postgres::NoTls)
            .await?;
    let driver = tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await?;
    drop(client);
    let _ = driver.await;
    Ok(template.replace("{db}", &name))
}

/// The superuser URL of the `postgres` database of the test server (for cluster-wide checks
/// such as `pg_roles`).
pub fn server_url() -> anyhow::Result<String> {
    Ok(server()?.replace("{db}", "postgres"))
}
