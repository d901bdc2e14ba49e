//! Postgres helpers: a pool whose connections live in the service's own schema, ordered
//! migrations applied once under an advisory lock, and a `LISTEN` subscription.

use std::{str::FromStr as _, time::Duration};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures::StreamExt as _;
use tokio::sync::broadcast;
use tokio_postgres::{AsyncMessage, NoTls};

/// `statement_timeout` of every pooled connection: no statement of a request runs longer.
pub const STATEMENT_TIMEOUT: &str = "30s";
/// `lock_timeout` of every pooled connection: a statement waiting this long for a lock fails
/// (SQLSTATE 55P03) instead of hanging its request and its pooled connection silently.
pub const LOCK_TIMEOUT: &str = "10s";

/// A pool of at most `max` connections to `url`, each with `search_path` set to `schema`, so a
/// service's SQL names its own tables unqualified and cannot touch another service's by accident.
///
/// Each connection also carries [`STATEMENT_TIMEOUT`] and [`LOCK_TIMEOUT`], so a stuck wait
/// surfaces as an error. Neither limits a connection that is idle, or idle in a transaction
/// (a worker may hold row locks across an HTTP call). Waits that are meant to be long do not
/// use pooled connections: `LISTEN` has its own ([`listen`]), and approvals wait on it, not on
/// a statement. [`migrate`] raises both limits for its own transaction.
pub fn pool(url: &str, schema: &str, max: usize) -> anyhow::Result<Pool> {
    let mut cfg = tokio_postgres::Config::from_str(url)?;
    cfg.options(format!(
        "-c search_path={schema} -c statement_timeout={STATEMENT_TIMEOUT} -c lock_timeout={LOCK_TIMEOUT}"
    ));
    cfg.application_name(schema);
    cfg.connect_timeout(Duration::from_secs(5));
    let mgr = Manager::from_config(
        cfg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Ok(Pool::builder(mgr)
        .max_size(max)
        .wait_timeout(Some(Duration::from_secs(10)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()?)
}

/// A transaction whose commit does not wait for the disk (`synchronous_commit = off` for it
/// alone). A crash of Postgres or the machine can lose it, never half of it. Use it only where
/// that loses nothing that matters — typically because a durable commit later in the same
/// request orders after it in the WAL (flushing that one flushes this one) — and say why at the
/// call.
pub async fn deferred_transaction(
    client: &mut deadpool_postgres::Client,
) -> Result<deadpool_postgres::Transaction<'_>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.batch_execute("SET LOCAL synchronous_commit = off")
        .await?;
    Ok(tx)
}

/// One schema change, applied once, in `version` order.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Creates `schema` if needed and applies the migrations it has not seen yet, in one transaction
/// under an advisory lock so that replicas starting together do not race.
pub async fn migrate(pool: &Pool, schema: &str, migrations: &[Migration]) -> anyhow::Result<()> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    // Replicas starting together wait here for the first one's migrations, and a migration may
    // wait for a lock held by running queries: longer limits than a request's.
    tx.batch_execute("SET LOCAL lock_timeout = '2min'; SET LOCAL statement_timeout = '5min'")
        .await?;
    tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&schema])
        .await?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
             version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());
         SET LOCAL search_path = {schema};"
    ))
    .await?;
    for m in migrations {
        let seen = tx
            .query_opt(
                "SELECT 1 FROM schema_migrations WHERE version = $1",
                &[&m.version],
            )
            .await?;
        if seen.is_some() {
            continue;
        }
        tx.batch_execute(m.sql)
            .await
            .map_err(|e| anyhow::anyhow!("migration {} {} failed: {e}", m.version, m.name))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&m.version, &m.name],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Subscribes to `channel` on a dedicated connection and forwards every payload to the returned
/// broadcast sender's receivers. Reconnects with backoff if the connection drops (for example
/// when Postgres restarts), so subscribers only miss what was sent while it was down.
pub fn listen(url: &str, channel: &'static str) -> anyhow::Result<broadcast::Sender<String>> {
    let cfg = tokio_postgres::Config::from_str(url)?;
    let (tx, _) = broadcast::channel(1024);
    let out = tx.clone();
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            match cfg.connect(NoTls).await {
                Ok((client, mut conn)) => {
                    backoff = Duration::from_millis(100);
                    let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
                    let sql = format!("LISTEN {channel}");
                    let listen = client.batch_execute(&sql);
                    // The connection must be driven for LISTEN to complete.
                    let mut listen = std::pin::pin!(listen);
                    let mut listening = false;
                    loop {
                        tokio::select! {
                            r = &mut listen, if !listening => {
                                if r.is_err() { break; }
                                listening = true;
                            }
                            msg = messages.next() => match msg {
                                Some(Ok(AsyncMessage::Notification(n))) => { let _ = tx.send(n.payload().to_owned()); }
                                Some(Ok(_)) => {}
                                Some(Err(_)) | None => break,
                            },
                        }
                    }
                    tracing::warn!(channel, "listen connection lost; reconnecting");
                }
                Err(e) => tracing::warn!(channel, error = %e, "listen connect failed"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    });
    Ok(out)
}
