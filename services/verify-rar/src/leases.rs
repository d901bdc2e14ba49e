//! The life of a credential: issue, renew, revoke, reap, and reconcile after a crash.
//!
//! # Crash safety
//!
//! Issuing writes the lease as an **intent** (`state = 'creating'`, naming the role it is about
//! to create) and commits it *before* the role exists. The role, its comment marker
//! (`verify-rar@<database>`), its grants and the ledger grant row are then created in one
//! database transaction, and only after that commits is the lease marked `active`. So whatever
//! point a crash hits, a role that exists is named by a lease row:
//!
//! - crash before the role transaction commits: Postgres rolls it back; no role;
//! - crash after it commits, before `active`: the `creating` row names the role. On start-up an
//!   instance revokes its own `creating` rows (it just restarted, so none of them is in flight);
//!   the reaper revokes anyone's `creating` rows older than [`STALE_INTENT`] (an instance that
//!   never came back).
//!
//! As a second net, start-up also drops roles carrying this database's marker that no
//! `creating`/`active` lease names. Roles are cluster-wide, so the marker (not the `v-` prefix)
//! is what makes a role ours: another database's issuer, or a test next door, is left alone.
//!
//! # Revocation
//!
//! Idempotent and in this order: `NOLOGIN` (committed, so no new session can start), terminate
//! the role's sessions and wait for them to end, then `REASSIGN OWNED`, `DROP OWNED` and
//! `DROP ROLE` together. The lease row is locked (`FOR UPDATE`) throughout, so a revoke and the
//! reaper never work on one lease at once; the reaper skips locked rows (`SKIP LOCKED`).
//!
//! The revocation's record (the audit line and its event) is written while the row is still
//! locked, *before* the lease is marked revoked. A crash between the two leaves a recorded
//! revocation whose lease still reads `active` (its role already gone); the reaper or the next
//! revoke finishes it and records it again. The other order would lose the record: a lease
//! marked revoked whose revocation no audit line names.

use std::time::Instant;

use deadpool_postgres::GenericClient;
use kit::{
    events::Outcome,
    rar::{self, AuthorizationDetail},
};
use tokio_postgres::{
    error::SqlState,
    types::{ToSql, Type},
};
use uuid::Uuid;

use crate::{
    config::{Failpoint, MOUNT},
    error::{Error, Result},
    roles::{self, Param, RarMapping, RoleConfig, Statement},
    state::AppState,
    store::{TokenRecord, random_alnum},
};

/// Age after which anyone's unfinished intent is treated as abandoned.
pub const STALE_INTENT: &str = "2 minutes";
/// The comment that marks a role as created by the issuer of this database.
const MARKER: &str = "verify-rar@";

/// Is `name` a role name this issuer generates: `v-<role>-<20 lower-case alphanumerics>`?
/// Checked before any role name is put into SQL text, where it is also double-quoted.
pub fn valid_pg_user(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("v-") else {
        return false;
    };
    let Some((role, suffix)) = rest.rsplit_once('-') else {
        return false;
    };
    roles::valid_role_name(role)
        && suffix.len() == 20
        && suffix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

fn quoted(name: &str) -> Result<String> {
    if valid_pg_user(name) {
        Ok(format!("\"{name}\""))
    } else {
        Err(Error::Internal(anyhow::anyhow!(
            "refusing to put role name {name:?} into SQL"
        )))
    }
}

/// Vault's expiration format (`2006-01-02 15:04:05-0700`), from a Unix time we computed.
fn expiration(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map(|t| {
            let month = u8::from(t.month());
            format!(
                "{:04}-{month:02}-{:02} {:02}:{:02}:{:02}+0000",
                t.year(),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        })
        .unwrap_or_default()
}

/// A credential as handed to the client.
#[derive(Debug, Clone)]
pub struct Issued {
    pub lease_id: String,
    pub username: String,
    pub password: String,
    pub ttl: u64,
    pub grant_id: Uuid,
}

/// A lease as stored.
#[derive(Debug, Clone)]
pub struct Lease {
    pub lease_id: String,
    pub role: String,
    pub pg_user: String,
    pub state: String,
    pub token_accessor: Option<String>,
    pub jti: Option<String>,
    pub sid: Option<String>,
    pub rar_type: String,
    pub rar_action: String,
    pub fingerprint: String,
    pub rar_summary: String,
    pub grant_id: Uuid,
    pub issued_at: i64,
    pub expires_at: i64,
    pub max_expires_at: i64,
    pub last_renewal: Option<i64>,
}

const LEASE_COLUMNS: &str = "lease_id, role, pg_user, state, token_accessor, jti, sid, rar_type, rar_action, fingerprint,
    rar_summary, grant_id, extract(epoch FROM issued_at)::bigint, extract(epoch FROM expires_at)::bigint,
    extract(epoch FROM max_expires_at)::bigint, extract(epoch FROM last_renewal)::bigint";

impl Lease {
    fn from_row(r: &tokio_postgres::Row) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            lease_id: r.try_get(0)?,
            role: r.try_get(1)?,
            pg_user: r.try_get(2)?,
            state: r.try_get(3)?,
            token_accessor: r.try_get(4)?,
            jti: r.try_get(5)?,
            sid: r.try_get(6)?,
            rar_type: r.try_get(7)?,
            rar_action: r.try_get(8)?,
            fingerprint: r.try_get(9)?,
            rar_summary: r.try_get(10)?,
            grant_id: r.try_get(11)?,
            issued_at: r.try_get(12)?,
            expires_at: r.try_get(13)?,
            max_expires_at: r.try_get(14)?,
            last_renewal: r.try_get(15)?,
        })
    }
}

/// The values mapping statements may bind, by [`Param`].
#[derive(Debug)]
struct Bindings<'a> {
    name: &'a str,
    grant_id: Uuid,
    lease_id: &'a str,
    token: Option<&'a TokenRecord>,
    detail: Option<&'a AuthorizationDetail>,
    fingerprint: &'a str,
    owner: Option<&'a str>,
    expires_unix: i64,
    ttl: i64,
}

enum Value {
    Text(Option<String>),
    Int(Option<i64>),
    Uuid(Uuid),
}

impl Bindings<'_> {
    fn value(&self, p: Param) -> Value {
        let field = |n: &str| Value::Text(self.detail.and_then(|d| d.field(n)).map(str::to_owned));
        let tok = |f: fn(&TokenRecord) -> Option<String>| Value::Text(self.token.and_then(f));
        match p {
            Param::Name => Value::Text(Some(self.name.to_owned())),
            Param::GrantId => Value::Uuid(self.grant_id),
            Param::LeaseId => Value::Text(Some(self.lease_id.to_owned())),
            Param::Jti => tok(|t| Some(t.jti.clone())),
            Param::Sid => tok(|t| t.sid.clone()),
            Param::Sub => tok(|t| Some(t.sub.clone())),
            Param::Fingerprint => Value::Text(Some(self.fingerprint.to_owned())),
            Param::Action => Value::Text(
                self.detail
                    .and_then(AuthorizationDetail::action)
                    .map(str::to_owned),
            ),
            Param::Owner => Value::Text(self.owner.map(str::to_owned)),
            Param::Source => field("source"),
            Param::Destination => field("destination"),
            Param::Account => field("account"),
            Param::Kind => field("kind"),
            Param::AmountCents => Value::Int(
                self.detail
                    .and_then(AuthorizationDetail::amount)
                    .map(|a| a.cents),
            ),
            Param::Currency => Value::Text(
                self.detail
                    .and_then(AuthorizationDetail::amount)
                    .map(|a| a.currency().to_owned()),
            ),
            Param::ExpiresUnix => Value::Int(Some(self.expires_unix)),
            Param::TtlSeconds => Value::Int(Some(self.ttl)),
        }
    }
}

type Bound = Box<dyn ToSql + Sync + Send>;

/// Converts a value to what Postgres inferred for the parameter. Values are only ever bound.
fn bind(ty: &Type, v: Value, n: usize, p: Param) -> Result<Bound> {
    let text = matches!(
        *ty,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
    );
    Ok(match v {
        Value::Text(s) if text => Box::new(s),
        Value::Int(i) if text => Box::new(i.map(|i| i.to_string())),
        Value::Uuid(u) if text => Box::new(u.to_string()),
        Value::Int(i) if *ty == Type::INT8 => Box::new(i),
        Value::Int(i) if *ty == Type::INT4 => Box::new(
            i.map(i32::try_from)
                .transpose()
                .map_err(|_| anyhow::anyhow!("${n} does not fit int4"))?,
        ),
        Value::Int(i) if *ty == Type::FLOAT8 => Box::new(i.map(|i| i as f64)),
        Value::Uuid(u) if *ty == Type::UUID => Box::new(u),
        _ => {
            return Err(Error::Internal(anyhow::anyhow!(
                "role statement parameter ${n} ({p:?}) has type {ty}; cast it in SQL"
            )));
        }
    })
}

/// Prepares `sql` (after `{{name}}` substitution) and runs it with `params` bound.
async fn execute_bound(client: &impl GenericClient, s: &Statement, b: &Bindings<'_>) -> Result<()> {
    let sql = roles::render(&s.sql, b.name, "", "");
    // A statement whose text does not change from one credential to the next (its values are
    // all bound) is prepared once per connection; one that names the role is prepared each time.
    let stmt = if sql == s.sql {
        client.prepare_cached(&sql).await?
    } else {
        client.prepare(&sql).await?
    };
    if stmt.params().len() != s.params.len() {
        return Err(Error::Internal(anyhow::anyhow!(
            "role statement takes {} parameters but lists {}",
            stmt.params().len(),
            s.params.len()
        )));
    }
    let values = stmt
        .params()
        .iter()
        .zip(&s.params)
        .enumerate()
        .map(|(i, (ty, p))| bind(ty, b.value(*p), i + 1, *p))
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<&(dyn ToSql + Sync)> = values
        .iter()
        .map(|v| v.as_ref() as &(dyn ToSql + Sync))
        .collect();
    client
        .execute(&stmt, &refs)
        .await
        .map_err(refusal_or_error)?;
    Ok(())
}

/// Mints a credential for the business entry `detail` of `token` through `mapping` of `role`.
pub async fn issue(
    state: &AppState,
    role: &RoleConfig,
    mapping: &RarMapping,
    token: &TokenRecord,
    detail: &AuthorizationDetail,
) -> Result<Issued> {
    let name = format!("v-{}-{}", role.name, random_alnum(20));
    let password = format!("A1-{}", random_alnum(24));
    let lease_id = format!("{MOUNT}/creds/{}/{}", role.name, random_alnum(24));
    let grant_id = Uuid::new_v4();
    let now = kit::now_secs();
    let ttl = i64::try_from(role.default_ttl).map_err(anyhow::Error::from)?;
    let max_ttl = i64::try_from(role.max_ttl).map_err(anyhow::Error::from)?;
    let expires = now + ttl;
    let fingerprint = rar::fingerprint(&token.rar);
    let owner = detail
        .field("owner")
        .map(str::to_owned)
        .unwrap_or_else(|| token.user())
        .to_ascii_lowercase();
    let (kind, action) = (detail.kind.as_str(), detail.action().unwrap_or_default());

    // 1. The intent, committed before the role exists. Its commit need not wait for the disk:
    //    the role's own transaction (step 2) commits after it, and the WAL is replayed in
    //    order, so a role that survives a crash always finds its intent.
    //    One statement, prepared once per connection; `set_config(…, true)` turns the wait off
    //    for this statement's own transaction only.
    let client = state.pool.get().await?;
    let stmt = client
        .prepare_cached(
            "WITH ins AS (
                 INSERT INTO leases (lease_id, role, pg_user, state, instance_id, token_accessor, jti, sid, owner,
                                     rar_type, rar_action, fingerprint, rar_summary, grant_id, expires_at, max_expires_at)
                 VALUES ($1, $2, $3, 'creating', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                         to_timestamp($14::bigint), to_timestamp($15::bigint))
                 RETURNING 1)
             SELECT set_config('synchronous_commit', 'off', true) FROM ins",
        )
        .await?;
    client
        .query_one(
            &stmt,
            &[
                &lease_id,
                &role.name,
                &name,
                &state.config.instance_id,
                &token.accessor,
                &token.jti,
                &token.sid,
                &owner,
                &kind,
                &action,
                &fingerprint,
                &detail.summary(),
                &grant_id,
                &expires,
                &(now + max_ttl),
            ],
        )
        .await?;

    // 2. The role, its marker, its grants and the ledger's grant row: all or nothing.
    let bindings = Bindings {
        name: &name,
        grant_id,
        lease_id: &lease_id,
        token: Some(token),
        detail: Some(detail),
        fingerprint: &fingerprint,
        owner: Some(&owner),
        expires_unix: expires,
        ttl,
    };
    let created = create_role(
        state,
        role,
        mapping,
        &bindings,
        &password,
        &expiration(expires),
    )
    .await;
    if let Err(e) = created {
        client
            .execute(
                "UPDATE leases SET state = 'failed', revoked_at = now(), revoke_reason = 'creation failed'
                 WHERE lease_id = $1",
                &[&lease_id],
            )
            .await?;
        return Err(e);
    }
    if state.config.failpoint == Some(Failpoint::AfterCreate) {
        return Err(Error::Internal(anyhow::anyhow!(
            "failpoint: stopped after creating {name}"
        )));
    }

    // 3. The record: the lease is live. Not waiting for the disk here loses nothing: a crash that
    //    forgets it leaves the lease `creating`, and the role is revoked at restart (reconcile)
    //    or by the reaper; the issuance itself is in the audit log, written durably next.
    //    An explicit transaction, its COMMIT sent only once the UPDATE has returned: an issuer
    //    that dies while its UPDATE waits (for a lock) never commits it, so its lease stays
    //    `creating` and the restarted issuer drops the role at once (`reconcile`) instead of the
    //    reaper at the end of the TTL (`e2e::faults::kill` holds it exactly there).
    let mut client = client;
    let tx = kit::pg::deferred_transaction(&mut client).await?;
    let stmt = tx
        .prepare_cached(
            "UPDATE leases SET state = 'active' WHERE lease_id = $1 AND state = 'creating'",
        )
        .await?;
    tx.execute(&stmt, &[&lease_id]).await?;
    tx.commit().await?;
    Ok(Issued {
        lease_id,
        username: name,
        password,
        ttl: role.default_ttl,
        grant_id,
    })
}

async fn create_role(
    state: &AppState,
    role: &RoleConfig,
    mapping: &RarMapping,
    b: &Bindings<'_>,
    password: &str,
    expiration: &str,
) -> Result<()> {
    quoted(b.name)?;
    let mut client = state.pool.get().await?;
    // The commit does not wait for the disk. A crash can lose the role only together with
    // what was committed after it (the WAL is replayed in order), and losing it takes
    // authority away, never adds any: the holder's password then opens nothing, the ledger's
    // grant row (same transaction) is gone with it, and the intent (committed before) is
    // revoked at start-up by `reconcile`, a no-op for a role that does not exist. Anything that
    // uses the role commits durably after it — the ledger transfer, run as the role, and the
    // lease's revocation — which flushes it first. The issuance itself is on record in the
    // audit log, written and flushed before the credential is handed out. So the one wait for
    // the disk of an issuance is the audit line's, not two. See `docs/BENCHMARKS.md`.
    let tx = client.transaction().await?;
    // Round trips, not statements, are what a short transaction costs: everything up to the
    // first statement with bound values goes to the server as one batch (the simple-query
    // protocol runs a batch's statements in order, in this transaction). The marker comment is
    // quoted by Postgres itself (`format` with `%I` / `%L`); the role name in it passed
    // `quoted` above, so it holds only `[a-z0-9-]`.
    let mut batch = vec!["SET LOCAL synchronous_commit = off".to_owned()];
    batch.extend(
        role.creation_statements
            .iter()
            .map(|sql| roles::render(sql, b.name, password, expiration)),
    );
    batch.push(format!(
        "DO $marker$ BEGIN EXECUTE format('COMMENT ON ROLE %I IS %L', '{}', '{MARKER}' || current_database()); END $marker$",
        b.name
    ));
    for s in &mapping.statements {
        if s.params.is_empty() {
            batch.push(roles::render(&s.sql, b.name, "", ""));
        } else {
            run_batch(&tx, &mut batch).await?;
            execute_bound(&tx, s, b).await?;
        }
    }
    run_batch(&tx, &mut batch).await?;
    tx.commit().await?;
    Ok(())
}

/// Sends the statements gathered in `batch` as one simple query and empties it.
async fn run_batch(client: &impl GenericClient, batch: &mut Vec<String>) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let sql = batch.join(";\n");
    batch.clear();
    client.batch_execute(&sql).await.map_err(refusal_or_error)
}

/// The ledger refusing a grant (a CHECK on the grant row) is a refusal, not a crash.
fn refusal_or_error(e: tokio_postgres::Error) -> Error {
    match e.as_db_error() {
        Some(db)
            if [SqlState::CHECK_VIOLATION, SqlState::NOT_NULL_VIOLATION].contains(db.code()) =>
        {
            Error::BadRequest(format!("the database refused this grant: {}", db.message()))
        }
        _ => Error::from(e),
    }
}

/// Ends a role: no new logins, live sessions terminated, then gone. Idempotent.
async fn drop_role(client: &impl GenericClient, name: &str) -> Result<()> {
    let q = quoted(name)?;
    let exists = client
        .prepare_cached("SELECT 1 FROM pg_roles WHERE rolname = $1")
        .await?;
    if client.query_opt(&exists, &[&name]).await?.is_none() {
        return Ok(());
    }
    // Neither statement waits for the disk: each caller commits the lease row's new state
    // durably afterwards, which flushes these too (the WAL is flushed in order); reconcile at
    // start-up redoes an orphan's drop that a crash forgot.
    client
        .batch_execute(&format!(
            "SELECT set_config('synchronous_commit', 'off', true); ALTER ROLE {q} NOLOGIN"
        ))
        .await?;
    let terminate = client
        .prepare_cached(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = $1",
        )
        .await?;
    client.execute(&terminate, &[&name]).await?;
    client
        .batch_execute(&format!(
            "SELECT set_config('synchronous_commit', 'off', true); REASSIGN OWNED BY {q} TO CURRENT_USER; DROP OWNED BY {q}; DROP ROLE IF EXISTS {q}"
        ))
        .await?;
    Ok(())
}

/// Who may act on a lease: the token that created it, or the admin token.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    Admin,
    Token(&'a str),
}

fn check_owner(lease: &Lease, actor: Actor<'_>) -> Result<()> {
    match actor {
        Actor::Admin => Ok(()),
        Actor::Token(accessor) if lease.token_accessor.as_deref() == Some(accessor) => Ok(()),
        Actor::Token(_) => Err(Error::PermissionDenied(
            "lease belongs to another token".into(),
        )),
    }
}

pub async fn lookup(state: &AppState, lease_id: &str, actor: Actor<'_>) -> Result<Lease> {
    let client = state.pool.get().await?;
    let row = client
        .query_opt(
            &format!("SELECT {LEASE_COLUMNS} FROM leases WHERE lease_id = $1 AND state = 'active'"),
            &[&lease_id],
        )
        .await?
        .ok_or(Error::InvalidLease)?;
    let lease = Lease::from_row(&row)?;
    check_owner(&lease, actor)?;
    Ok(lease)
}

/// Revokes one lease (a no-op for one already revoked). Returns the lease if this call ended it.
pub async fn revoke(
    state: &AppState,
    lease_id: &str,
    actor: Actor<'_>,
    reason: &str,
) -> Result<Option<Lease>> {
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(
            &format!("SELECT {LEASE_COLUMNS} FROM leases WHERE lease_id = $1 FOR UPDATE"),
            &[&lease_id],
        )
        .await?
        .ok_or(Error::InvalidLease)?;
    let lease = Lease::from_row(&row)?;
    check_owner(&lease, actor)?;
    if !matches!(lease.state.as_str(), "active" | "creating") {
        return Ok(None);
    }
    let role_client = state.pool.get().await?;
    drop_role(&role_client, &lease.pg_user).await?;
    record_revocation(state, &role_client, &lease, "lease_revoked", reason).await;
    tx.execute(
        "UPDATE leases SET state = 'revoked', revoked_at = now(), revoke_reason = $2 WHERE lease_id = $1",
        &[&lease_id, &reason],
    )
    .await?;
    tx.commit().await?;
    Ok(Some(lease))
}

/// Extends a lease by `increment` seconds (the role's default when `None` or 0), never past its
/// `max_ttl` from issue. Returns the lease with its new expiry.
pub async fn renew(
    state: &AppState,
    lease_id: &str,
    actor: Actor<'_>,
    increment: Option<i64>,
) -> Result<Lease> {
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(
            &format!("SELECT {LEASE_COLUMNS} FROM leases WHERE lease_id = $1 AND state = 'active' AND expires_at > now() FOR UPDATE"),
            &[&lease_id],
        )
        .await?
        .ok_or(Error::InvalidLease)?;
    let mut lease = Lease::from_row(&row)?;
    check_owner(&lease, actor)?;
    let role = crate::store::get_role(&state.pool, &lease.role).await?;
    let default = role.as_ref().map_or(60, |r| r.default_ttl);
    let increment = increment
        .filter(|i| *i > 0)
        .unwrap_or(i64::try_from(default).unwrap_or(60));
    let now = kit::now_secs();
    let expires = (now + increment)
        .min(lease.max_expires_at)
        .max(lease.expires_at);
    tx.batch_execute(&format!(
        "ALTER ROLE {} VALID UNTIL '{}'",
        quoted(&lease.pg_user)?,
        expiration(expires)
    ))
    .await?;
    if let Some(mapping) = role
        .as_ref()
        .and_then(|r| r.mapping(&lease.rar_type, &lease.rar_action))
    {
        let b = Bindings {
            name: &lease.pg_user,
            grant_id: lease.grant_id,
            lease_id: &lease.lease_id,
            token: None,
            detail: None,
            fingerprint: &lease.fingerprint,
            owner: None,
            expires_unix: expires,
            ttl: expires - now,
        };
        for s in &mapping.renew_statements {
            execute_bound(&tx, s, &b).await?;
        }
    }
    tx.execute(
        "UPDATE leases SET expires_at = to_timestamp($2::bigint), last_renewal = now() WHERE lease_id = $1",
        &[&lease_id, &expires],
    )
    .await?;
    tx.commit().await?;
    lease.expires_at = expires;
    lease.last_renewal = Some(now);
    Ok(lease)
}

/// Revokes the leases matched by `filter` (a fixed SQL condition), skipping rows another
/// instance is working on, each recorded as a `kind` event saying `why`. Returns what it revoked.
async fn revoke_where(
    state: &AppState,
    filter: &str,
    params: &[&(dyn ToSql + Sync)],
    reason: &str,
    (kind, why): (&str, &str),
) -> Result<Vec<Lease>> {
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let rows = tx
        .query(&format!("SELECT {LEASE_COLUMNS} FROM leases WHERE {filter} ORDER BY expires_at LIMIT 100 FOR UPDATE SKIP LOCKED"), params)
        .await?;
    let role_client = state.pool.get().await?;
    let mut done = vec![];
    for row in &rows {
        let lease = Lease::from_row(row)?;
        drop_role(&role_client, &lease.pg_user).await?;
        record_revocation(state, &role_client, &lease, kind, why).await;
        tx.execute(
            "UPDATE leases SET state = 'revoked', revoked_at = now(), revoke_reason = $2 WHERE lease_id = $1",
            &[&lease.lease_id, &reason],
        )
        .await?;
        done.push(lease);
    }
    tx.commit().await?;
    Ok(done)
}

/// Records the revocation of `lease` (its audit line, then its event on `db`, a connection the
/// caller already holds) before the caller marks it revoked; see "Revocation" above. A failure
/// to record is logged: it never keeps a credential alive.
async fn record_revocation(
    state: &AppState,
    db: &deadpool_postgres::Client,
    lease: &Lease,
    kind: &str,
    reason: &str,
) {
    let mut e = state.event(kind, Outcome::Info);
    e.lease = Some(lease.lease_id.clone());
    e.pg_user = Some(lease.pg_user.clone());
    e.jti = lease.jti.clone();
    e.session = lease.sid.clone();
    e.fingerprint = Some(lease.fingerprint.clone());
    e.rar_summary = Some(lease.rar_summary.clone());
    e.reason = Some(reason.into());
    if let Err(err) = state.audit.append(&e) {
        tracing::error!(error = format!("{err:#}"), lease = %lease.lease_id, "audit record of a revocation failed");
    }
    if let Err(err) = kit::events::emit_on(db, &e, kit::events::Commit::Deferred).await {
        tracing::warn!(error = %err, "security event not stored");
    }
}

/// Revokes every live lease of session `sid` (a CAEP `session-revoked` arrived): each role
/// loses its login, its connections are terminated, and it is dropped, exactly as a revocation
/// over the API, with one `lease_revoked` event each. Returns what it revoked.
pub async fn revoke_session(state: &AppState, sid: &str, reason: &str) -> Result<Vec<Lease>> {
    let mut all = vec![];
    loop {
        let batch = revoke_where(
            state,
            // Intents (`creating`) are left to their issuer mid-flight; the caller sweeps again
            // once they have settled (see `crate::signals`).
            "state = 'active' AND sid = $1",
            &[&sid],
            reason,
            ("lease_revoked", reason),
        )
        .await?;
        if batch.is_empty() {
            return Ok(all);
        }
        all.extend(batch);
    }
}

/// One pass of the reaper: expired leases, and anyone's intents abandoned for [`STALE_INTENT`].
pub async fn reap_once(state: &AppState) -> Result<usize> {
    let started = Instant::now();
    let filter = format!(
        "(state = 'active' AND expires_at <= now()) OR (state = 'creating' AND issued_at < now() - interval '{STALE_INTENT}')"
    );
    let reaped = revoke_where(
        state,
        &filter,
        &[],
        "expired",
        ("lease_expired", "lease expired"),
    )
    .await?;
    if !reaped.is_empty() {
        tracing::info!(
            count = reaped.len(),
            ms = started.elapsed().as_millis() as u64,
            "reaped expired leases"
        );
    }
    Ok(reaped.len())
}

/// Start-up clean-up: this instance's unfinished intents, then roles marked as ours that no live
/// lease names. Returns how many roles it removed.
pub async fn reconcile(state: &AppState) -> Result<usize> {
    let me: &(dyn ToSql + Sync) = &state.config.instance_id;
    let interrupted = revoke_where(
        state,
        "state = 'creating' AND instance_id = $1",
        &[me],
        "interrupted",
        (
            "lease_reconciled",
            "issuer stopped between creating the role and recording the lease",
        ),
    )
    .await?;
    let client = state.pool.get().await?;
    let orphans = client
        .query(
            "SELECT r.rolname::text FROM pg_roles r
             WHERE r.rolname LIKE 'v-%'
               AND shobj_description(r.oid, 'pg_authid') = $1::text || current_database()
               AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.pg_user = r.rolname AND l.state IN ('creating', 'active'))",
            &[&MARKER],
        )
        .await?;
    let mut removed = interrupted.len();
    for row in &orphans {
        let name: String = row.try_get(0)?;
        if !valid_pg_user(&name) {
            tracing::warn!(role = %name, "marked role with an unexpected name left alone");
            continue;
        }
        drop_role(&client, &name).await?;
        let mut e = state.event("role_reconciled", Outcome::Info);
        e.pg_user = Some(name);
        e.reason = Some("role had no live lease".into());
        state.record_denial(&e).await;
        removed += 1;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_generated_role_names_reach_sql() {
        assert!(valid_pg_user("v-banking-transfers-abcdefghij0123456789"));
        for bad in [
            "v-banking-transfers-abcdefghij012345678",
            "v-banking-transfers-ABCDEFGHIJ0123456789",
            "postgres",
            "v-x\"-abcdefghij0123456789",
            "v--abcdefghij0123456789",
        ] {
            assert!(!valid_pg_user(bad), "{bad}");
            assert!(quoted(bad).is_err());
        }
        assert_eq!(expiration(0), "1970-01-01 00:00:00+0000");
    }
}
