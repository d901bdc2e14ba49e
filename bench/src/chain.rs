//! Row 3: the full transfer chain of S1, as the user drives it: one sentence to the concierge
//! over A2A (streaming), hop 1, the A2A call to banking, hop 2 (approval auto-granted in bench
//! mode), Vault login, creds, the three-statement transfer as the ephemeral role, revoke, the
//! answer. The breakdown comes from the security events every hop writes (`duration_ms`).

use std::{collections::BTreeMap, time::Instant};

use anyhow::{Context as _, bail};
use futures::StreamExt as _;
use kit::a2a::{Message, Part, Role, StreamResponse, TaskState, client::Client};
use serde_json::Value;

use crate::{
    load::Samples,
    platform::{Platform, User},
};

#[derive(Debug)]
pub struct Results {
    pub total: Samples,
    /// `(service, event type)` → that event's `duration_ms`, one per chain.
    pub hops: BTreeMap<(String, String), Samples>,
}

async fn once(p: &Platform, a2a: &Client, user: &User, sentence: &str) -> anyhow::Result<()> {
    let endpoint = format!("{}/a2a", p.stack.urls.concierge);
    let message = Message::new(Role::User, vec![Part::text(sentence)]);
    let mut stream = a2a
        .stream(&endpoint, &user.access_token, &message)
        .await
        .map_err(|e| anyhow::anyhow!("the concierge refused the message: {e}"))?;
    while let Some(ev) = stream.next().await {
        if let StreamResponse::StatusUpdate(u) = ev.map_err(|e| anyhow::anyhow!("{e}"))?
            && u.status.state.is_terminal()
        {
            if u.status.state != TaskState::Completed {
                bail!(
                    "the transfer ended {:?}: {:?}",
                    u.status.state,
                    u.status.message.as_ref().map(Message::text)
                );
            }
            return Ok(());
        }
    }
    bail!("the stream ended without a terminal state")
}

pub async fn run(p: &Platform, user: &User, scale: f64) -> anyhow::Result<Results> {
    let n = ((40.0 * scale) as usize).max(4);
    let a2a = Client::new(p.http.clone());
    let sentence = |i: usize| {
        if i.is_multiple_of(2) {
            "Transfer $1,000 from checking to savings."
        } else {
            "Transfer $1,000 from savings to checking."
        }
    };
    for i in 0..4 {
        once(p, &a2a, user, sentence(i)).await?;
    }
    let db = p.db().await?;
    let since: f64 = db
        .query_one("SELECT extract(epoch FROM clock_timestamp())::float8", &[])
        .await?
        .try_get(0)?;
    let mut total = vec![];
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        once(p, &a2a, user, sentence(i)).await?;
        total.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let mut total = Samples::from_ms(total);
    total.wall = start.elapsed();

    let mut hops: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for schema in ["idp", "concierge", "banking", "verify_rar"] {
        let rows = db
            .query(
                &format!(
                    "SELECT body FROM {schema}.events WHERE at >= to_timestamp($1) ORDER BY at"
                ),
                &[&since],
            )
            .await
            .with_context(|| format!("reading {schema}.events"))?;
        for r in rows {
            let body: Value = r.try_get(0)?;
            let (Some(service), Some(kind), Some(ms)) = (
                body["service"].as_str(),
                body["type"].as_str(),
                body["duration_ms"].as_f64(),
            ) else {
                continue;
            };
            // Hop 1 and hop 2 both write `token_exchange` at the idp: tell them apart.
            let kind = if service == "idp" && kind == "token_exchange" {
                let chain = body["actor_chain"].as_array().map_or(0, Vec::len);
                format!("token_exchange (hop {})", chain.saturating_sub(1))
            } else {
                kind.to_owned()
            };
            hops.entry((service.to_owned(), kind)).or_default().push(ms);
        }
    }
    Ok(Results {
        total,
        hops: hops
            .into_iter()
            .map(|(k, v)| (k, Samples::from_ms(v)))
            .collect(),
    })
}
