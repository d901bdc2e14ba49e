//! Row 4, through the UI: a security event's trip to a signed-in browser. The driver signs in
//! to the web UI through its real OIDC flow (the UI's `/auth/login` → the idp's login form →
//! the UI's callback, as a browser does), holds the page's one `GET /live` SSE stream, performs
//! a token exchange (hop 1 of S1) and times until the stream delivers that exchange's `security`
//! row (the rendered HTML names the token's `jti`). What it crosses: the idp's `NOTIFY`, the
//! UI's one `LISTEN security_events`, its broadcast to every open page, the row's template and
//! the SSE frame. The browser's own hop (htmx swapping the row in) is not on the wire.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::{
    load::Samples,
    platform::{self, ALICE, DEMO_PASSWORD, Platform},
    signals::{Stream, open_stream},
};

#[derive(Debug)]
pub struct Results {
    /// Exchange sent → its `security` row arrived on the UI's `/live` stream.
    pub live: Samples,
    /// The exchange's own response time in the same runs.
    pub request: Samples,
}

/// A browser's session at the UI: its cookie, and a client that does not follow redirects.
struct Browser {
    http: reqwest::Client,
    cookie: String,
}

/// The `name=value` of the cookie `name` a response sets, if it sets one.
fn cookie_of(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

fn location(r: &reqwest::Response) -> anyhow::Result<String> {
    Ok(r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .context("a redirect without a location")?
        .to_owned())
}

/// Signs in at the UI as a browser does: the UI's login sends us to the idp with PKCE and a
/// state, the idp's form takes the password, the UI's callback redeems the code.
async fn sign_in(web: &str, idp: &str, email: &str) -> anyhow::Result<Browser> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?;
    let r = http.get(format!("{web}/auth/login")).send().await?;
    if r.status() != 303 {
        bail!("the UI's login answered {}", r.status());
    }
    let web_cookie = cookie_of(&r, "web_session").context("the UI's session cookie")?;
    let authorize = location(&r)?;
    let page = http.get(&authorize).send().await?;
    let idp_cookie = page
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("the idp's login form sets a cookie")?
        .to_owned();
    let html = page.text().await?;
    let mut form: Vec<(String, String)> = html
        .split("<input type=\"hidden\" name=\"")
        .skip(1)
        .filter_map(|rest| {
            let (name, rest) = rest.split_once("\" value=\"")?;
            let value = rest.split('"').next()?;
            Some((
                name.to_owned(),
                value.replace("&amp;", "&").replace("&#x2F;", "/"),
            ))
        })
        .collect();
    form.push(("email".into(), email.into()));
    form.push(("password".into(), DEMO_PASSWORD.into()));
    let r = http
        .post(format!("{idp}/authorize"))
        .header("cookie", idp_cookie)
        .form(&form)
        .send()
        .await?;
    if r.status() != 303 {
        bail!("the idp's login form answered {}", r.status());
    }
    let callback = location(&r)?;
    let r = http
        .get(&callback)
        .header("cookie", &web_cookie)
        .send()
        .await?;
    if r.status() != 303 {
        bail!("the UI's callback answered {}", r.status());
    }
    let cookie = cookie_of(&r, "web_session").unwrap_or(web_cookie);
    Ok(Browser { http, cookie })
}

/// Opens the page's `/live` stream; `security` events' data, stamped on arrival.
async fn live_stream(b: &Browser, web: &str) -> anyhow::Result<Stream> {
    let request = b
        .http
        .get(format!("{web}/live"))
        .header("cookie", &b.cookie);
    open_stream(request, Some("security"))
        .await
        .context("the UI's /live stream")
}

pub async fn run(p: &Platform, n: usize) -> anyhow::Result<Results> {
    let web = p.stack.urls.web.clone();
    let browser = sign_in(&web, p.idp(), ALICE).await?;
    let (reader, mut rx) = live_stream(&browser, &web).await?;
    let user = p.sign_in(ALICE).await?;
    let details = [platform::transfer("checking", "savings", "1000.00")];
    // The stream is subscribed once its first event arrives: wait for a warm-up exchange's row.
    let warm_up = async {
        for _ in 0..50 {
            p.hop(
                &p.concierge,
                &user.access_token,
                &p.banking.spiffe_id,
                &details,
            )
            .await?;
            if tokio::time::timeout(Duration::from_millis(500), rx.recv())
                .await
                .is_ok()
            {
                return Ok(());
            }
        }
        bail!("the UI's /live stream delivered no security event")
    };
    warm_up.await?;
    let (mut out, mut req) = (vec![], vec![]);
    for _ in 0..n {
        let body = p.exchange_body(
            &p.concierge,
            &user.access_token,
            &p.banking.spiffe_id,
            &details,
        )?;
        tokio::time::sleep(Duration::from_millis(5)).await;
        while rx.try_recv().is_ok() {}
        let t = Instant::now();
        let token = p
            .post_token(body)
            .await?
            .map_err(|e| anyhow::anyhow!("exchange refused: {e}"))?;
        req.push(t.elapsed().as_secs_f64() * 1000.0);
        let jti = platform::claims(&token)?["jti"]
            .as_str()
            .context("jti")?
            .to_owned();
        let needle = format!("jti {jti}");
        loop {
            let (arrived, html) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .context("the exchange's row did not reach /live within 5 s")?
                .context("the /live stream ended")?;
            if html.contains(&needle) {
                out.push(arrived.duration_since(t).as_secs_f64() * 1000.0);
                break;
            }
        }
    }
    reader.abort();
    Ok(Results {
        live: Samples::from_ms(out),
        request: Samples::from_ms(req),
    })
}
