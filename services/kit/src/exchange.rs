//! The agent side of a delegation hop: an agent's identity (its SPIFFE id and key), the actor
//! tokens and client assertions it signs, and the RFC 8693 exchange with CIBA-style step-up:
//! when the idp answers `authorization_pending`, poll until the user decides.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::{
    claims::{ActorClaims, Audience, TYP_ACTOR},
    jwt::SigningKey,
    rar::AuthorizationDetail,
};

pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const GRANT_CIBA: &str = "urn:openid:params:grant-type:ciba";
pub const TOKEN_TYPE_ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Who an agent is: its workload identity and the key that proves it.
#[derive(Debug, Clone)]
pub struct AgentIdentity {
    pub spiffe_id: String,
    pub key: SigningKey,
}

impl AgentIdentity {
    /// A fresh actor token (JWT-SVID shape): `sub` = our SPIFFE id, `aud` = the idp, one minute,
    /// a unique `jti`. Single use: make one per request.
    pub fn actor_token(&self, idp_issuer: &str) -> anyhow::Result<String> {
        let now = crate::now_secs();
        self.key.sign(
            TYP_ACTOR,
            &ActorClaims {
                iss: Some(self.spiffe_id.clone()),
                sub: self.spiffe_id.clone(),
                aud: Audience::one(idp_issuer),
                iat: now,
                exp: now + 60,
                jti: crate::random_id(16),
            },
        )
    }
}

/// A successful hop.
#[derive(Debug, Clone, Deserialize)]
pub struct Exchanged {
    pub access_token: String,
    pub issued_token_type: Option<String>,
    pub token_type: String,
    pub expires_in: Option<i64>,
    #[serde(default)]
    pub authorization_details: Option<Vec<AuthorizationDetail>>,
}

/// The user's approval is awaited.
#[derive(Debug, Clone, Deserialize)]
pub struct Pending {
    pub auth_req_id: String,
    #[serde(default)]
    pub approval_id: Option<String>,
    #[serde(default)]
    pub binding_code: Option<String>,
    #[serde(default = "default_interval")]
    pub interval: u64,
    #[serde(default)]
    pub expires_in: u64,
    #[serde(default)]
    pub error_description: Option<String>,
}

fn default_interval() -> u64 {
    5
}

#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The idp refused: `error` is the OAuth code (`access_denied` carries the policy's reason).
    #[error("{error}: {description}")]
    Refused { error: String, description: String },
    /// Step-up: approval pending. Poll with [`ExchangeClient::poll`].
    #[error("waiting for approval")]
    Pending(Pending),
    #[error("the identity provider could not be reached: {0}")]
    Transport(String),
}

/// Talks to the idp's token endpoint as one agent.
#[derive(Debug, Clone)]
pub struct ExchangeClient {
    pub http: reqwest::Client,
    pub issuer: String,
    pub identity: AgentIdentity,
}

impl ExchangeClient {
    pub fn new(http: reqwest::Client, issuer: impl Into<String>, identity: AgentIdentity) -> Self {
        Self {
            http,
            issuer: issuer.into(),
            identity,
        }
    }

    fn token_endpoint(&self) -> String {
        format!("{}/token", self.issuer)
    }

    /// One hop: `subject_token` (what we hold) + our actor token → a token for `audience`
    /// carrying exactly `details`.
    pub async fn exchange(
        &self,
        subject_token: &str,
        audience: &str,
        details: &[AuthorizationDetail],
    ) -> Result<Exchanged, ExchangeError> {
        let actor = self
            .identity
            .actor_token(&self.issuer)
            .map_err(|e| ExchangeError::Transport(e.to_string()))?;
        self.exchange_with_actor(subject_token, &actor, audience, details)
            .await
    }

    /// [`ExchangeClient::exchange`] with an actor token the caller made. Honest agents never
    /// need it (a fresh actor token per hop); the attack toggles replay or forge one with it.
    pub async fn exchange_with_actor(
        &self,
        subject_token: &str,
        actor_token: &str,
        audience: &str,
        details: &[AuthorizationDetail],
    ) -> Result<Exchanged, ExchangeError> {
        let details =
            serde_json::to_string(details).map_err(|e| ExchangeError::Transport(e.to_string()))?;
        self.post(&[
            ("grant_type", GRANT_TOKEN_EXCHANGE),
            ("subject_token", subject_token),
            ("subject_token_type", TOKEN_TYPE_ACCESS),
            ("actor_token", actor_token),
            ("actor_token_type", TOKEN_TYPE_JWT),
            ("audience", audience),
            ("authorization_details", &details),
        ])
        .await
    }

    /// One CIBA poll, authenticated with a fresh client assertion (`private_key_jwt`).
    pub async fn poll(&self, auth_req_id: &str) -> Result<Exchanged, ExchangeError> {
        let assertion = self
            .identity
            .actor_token(&self.issuer)
            .map_err(|e| ExchangeError::Transport(e.to_string()))?;
        self.post(&[
            ("grant_type", GRANT_CIBA),
            ("auth_req_id", auth_req_id),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &assertion),
        ])
        .await
    }

    /// Polls until the approval resolves. An idp that cannot be reached or answers
    /// `server_error` / `temporarily_unavailable` (restarting, its database restarting) is asked
    /// again at the next interval until the approval's deadline: the approval is in the idp's
    /// store and a restarted idp answers for it. The token is minted once, whichever poll
    /// collects it.
    pub async fn wait(&self, pending: Pending) -> Result<Exchanged, ExchangeError> {
        let mut interval = pending.interval.max(1);
        let deadline =
            tokio::time::Instant::now() + Duration::from_secs(pending.expires_in.max(1) + 5);
        loop {
            tokio::time::sleep(Duration::from_secs(interval)).await;
            let before_deadline = tokio::time::Instant::now() < deadline;
            match self.poll(&pending.auth_req_id).await {
                Err(ExchangeError::Pending(_)) if before_deadline => {}
                Err(ExchangeError::Refused { error, .. }) if error == "slow_down" => interval += 5,
                Err(ExchangeError::Transport(e)) if before_deadline => {
                    tracing::warn!(error = %e, "approval poll failed; asking again");
                }
                Err(ExchangeError::Refused { error, .. })
                    if before_deadline
                        && matches!(error.as_str(), "server_error" | "temporarily_unavailable") =>
                {
                    tracing::warn!(%error, "approval poll failed; asking again");
                }
                other => return other,
            }
        }
    }

    async fn post(&self, form: &[(&str, &str)]) -> Result<Exchanged, ExchangeError> {
        let resp = self
            .http
            .post(self.token_endpoint())
            .form(form)
            .send()
            .await
            .map_err(|e| ExchangeError::Transport(e.to_string()))?;
        let status = resp.status();
        let body: Value = resp
            .json()
            .await
            .map_err(|e| ExchangeError::Transport(e.to_string()))?;
        if status.is_success() {
            return serde_json::from_value(body)
                .map_err(|e| ExchangeError::Transport(e.to_string()));
        }
        let error = body
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("server_error")
            .to_owned();
        if error == "authorization_pending"
            && body.get("auth_req_id").is_some()
            && let Ok(p) = serde_json::from_value(body.clone())
        {
            return Err(ExchangeError::Pending(p));
        }
        if error == "authorization_pending" {
            return Err(ExchangeError::Pending(Pending {
                auth_req_id: String::new(),
                approval_id: None,
                binding_code: None,
                interval: body.get("interval").and_then(Value::as_u64).unwrap_or(5),
                expires_in: 0,
                error_description: None,
            }));
        }
        let description = body
            .get("error_description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        Err(ExchangeError::Refused { error, description })
    }
}
