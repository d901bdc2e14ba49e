//! Live streams see every instance: the idp's approvals SSE stream on each instance,
//! `LISTEN security_events` for every service's decisions, and the web UI's live stream.

use std::time::Duration;

use futures::{StreamExt as _, TryStreamExt as _};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::cluster::{Cluster, transfer};

/// The approval ids of each `approvals` event of `idp`'s stream for the holder of `device_token`.
async fn approvals_stream(
    c: &Cluster,
    idp: &str,
    device_token: &str,
) -> mpsc::UnboundedReceiver<Vec<String>> {
    let resp =
        c.p.http
            .get(format!("{idp}/api/approvals/stream"))
            .bearer_auth(device_token)
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), 200);
    let (tx, rx) = mpsc::unbounded_channel();
    let mut bytes = resp.bytes_stream().map_err(std::io::Error::other);
    tokio::spawn(async move {
        let mut buf = String::new();
        while let Some(Ok(chunk)) = bytes.next().await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let frame: String = buf.drain(..end + 2).collect();
                let data: String = frame
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if let Ok(Value::Array(list)) = serde_json::from_str::<Value>(&data) {
                    let ids = list
                        .iter()
                        .filter_map(|a| a["id"].as_str().map(str::to_owned))
                        .collect();
                    if tx.send(ids).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// Waits until a frame lists `id`.
async fn until_listed(rx: &mut mpsc::UnboundedReceiver<Vec<String>>, id: &str, where_: &str) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(ids) = rx.recv().await {
            if ids.iter().any(|i| i == id) {
                return;
            }
        }
        panic!("the stream of {where_} ended");
    })
    .await
    .unwrap_or_else(|_| panic!("{where_}'s stream never listed {id}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_instance_reaches_a_subscriber() {
    let c = Cluster::start().await;
    let [a, b] = &c.idps;
    let alice = c.sign_in("alice@example.com").await;

    // One LISTEN on the database hears every service's decisions.
    let (db, mut conn) = tokio_postgres::connect(&c.p.stack.urls.database, tokio_postgres::NoTls)
        .await
        .unwrap();
    let (tx, mut heard) = mpsc::unbounded_channel::<Value>();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(Ok(m)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = m
                && let Ok(v) = serde_json::from_str(n.payload())
                && tx.send(v).is_err()
            {
                return;
            }
        }
    });
    db.batch_execute("LISTEN security_events").await.unwrap();

    // The web UI's live stream, as a browser holds it open.
    let web =
        c.p.web_sign_in(&c.p.stack.urls.web, "alice@example.com")
            .await;
    let mut ui = web.live().await;

    // A phone on each instance.
    let mut on_a = approvals_stream(&c, a, &alice.device_token).await;
    let mut on_b = approvals_stream(&c, b, &alice.device_token).await;

    // An approval created on each instance shows on both streams.
    let mut jtis = vec![];
    for (made_on, name) in [(a, "A"), (b, "B")] {
        let business = transfer("10.00");
        let t1 = c.t1(made_on, &alice, &business).await;
        jtis.push((e2e::claims(&t1)["jti"].as_str().unwrap().to_owned(), name));
        let (status, pending) = c.t2(made_on, &t1, &business, "banking-transfers").await;
        assert_eq!(status, 400, "{pending}");
        let id = pending["approval_id"].as_str().unwrap();
        until_listed(&mut on_a, id, "A").await;
        until_listed(&mut on_b, id, "B").await;
    }

    // Each issuer's decision too: a login at each.
    let mut logins = vec![];
    for (i, vr) in c.vrs.iter().enumerate() {
        let t2 = c.reader_t2(&c.idps[i], &alice).await;
        c.login(vr, &t2).await;
        logins.push(e2e::claims(&t2)["jti"].as_str().unwrap().to_owned());
    }

    // The listener heard hop 1 of each idp (by the T1 `jti` each minted) and a login at each
    // issuer (by the T2 `jti`).
    let mut seen = vec![];
    let wanted = |seen: &[Value]| {
        jtis.iter().all(|(jti, _)| {
            seen.iter()
                .any(|e| e["service"] == "idp" && e["jti"] == jti.as_str())
        }) && logins.iter().all(|jti| {
            seen.iter().any(|e| {
                e["service"] == "verify-rar" && e["type"] == "login" && e["jti"] == jti.as_str()
            })
        })
    };
    // The UI streams each of them to the page (its rows link the jti).
    for jti in jtis.iter().map(|(j, _)| j).chain(logins.iter()) {
        ui.wait("security", &format!("/inspect/{jti}")).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !wanted(&seen) {
        match tokio::time::timeout_at(deadline, heard.recv()).await {
            Ok(Some(e)) => seen.push(e),
            _ => panic!(
                "LISTEN security_events missed an instance: wanted idp {jtis:?} and logins {logins:?}; heard {seen:#?}"
            ),
        }
    }
}
