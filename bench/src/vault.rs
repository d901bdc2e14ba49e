//! Row 2: a credential's whole life through the Vault API (login, creds, connect as the new
//! role, the three-statement transfer, revoke) against the same lifecycle as plain SQL on one
//! connection (create + grant + the ledger's grant row, a new login connection, the transfer,
//! NOLOGIN / terminate / REASSIGN / DROP OWNED / DROP ROLE).
//!
//! T2 for each iteration is minted before the clock starts: hop latency is row 1's business.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use banking::ledger::{self, Transfer};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::{
    load::{self, Samples},
    platform::{self, ALICE, Platform, User},
};

/// Per-step latencies of one way of running the lifecycle.
#[derive(Debug, Default, Clone)]
pub struct Steps {
    /// login + creds (API) or create + grant (SQL)
    pub issue: Vec<f64>,
    pub connect: Vec<f64>,
    pub transfer: Vec<f64>,
    /// revoke (API) or reassign/drop (SQL)
    pub revoke: Vec<f64>,
}

#[derive(Debug)]
pub struct Run {
    pub clients: usize,
    /// Whole lifecycle, per iteration.
    pub total: Samples,
    /// Issue + revoke only (what the issuer adds around the SQL the agent runs).
    pub issue_revoke: Samples,
    pub steps: Steps,
}

#[derive(Debug)]
pub struct Results {
    pub api: Vec<Run>,
    pub sql: Vec<Run>,
}

/// Always one direction: two concurrent transfers between the same two accounts in opposite
/// directions lock the rows in opposite orders and deadlock (the ledger's transfer debits
/// first). $1 a time, a few hundred times, leaves the demo balances far from empty.
fn direction(_i: usize) -> (&'static str, &'static str) {
    ("checking", "savings")
}

const AMOUNT: &str = "1.00";
const CENTS: i64 = 100;

#[derive(Debug, Default)]
struct Timed {
    issue: f64,
    connect: f64,
    transfer: f64,
    revoke: f64,
}

impl Timed {
    fn total(&self) -> f64 {
        self.issue + self.connect + self.transfer + self.revoke
    }
}

fn since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

async fn api_once(p: &Platform, t2: &str, i: usize) -> anyhow::Result<Timed> {
    let (source, destination) = direction(i);
    let vr = &p.stack.urls.verify_rar;
    let mut out = Timed::default();

    let t = Instant::now();
    let login: Value = vault_ok(
        p.http
            .post(format!("{vr}/v1/auth/jwt/login"))
            .json(&json!({"jwt": t2}))
            .send()
            .await?,
    )
    .await?;
    let token = login["auth"]["client_token"]
        .as_str()
        .context("client_token")?
        .to_owned();
    let creds: Value = vault_ok(
        p.http
            .get(format!("{vr}/v1/verify-rar/creds/banking-transfers"))
            .header("x-vault-token", &token)
            .send()
            .await?,
    )
    .await?;
    out.issue = since(t);
    let lease = creds["lease_id"].as_str().context("lease_id")?.to_owned();
    let user_name = creds["data"]["username"].as_str().context("username")?;
    let password = creds["data"]["password"].as_str().context("password")?;

    let t = Instant::now();
    let mut db = connect_as(&p.stack.urls.database, user_name, password).await?;
    out.connect = since(t);
    let t = Instant::now();
    transfer(&mut db, source, destination).await?;
    out.transfer = since(t);
    drop(db);

    let t = Instant::now();
    let r = p
        .http
        .put(format!("{vr}/v1/sys/leases/revoke"))
        .header("x-vault-token", &token)
        .json(&json!({"lease_id": lease}))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("revoke answered {}: {}", r.status(), r.text().await?);
    }
    out.revoke = since(t);
    Ok(out)
}

async fn vault_ok(r: reqwest::Response) -> anyhow::Result<Value> {
    if !r.status().is_success() {
        bail!("vault API answered {}: {}", r.status(), r.text().await?);
    }
    Ok(r.json().await?)
}

async fn connect_as(
    url: &str,
    user: &str,
    password: &str,
) -> anyhow::Result<tokio_postgres::Client> {
    let mut cfg: tokio_postgres::Config = url.parse()?;
    cfg.user(user).password(password);
    let (client, conn) = cfg.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

async fn transfer(
    db: &mut tokio_postgres::Client,
    source: &str,
    destination: &str,
) -> anyhow::Result<()> {
    ledger::transfer(
        db,
        &Transfer {
            owner: ALICE,
            source,
            destination,
            amount_cents: CENTS,
        },
    )
    .await
    .map_err(|e| match e {
        ledger::LedgerError::Database(db) => anyhow::anyhow!(
            "transfer: {}",
            db.as_db_error()
                .map_or(db.to_string(), |d| d.message().to_owned())
        ),
        other => anyhow::anyhow!("transfer: {other}"),
    })?;
    Ok(())
}

/// The same lifecycle by hand, as a superuser on one connection: what the issuer does, without
/// the issuer.
async fn sql_once(admin: &tokio_postgres::Client, url: &str, i: usize) -> anyhow::Result<Timed> {
    let (source, destination) = direction(i);
    let name = format!(
        "v-bench-{}",
        kit::random_id(15)
            .to_ascii_lowercase()
            .replace(['-', '_'], "x")
    );
    let password = format!("A1-{}", kit::random_id(18).replace(['-', '_'], "x"));
    let expires = kit::now_secs() + 300;
    let valid_until = time::OffsetDateTime::from_unix_timestamp(expires)?
        .format(&time::format_description::well_known::Rfc3339)?;
    let mut out = Timed::default();

    let t = Instant::now();
    admin
        .batch_execute(&format!(
            "BEGIN;
             CREATE ROLE \"{name}\" WITH LOGIN PASSWORD '{password}' VALID UNTIL '{valid_until}';
             GRANT banking_transfers TO \"{name}\";"
        ))
        .await?;
    admin
        .execute(
            "INSERT INTO banking.grants (id, pg_user, jti, rar_fingerprint, action, owner, source, destination,
                 amount_cents, currency, expires_at)
             VALUES ($1, $2, $3, 'bench', 'transfer_funds', $4, $5, $6, $7, 'USD', to_timestamp($8::bigint))",
            &[&uuid::Uuid::new_v4(), &name, &format!("bench-{i}"), &ALICE, &source, &destination, &CENTS, &expires],
        )
        .await?;
    admin.batch_execute("COMMIT").await?;
    out.issue = since(t);

    let t = Instant::now();
    let mut db = connect_as(url, &name, &password).await?;
    out.connect = since(t);
    let t = Instant::now();
    transfer(&mut db, source, destination).await?;
    out.transfer = since(t);
    drop(db);

    let t = Instant::now();
    admin
        .batch_execute(&format!("ALTER ROLE \"{name}\" NOLOGIN"))
        .await?;
    admin
        .execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = $1",
            &[&name],
        )
        .await?;
    admin
        .batch_execute(&format!(
            "REASSIGN OWNED BY \"{name}\" TO CURRENT_USER; DROP OWNED BY \"{name}\"; DROP ROLE \"{name}\""
        ))
        .await?;
    out.revoke = since(t);
    Ok(out)
}

fn collect(clients: usize, timed: Vec<Timed>, wall: Duration) -> Run {
    let mut steps = Steps::default();
    let mut total = vec![];
    let mut ir = vec![];
    for t in &timed {
        steps.issue.push(t.issue);
        steps.connect.push(t.connect);
        steps.transfer.push(t.transfer);
        steps.revoke.push(t.revoke);
        total.push(t.total());
        ir.push(t.issue + t.revoke);
    }
    let mut total = Samples::from_ms(total);
    total.wall = wall;
    let mut issue_revoke = Samples::from_ms(ir);
    issue_revoke.wall = wall;
    Run {
        clients,
        total,
        issue_revoke,
        steps,
    }
}

/// T2s for iterations `0..n`, minted before the clock starts.
async fn mint(p: &Platform, user: &User, n: usize) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (source, destination) = direction(i);
        out.push(p.transfer_token(user, source, destination, AMOUNT).await?);
    }
    Ok(out)
}

/// Rounds per concurrency: the two ways alternate in blocks (API, SQL, API, SQL, …), so a
/// change in the machine's load during the run (other builds and tests share it) falls on both
/// ways alike instead of on whichever ran second.
const ROUNDS: usize = 5;

pub async fn run(p: &Arc<Platform>, user: &User, scale: f64) -> anyhow::Result<Results> {
    let n = ((150.0 * scale) as usize).max(ROUNDS * 2);
    let per_round = n.div_ceil(ROUNDS);
    let url = p.stack.urls.database.clone();
    let limit = Duration::from_secs(120);
    // Warm-up of both paths.
    for (i, t2) in mint(p, user, 10).await?.iter().enumerate() {
        api_once(p, t2, i).await?;
    }
    let mut api = vec![];
    let mut sql = vec![];
    for clients in [1usize, 4] {
        // One superuser connection per client, checked out for a whole iteration.
        let mut admins = vec![];
        for _ in 0..clients {
            admins.push(platform::connect(&url).await?);
        }
        for i in 0..5 {
            sql_once(&admins[0], &url, i)
                .await
                .context("plain SQL lifecycle (warm-up)")?;
        }
        let admins = Arc::new(Mutex::new(admins));
        let (mut api_timed, mut sql_timed) = (vec![], vec![]);
        let (mut api_wall, mut sql_wall) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..ROUNDS {
            let tokens = Arc::new(mint(p, user, per_round).await?);
            let results = Arc::new(Mutex::new(Vec::new()));
            let (pc, rc) = (p.clone(), results.clone());
            let s = load::concurrent(clients, per_round, limit, move |i| {
                let (p, r, tokens) = (pc.clone(), rc.clone(), tokens.clone());
                async move {
                    let t = api_once(&p, &tokens[i], i)
                        .await
                        .context("Vault API lifecycle")?;
                    r.lock().await.push(t);
                    Ok(())
                }
            })
            .await?;
            api_wall += s.wall;
            api_timed.append(&mut *results.lock().await);

            let results = Arc::new(Mutex::new(Vec::new()));
            let (rc, uc, ac) = (results.clone(), url.clone(), admins.clone());
            let s = load::concurrent(clients, per_round, limit, move |i| {
                let (r, admins, url) = (rc.clone(), ac.clone(), uc.clone());
                async move {
                    let admin = admins.lock().await.pop().context("an idle connection")?;
                    let t = sql_once(&admin, &url, i)
                        .await
                        .context("plain SQL lifecycle");
                    admins.lock().await.push(admin);
                    r.lock().await.push(t?);
                    Ok(())
                }
            })
            .await?;
            sql_wall += s.wall;
            sql_timed.append(&mut *results.lock().await);
        }
        api.push(collect(clients, api_timed, api_wall));
        sql.push(collect(clients, sql_timed, sql_wall));
    }
    Ok(Results { api, sql })
}
