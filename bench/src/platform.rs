//! The platform under test: started with the same launcher as `just up` (every service its own
//! release-built process, on free ports, with its own embedded Postgres in a temp directory),
//! plus what a load driver needs to act as the user and as each agent.
//!
//! The bench holds the agents' dev keys (the stack wrote them into its data directory), so it
//! can sign actor tokens and perform hops exactly as the agents do, without their A2A layer.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use kit::{exchange::AgentIdentity, jwt::SigningKey, rar::AuthorizationDetail};
use serde_json::Value;
use sha2::Digest as _;
use stack::launch::{Options, Ports, Stack};

pub const REDIRECT: &str = "http://127.0.0.1:8080/auth/callback";
pub const WEB_SECRET: &str = "web-dev-secret-change-me";
pub const DEMO_PASSWORD: &str = "demo-password";
pub const ALICE: &str = "alice@example.com";
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

/// A running platform and the identities the driver uses.
pub struct Platform {
    pub stack: Stack,
    pub http: reqwest::Client,
    pub data_dir: PathBuf,
    pub concierge: AgentIdentity,
    pub banking: AgentIdentity,
    pub entra: AgentIdentity,
}

/// A signed-in user, as the web app holds them.
#[derive(Debug, Clone)]
pub struct User {
    /// For the concierge (names it in `may_act`).
    pub access_token: String,
    /// The user's own token for the idp's APIs: what the phone holds.
    pub device_token: String,
    pub sid: String,
}

impl Platform {
    /// Starts the stack from `bin_dir` (release binaries) with the idp in benchmark mode.
    pub async fn start(root: PathBuf, bin_dir: PathBuf) -> anyhow::Result<Self> {
        let data_dir = std::env::temp_dir().join(format!("platform-bench-{}", kit::random_id(6)));
        let stack = Stack::start(Options {
            root,
            data_dir: data_dir.clone(),
            database_url: None,
            ports: Ports::ANY,
            bin_dir,
            host: "127.0.0.1".into(),
            log_dir: Some(data_dir.join("logs")),
            concierge_llm: None,
            idp_bench_auto_approve: true,
        })
        .await
        .with_context(|| format!("starting the stack (logs in {})", data_dir.display()))?;
        let agent = |name: &str| -> anyhow::Result<AgentIdentity> {
            Ok(AgentIdentity {
                spiffe_id: kit::agent::spiffe_id(name),
                key: SigningKey::load_or_generate(&stack.keys_dir, name)?,
            })
        };
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(256)
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self {
            concierge: agent("concierge")?,
            banking: agent("banking")?,
            entra: agent("entra")?,
            stack,
            http,
            data_dir,
        })
    }

    pub fn idp(&self) -> &str {
        &self.stack.urls.idp
    }

    /// Signs in through the idp's real login form (code + PKCE), as the web app does, and gets
    /// the phone's token by refresh with `resource=<issuer>`.
    pub async fn sign_in(&self, email: &str) -> anyhow::Result<User> {
        let verifier = format!("{}{}", kit::random_id(24), kit::random_id(24));
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()));
        let q = [
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid email offline_access"),
            ("state", "s"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        let page = self
            .http
            .get(format!("{}/authorize", self.idp()))
            .query(&q)
            .send()
            .await?;
        let cookie = page
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .context("the login form sets a cookie")?
            .to_owned();
        let html = page.text().await?;
        let csrf = html
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .context("the login form has a csrf field")?
            .to_owned();
        let mut form = q.to_vec();
        form.extend([
            ("email", email),
            ("password", DEMO_PASSWORD),
            ("csrf", csrf.as_str()),
        ]);
        let resp = self
            .http
            .post(format!("{}/authorize", self.idp()))
            .header("cookie", cookie)
            .form(&form)
            .send()
            .await?;
        if resp.status() != 303 {
            bail!("sign-in of {email} answered {}", resp.status());
        }
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .context("sign-in redirects")?;
        let code = url::Url::parse(location)?
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .context("the redirect carries a code")?;
        let tokens: Value = self
            .http
            .post(format!("{}/token", self.idp()))
            .basic_auth("web", Some(WEB_SECRET))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier.as_str()),
            ])
            .send()
            .await?
            .json()
            .await?;
        let refresh = tokens["refresh_token"].as_str().context("refresh token")?;
        let device: Value = self
            .http
            .post(format!("{}/token", self.idp()))
            .basic_auth("web", Some(WEB_SECRET))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("resource", self.idp()),
            ])
            .send()
            .await?
            .json()
            .await?;
        let access_token = tokens["access_token"]
            .as_str()
            .context("access token")?
            .to_owned();
        let sid = claims(&access_token)?["sid"]
            .as_str()
            .context("sid")?
            .to_owned();
        Ok(User {
            access_token,
            device_token: device["access_token"]
                .as_str()
                .context("device token")?
                .to_owned(),
            sid,
        })
    }

    /// The form body of one RFC 8693 exchange, with a fresh actor token of `actor`.
    pub fn exchange_body(
        &self,
        actor: &AgentIdentity,
        subject_token: &str,
        audience: &str,
        details: &[AuthorizationDetail],
    ) -> anyhow::Result<String> {
        let actor_token = actor.actor_token(self.idp())?;
        let details = serde_json::to_string(details)?;
        Ok(serde_urlencoded::to_string([
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", subject_token),
            ("subject_token_type", ACCESS_TOKEN),
            ("actor_token", &actor_token),
            ("actor_token_type", JWT),
            ("audience", audience),
            ("authorization_details", &details),
        ])?)
    }

    /// POSTs a prepared exchange body; `Ok(Err(body))` is a refusal.
    pub async fn post_token(&self, body: String) -> anyhow::Result<Result<String, Value>> {
        let resp = self
            .http
            .post(format!("{}/token", self.idp()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await?;
        let ok = resp.status().is_success();
        let v: Value = resp.json().await?;
        Ok(if ok {
            Ok(v["access_token"]
                .as_str()
                .context("access_token")?
                .to_owned())
        } else {
            Err(v)
        })
    }

    /// One hop as `actor`; fails on a refusal.
    pub async fn hop(
        &self,
        actor: &AgentIdentity,
        subject_token: &str,
        audience: &str,
        details: &[AuthorizationDetail],
    ) -> anyhow::Result<String> {
        let body = self.exchange_body(actor, subject_token, audience, details)?;
        match self.post_token(body).await? {
            Ok(t) => Ok(t),
            Err(e) => bail!("exchange for {audience} refused: {e}"),
        }
    }

    /// T2 for one transfer: concierge → banking (T1), banking → verify-rar (T2), as the agents
    /// do it. Tier 3 (> $500) or the session's first tier 2 is auto-approved in bench mode.
    pub async fn transfer_token(
        &self,
        user: &User,
        source: &str,
        destination: &str,
        value: &str,
    ) -> anyhow::Result<String> {
        let transfer = transfer(source, destination, value);
        let t1 = self
            .hop(
                &self.concierge,
                &user.access_token,
                &self.banking.spiffe_id,
                std::slice::from_ref(&transfer),
            )
            .await?;
        self.hop(
            &self.banking,
            &t1,
            "verify-rar",
            &[
                transfer,
                AuthorizationDetail::vault_read("verify-rar/creds/banking-transfers"),
            ],
        )
        .await
    }

    /// A superuser connection to the platform's database.
    pub async fn db(&self) -> anyhow::Result<tokio_postgres::Client> {
        connect(&self.stack.urls.database).await
    }

    /// Stops every service and Postgres; removes the database files, keeps the logs.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.stack.stop().await?;
        let _ = std::fs::remove_dir_all(self.data_dir.join("pg"));
        Ok(())
    }
}

/// A `transfer_funds` entry for alice.
pub fn transfer(source: &str, destination: &str, value: &str) -> AuthorizationDetail {
    AuthorizationDetail::operation(
        kit::rar::BANKING,
        "transfer_funds",
        [
            (
                "amount",
                serde_json::json!({"value": value, "currency": "USD"}),
            ),
            ("source", Value::String(source.into())),
            ("destination", Value::String(destination.into())),
        ],
    )
}

pub async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

/// The claims of a JWT, unverified (reading what the driver was handed).
pub fn claims(token: &str) -> anyhow::Result<Value> {
    Ok(kit::jwt::decode_unverified(token)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .1)
}
