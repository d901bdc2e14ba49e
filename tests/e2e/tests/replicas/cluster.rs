//! Two idps, two issuers and two signals transmitters over one database, and the calls the tests make to a chosen
//! instance: sign-in split across both idps, the two hops, CIBA polls, Vault login and creds.

use std::path::PathBuf;

use base64::Engine as _;
use e2e::{DEMO_PASSWORD, Platform, REDIRECT, WEB_SECRET, workspace_root};
use kit::{exchange::AgentIdentity, jwt::SigningKey, rar::AuthorizationDetail};
use serde_json::{Value, json};
use sha2::Digest as _;
use stack::launch::{Options, Ports};

pub const BANKING: &str = "spiffe://demo.local/agent/banking";

/// The platform plus a second idp and a second verify-rar.
pub struct Cluster {
    pub p: Platform,
    /// `[first, replica]`; both answer for the one issuer `idps[0]`.
    pub idps: [String; 2],
    pub vrs: [String; 2],
    /// `[first, replica]` of the signals transmitter; both publish the first's URL.
    pub ssfs: [String; 2],
}

/// A user signed in across both idps.
pub struct Signed {
    pub access_token: String,
    pub device_token: String,
    pub sid: String,
}

impl Cluster {
    pub async fn start() -> Self {
        let mut p = Platform::start().await;
        let opts = Options {
            root: workspace_root(),
            data_dir: p.data_dir.clone(),
            database_url: Some(p.stack.urls.database.clone()),
            ports: Ports::ANY,
            bin_dir: bin_dir(),
            host: "127.0.0.1".into(),
            log_dir: Some(p.data_dir.join("logs")),
            concierge_llm: None,
            idp_bench_auto_approve: false,
        };
        let idp2 = p.stack.start_replica(&opts, "idp", &[]).await.unwrap();
        let vr2 = p
            .stack
            .start_replica(&opts, "verify-rar", &[])
            .await
            .unwrap();
        let ssf2 = p.stack.start_replica(&opts, "ssf", &[]).await.unwrap();
        let idps = [p.stack.urls.idp.clone(), idp2];
        let vrs = [p.stack.urls.verify_rar.clone(), vr2];
        let ssfs = [p.stack.urls.ssf.clone(), ssf2];
        let cluster = Self { p, idps, vrs, ssfs };
        // The replica says it is the same issuer, not itself.
        for idp in &cluster.idps {
            let meta = cluster
                .get_json(&format!("{idp}/.well-known/openid-configuration"))
                .await;
            assert_eq!(
                meta["issuer"],
                cluster.issuer(),
                "{idp} names the shared issuer"
            );
        }
        cluster
    }

    /// The one issuer URL both idps answer for.
    pub fn issuer(&self) -> &str {
        &self.idps[0]
    }

    pub async fn get_json(&self, url: &str) -> Value {
        self.p
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    fn agent(&self, name: &str) -> AgentIdentity {
        AgentIdentity {
            spiffe_id: kit::agent::spiffe_id(name),
            key: SigningKey::load_or_generate(&self.p.stack.keys_dir, name).unwrap(),
        }
    }

    /// A fresh actor token of `agent`, for the shared issuer.
    pub fn actor_token(&self, agent: &str) -> String {
        self.agent(agent).actor_token(self.issuer()).unwrap()
    }

    /// Signs `email` in with every step on alternating idps: the login page from one, the form
    /// posted to the other, the code redeemed at the first, the refresh at the second.
    pub async fn sign_in(&self, email: &str) -> Signed {
        let [a, b] = &self.idps;
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
            .p
            .http
            .get(format!("{a}/authorize"))
            .query(&q)
            .send()
            .await
            .unwrap();
        let cookie = page.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let html = page.text().await.unwrap();
        let csrf = html
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap()
            .to_owned();
        let mut form = q.to_vec();
        form.extend([
            ("email", email),
            ("password", DEMO_PASSWORD),
            ("csrf", csrf.as_str()),
        ]);
        let resp = self
            .p
            .http
            .post(format!("{b}/authorize"))
            .header("cookie", cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            303,
            "the login form posted to the other idp signs in"
        );
        let location = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
        let code = location
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned();
        let tokens = self
            .web_token(
                a,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", &verifier),
                ],
            )
            .await;
        let device = self
            .web_token(
                b,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
                    ("resource", self.issuer()),
                ],
            )
            .await;
        let access_token = tokens["access_token"].as_str().unwrap().to_owned();
        Signed {
            sid: e2e::claims(&access_token)["sid"]
                .as_str()
                .unwrap()
                .to_owned(),
            access_token,
            device_token: device["access_token"].as_str().unwrap().to_owned(),
        }
    }

    async fn web_token(&self, idp: &str, form: &[(&str, &str)]) -> Value {
        let resp = self
            .p
            .http
            .post(format!("{idp}/token"))
            .basic_auth("web", Some(WEB_SECRET))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "{idp}/token: {body}");
        body
    }

    /// One token exchange at `idp` with the actor token `actor`: `(status, body)`.
    pub async fn exchange_with(
        &self,
        idp: &str,
        actor: &str,
        subject: &str,
        audience: &str,
        details: &[AuthorizationDetail],
    ) -> (u16, Value) {
        let details = serde_json::to_string(details).unwrap();
        let resp = self
            .p
            .http
            .post(format!("{idp}/token"))
            .form(&[
                ("grant_type", kit::exchange::GRANT_TOKEN_EXCHANGE),
                ("subject_token", subject),
                ("subject_token_type", kit::exchange::TOKEN_TYPE_ACCESS),
                ("actor_token", actor),
                ("actor_token_type", kit::exchange::TOKEN_TYPE_JWT),
                ("audience", audience),
                ("authorization_details", &details),
            ])
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    /// One token exchange at `idp` by `agent`, with a fresh actor token: `(status, body)`.
    pub async fn exchange(
        &self,
        idp: &str,
        agent: &str,
        subject: &str,
        audience: &str,
        details: &[AuthorizationDetail],
    ) -> (u16, Value) {
        let actor = self.actor_token(agent);
        self.exchange_with(idp, &actor, subject, audience, details)
            .await
    }

    /// Hop 1 at `idp`: the concierge's T1 for the banking agent, carrying `business`.
    pub async fn t1(&self, idp: &str, user: &Signed, business: &AuthorizationDetail) -> String {
        let (status, body) = self
            .exchange(
                idp,
                "concierge",
                &user.access_token,
                BANKING,
                std::slice::from_ref(business),
            )
            .await;
        assert_eq!(status, 200, "hop 1 at {idp}: {body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Hop 2 at `idp`: banking trades T1 for a token to verify-rar carrying `business` and
    /// read access to `verify-rar/creds/<role>`. `(status, body)`: 400 `authorization_pending`
    /// when the user must approve.
    pub async fn t2(
        &self,
        idp: &str,
        t1: &str,
        business: &AuthorizationDetail,
        role: &str,
    ) -> (u16, Value) {
        let path = AuthorizationDetail::vault_read(&format!("verify-rar/creds/{role}"));
        self.exchange(idp, "banking", t1, "verify-rar", &[business.clone(), path])
            .await
    }

    /// One CIBA poll at `idp` by the banking agent (`private_key_jwt`).
    pub async fn poll(&self, idp: &str, auth_req_id: &str) -> (u16, Value) {
        let resp = self
            .p
            .http
            .post(format!("{idp}/token"))
            .form(&[
                ("grant_type", kit::exchange::GRANT_CIBA),
                ("auth_req_id", auth_req_id),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &self.actor_token("banking")),
            ])
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    /// A Vault API call to one issuer: `(status, body)`.
    pub async fn vault(
        &self,
        vr: &str,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .p
            .http
            .request(method.parse().unwrap(), format!("{vr}{path}"));
        if let Some(t) = token {
            req = req.header("X-Vault-Token", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap()
            },
        )
    }

    /// Vault login at one issuer; the Vault token.
    pub async fn login(&self, vr: &str, jwt: &str) -> String {
        let (status, body) = self
            .vault(
                vr,
                "POST",
                "/v1/auth/jwt/login",
                None,
                Some(json!({"jwt": jwt})),
            )
            .await;
        assert_eq!(status, 200, "login at {vr}: {body}");
        body["auth"]["client_token"].as_str().unwrap().to_owned()
    }

    /// Creds at one issuer: `(lease_id, username)`.
    pub async fn creds(&self, vr: &str, token: &str, role: &str) -> (String, String) {
        let (status, body) = self
            .vault(
                vr,
                "GET",
                &format!("/v1/verify-rar/creds/{role}"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(status, 200, "creds at {vr}: {body}");
        (
            body["lease_id"].as_str().unwrap().to_owned(),
            body["data"]["username"].as_str().unwrap().to_owned(),
        )
    }

    /// A tier-1 T2 (alice's balance, no approval) through `idp`, for the reader role.
    pub async fn reader_t2(&self, idp: &str, user: &Signed) -> String {
        let business = balance();
        let t1 = self.t1(idp, user, &business).await;
        let (status, body) = self.t2(idp, &t1, &business, "banking-reader").await;
        assert_eq!(status, 200, "hop 2 at {idp}: {body}");
        body["access_token"].as_str().unwrap().to_owned()
    }
}

/// Where the service binaries the platform runs are (as `e2e::Platform` finds them).
pub fn bin_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
        .join("debug")
}

pub fn detail(v: Value) -> AuthorizationDetail {
    serde_json::from_value::<AuthorizationDetail>(v)
        .unwrap()
        .validated()
        .unwrap()
}

pub fn balance() -> AuthorizationDetail {
    detail(json!({"type": "urn:smt:agent:banking", "operationDetails": {"action": "get_balance"}}))
}

pub fn transfer(value: &str) -> AuthorizationDetail {
    detail(
        json!({"type": "urn:smt:agent:banking", "operationDetails": {
        "action": "transfer_funds", "amount": {"value": value, "currency": "USD"},
        "source": "checking", "destination": "savings"}}),
    )
}
