//! Rows 4 and 5: how fast a decision reaches a watcher, and how fast a revoked session is
//! refused everywhere.
//!
//! "Event to browser" is measured three ways: through the web UI itself (`crate::web`: an
//! exchange's row on a signed-in session's `/live` stream), and here on the two feeds the UI
//! relays: the idp's approvals SSE stream (what the phone renders: a CIBA request → `NOTIFY
//! idp_approvals` → the stream re-reads the list → an SSE event) and a bare `LISTEN
//! security_events` subscriber (what the UI's live event feed sits on). "Session revoked" is
//! measured per receiver as the time from sending the revocation to that receiver's first
//! refusal: the idp's exchange, verify-rar's login, graph's users API and an agent (the
//! concierge's A2A endpoint); each asks the idp on every call (introspection) and also takes
//! the CAEP `session-revoked` push, whichever comes first.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::StreamExt as _;
use kit::rar::AuthorizationDetail;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::{
    load::Samples,
    platform::{ALICE, Platform},
};

#[derive(Debug)]
pub struct Results {
    /// CIBA request sent → the approvals SSE event arrived.
    pub sse: Samples,
    /// The CIBA request's own response time (the decision the event reports).
    pub sse_request: Samples,
    /// Exchange sent → its `security_events` notification arrived at a `LISTEN`er.
    pub listen: Samples,
    /// Revocation sent → first refusal, per receiver.
    pub revoked: Vec<(String, Samples)>,
    /// Revocation sent → every receiver refused.
    pub revoked_all: Samples,
    /// The revocation request's own response time.
    pub revoke_request: Samples,
    /// The exchange's own response time in the `LISTEN` runs.
    pub listen_request: Samples,
}

fn since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// An SSE stream being read: its reader task (abort it to close the stream) and its events'
/// data, stamped on arrival.
pub type Stream = (
    tokio::task::JoinHandle<()>,
    mpsc::UnboundedReceiver<(Instant, String)>,
);

/// Sends `request` (an SSE subscription) and forwards the data of each event named `event`
/// (every event when `None`), parsed by `kit::sse` as the platform's own clients do.
pub async fn open_stream(
    request: reqwest::RequestBuilder,
    event: Option<&'static str>,
) -> anyhow::Result<Stream> {
    let resp = request
        .header("accept", "text/event-stream")
        .timeout(Duration::from_secs(3600))
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("the stream answered {}", resp.status());
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let mut body = resp.bytes_stream();
    let reader = tokio::spawn(async move {
        let mut buf = vec![];
        while let Some(Ok(chunk)) = body.next().await {
            buf.extend_from_slice(&chunk);
            let now = Instant::now();
            for ev in kit::sse::take_events(&mut buf) {
                let wanted = event.is_none_or(|name| ev.event.as_deref() == Some(name));
                if wanted && tx.send((now, ev.data)).is_err() {
                    return;
                }
            }
        }
    });
    Ok((reader, rx))
}

async fn approvals_stream(p: &Platform, device_token: &str) -> anyhow::Result<Stream> {
    let request = p
        .http
        .get(format!("{}/api/approvals/stream", p.idp()))
        .bearer_auth(device_token);
    open_stream(request, None)
        .await
        .context("the idp's approvals stream")
}

async fn sse(p: &Platform, n: usize) -> anyhow::Result<(Samples, Samples)> {
    let user = p.sign_in(ALICE).await?;
    let (reader, mut rx) = approvals_stream(p, &user.device_token).await?;
    // The stream opens with the current list.
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await?
        .context("the first approvals event")?;
    let (mut out, mut req) = (vec![], vec![]);
    for _ in 0..n {
        let t = Instant::now();
        let r = p
            .http
            .post(format!("{}/bc-authorize", p.idp()))
            .basic_auth("ciba-demo", Some("ciba-demo-dev-secret"))
            .form(&[("scope", "openid"), ("login_hint", ALICE)])
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("bc-authorize answered {}: {}", r.status(), r.text().await?);
        }
        req.push(since(t));
        let (arrived, _) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await?
            .context("an approvals event")?;
        out.push(arrived.duration_since(t).as_secs_f64() * 1000.0);
        // Drain a duplicate wake-up, if any, before the next request.
        tokio::time::sleep(Duration::from_millis(20)).await;
        while rx.try_recv().is_ok() {}
    }
    // An open stream would hold the idp's graceful shutdown.
    reader.abort();
    Ok((Samples::from_ms(out), Samples::from_ms(req)))
}

async fn listen(p: &Platform, n: usize) -> anyhow::Result<(Samples, Samples)> {
    let (client, mut conn) =
        tokio_postgres::connect(&p.stack.urls.database, tokio_postgres::NoTls).await?;
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, String)>();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(Ok(m)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = m
                && tx.send((Instant::now(), n.payload().to_owned())).is_err()
            {
                return;
            }
        }
    });
    client.batch_execute("LISTEN security_events").await?;
    let user = p.sign_in(ALICE).await?;
    let details = [crate::platform::transfer("checking", "savings", "1000.00")];
    let (mut out, mut req) = (vec![], vec![]);
    for _ in 0..n {
        let body = p.exchange_body(
            &p.concierge,
            &user.access_token,
            &p.banking.spiffe_id,
            &details,
        )?;
        while rx.try_recv().is_ok() {}
        let t = Instant::now();
        let token = p
            .post_token(body)
            .await?
            .map_err(|e| anyhow::anyhow!("exchange refused: {e}"))?;
        req.push(since(t));
        let jti = crate::platform::claims(&token)?["jti"]
            .as_str()
            .context("jti")?
            .to_owned();
        loop {
            let (arrived, payload) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await?
                .context("a notification")?;
            let v: Value = serde_json::from_str(&payload)?;
            if v["jti"] == jti.as_str() && v["type"] == "token_exchange" {
                out.push(arrived.duration_since(t).as_secs_f64() * 1000.0);
                break;
            }
        }
    }
    Ok((Samples::from_ms(out), Samples::from_ms(req)))
}

/// One receiver of a revoked session: a call that succeeds before and is refused after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Receiver {
    IdpExchange,
    VerifyRar,
    Graph,
    Agent,
}

impl Receiver {
    const ALL: [Receiver; 4] = [Self::IdpExchange, Self::VerifyRar, Self::Graph, Self::Agent];

    fn name(self) -> &'static str {
        match self {
            Self::IdpExchange => "idp (token exchange)",
            Self::VerifyRar => "verify-rar (Vault login)",
            Self::Graph => "graph (users API)",
            Self::Agent => "concierge (A2A)",
        }
    }
}

struct Tokens {
    user_access: String,
    t2_vault: String,
    t2_graph: String,
}

/// `Ok(true)` when the receiver accepted the call, `Ok(false)` when it refused it.
async fn call(p: &Platform, r: Receiver, t: &Tokens) -> anyhow::Result<bool> {
    Ok(match r {
        Receiver::IdpExchange => {
            let body = p.exchange_body(
                &p.concierge,
                &t.user_access,
                &p.banking.spiffe_id,
                &[crate::platform::transfer("checking", "savings", "1.00")],
            )?;
            p.post_token(body).await?.is_ok()
        }
        Receiver::VerifyRar => p
            .http
            .post(format!("{}/v1/auth/jwt/login", p.stack.urls.verify_rar))
            .json(&json!({"jwt": t.t2_vault}))
            .send()
            .await?
            .status()
            .is_success(),
        Receiver::Graph => p
            .http
            .get(format!("{}/v1.0/users", p.stack.urls.graph))
            .bearer_auth(&t.t2_graph)
            .send()
            .await?
            .status()
            .is_success(),
        Receiver::Agent => {
            // A task that does not exist: the guard passes (HTTP 200, a JSON-RPC error about the
            // task) or refuses (HTTP 401).
            let r = p
                .http
                .post(format!("{}/a2a", p.stack.urls.concierge))
                .bearer_auth(&t.user_access)
                .header("A2A-Version", "1.0")
                .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "no-such-task"}}))
                .send()
                .await?;
            r.status() != 401
        }
    })
}

async fn revocation(p: &Platform) -> anyhow::Result<(Vec<(Receiver, f64)>, f64)> {
    let user = p.sign_in(ALICE).await?;
    let t2_vault = p
        .transfer_token(&user, "checking", "savings", "1.00")
        .await?;
    let list = AuthorizationDetail::operation(kit::rar::ENTRA, "graph_user_list", []);
    let t1 = p
        .hop(
            &p.concierge,
            &user.access_token,
            &p.entra.spiffe_id,
            std::slice::from_ref(&list),
        )
        .await?;
    let t2_graph = p.hop(&p.entra, &t1, "graph", &[list]).await?;
    let tokens = Tokens {
        user_access: user.access_token.clone(),
        t2_vault,
        t2_graph,
    };
    for r in Receiver::ALL {
        if !call(p, r, &tokens).await? {
            bail!("{} refused a live session's call", r.name());
        }
    }
    let t0 = Instant::now();
    let resp = p
        .http
        .post(format!("{}/api/sessions/{}/revoke", p.idp(), user.sid))
        .bearer_auth(&user.device_token)
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("revoking the session answered {}", resp.status());
    }
    let revoke_ms = since(t0);
    let tokens = &tokens;
    let probes = Receiver::ALL.map(|r| async move {
        for _ in 0..500 {
            if !call(p, r, tokens).await? {
                return Ok::<_, anyhow::Error>((r, since(t0)));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        bail!("{} still accepts a revoked session's calls", r.name())
    });
    Ok((futures::future::try_join_all(probes).await?, revoke_ms))
}

pub async fn run(p: &Platform, scale: f64) -> anyhow::Result<Results> {
    let (sse, sse_request) = sse(p, ((30.0 * scale) as usize).max(5)).await?;
    let (listen, listen_request) = listen(p, ((100.0 * scale) as usize).max(5)).await?;
    let mut revoke_request = vec![];
    // Issue 5 asks for the median and the worst of 100 revocations.
    let rounds = ((100.0 * scale) as usize).max(3);
    let mut per: Vec<Vec<f64>> = vec![vec![]; Receiver::ALL.len()];
    let mut all = vec![];
    for _ in 0..rounds {
        let (got, revoke_ms) = revocation(p).await?;
        revoke_request.push(revoke_ms);
        let mut worst: f64 = 0.0;
        for (r, ms) in got {
            let i = Receiver::ALL.iter().position(|x| *x == r).unwrap_or(0);
            per[i].push(ms);
            worst = worst.max(ms);
        }
        all.push(worst);
    }
    Ok(Results {
        revoked: Receiver::ALL
            .iter()
            .zip(per)
            .map(|(r, v)| (r.name().to_owned(), Samples::from_ms(v)))
            .collect(),
        revoked_all: Samples::from_ms(all),
        revoke_request: Samples::from_ms(revoke_request),
        sse,
        sse_request,
        listen,
        listen_request,
    })
}
