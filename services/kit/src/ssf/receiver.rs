//! The receiver side of SSF, embedded by every service that reacts to signals.
//!
//! [`Receiver::start`] reads the transmitter's metadata, then finds its stream by `description`
//! (so a restarted service reuses it, with pending SETs intact) or creates it, with the events
//! it wants and push delivery to its own URL (or poll). A push that arrives before start-up has
//! finished is answered 503, so the transmitter retries instead of dropping it.
//!
//! Every SET, pushed or polled, is checked in this order; the first failed rule answers with its
//! RFC 8935 §2.4 error (400 `{"err", "description"}`), which tells the transmitter not to retry:
//!
//! | rule | `err` |
//! |---|---|
//! | push: `Content-Type: application/secevent+jwt`; a compact JWS; `typ: secevent+jwt` | `invalid_request` |
//! | push: the `Authorization` value this receiver gave the transmitter for the stream | `authentication_failed` |
//! | `alg` exactly RS256 (before any key is chosen), a `kid` in the transmitter's JWKS, the signature | `invalid_key` |
//! | `iss` is the stream's issuer | `invalid_issuer` |
//! | `aud` contains the stream's audience | `invalid_audience` |
//! | no `sub`, no `exp`; `jti`, `iat`, a valid `sub_id`; exactly one event, of a known type, with its required members | `invalid_request` |
//! | a stream event (`verification`, `stream-updated`) names this stream in `sub_id` | `invalid_audience` |
//! | a verification's `state` is one this receiver asked for | `invalid_state` |
//!
//! A SET whose `jti` was already acted on is **accepted (202) and not acted on again**: RFC 8935
//! delivery is at-least-once, so a duplicate is the transmitter retrying, not an attack to
//! report; refusing it would make the transmitter log a failure for a SET that was handled.
//! When the callback fails, the push is answered 500 (the transmitter retries) and the `jti` is
//! not remembered. The JWKS unreachable is 503 (retry), never a refusal.
//!
//! The replay memory is per process (bounded, 24 hours). Replicas of one service may each act
//! once on the same SET; the platform's reactions (end a session, revoke leases, drop cached
//! tokens) are idempotent, so that costs nothing.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    future::Future,
    sync::{Arc, Mutex, MutexGuard, RwLock},
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::DefaultBodyLimit,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::MethodRouter,
};
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::{
    POLL, PUSH, SET_MEDIA_TYPE, SET_TYP, WELL_KNOWN,
    keys::{peek_set_header, verify_set_signature},
    set::{EventClaims, EventType, SetClaims},
    subject::SubjectId,
    wire::{
        PollRequest, PollResponse, SetErr, StatusBody, StreamConfig, StreamDelivery, StreamStatus,
        TransmitterMetadata,
    },
};
use crate::{claims::Audience, jwks::JwksClient, jwt::TokenError};

/// How the transmitter delivers this receiver's SETs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// RFC 8935: the transmitter POSTs each SET to `endpoint_url`, where the service mounts
    /// [`Receiver::push_route`].
    Push { endpoint_url: String },
    /// RFC 8936: the receiver fetches SETs ([`Receiver::poll_once`], [`Receiver::spawn_poller`]).
    Poll,
}

/// What a receiver needs to find its transmitter and its stream.
#[derive(Clone)]
pub struct ReceiverConfig {
    /// The transmitter's issuer URL; its metadata is at `/.well-known/ssf-configuration`.
    pub transmitter: String,
    /// This receiver's bearer token for the management API.
    pub token: String,
    /// Names this receiver's stream, so a restart finds and reuses it (for example `"idp"`).
    pub description: String,
    pub delivery: Delivery,
    /// The events this receiver acts on. Stream events (verification, stream-updated) always
    /// arrive.
    pub events: Vec<EventType>,
}

impl std::fmt::Debug for ReceiverConfig {
    // The management token never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiverConfig")
            .field("transmitter", &self.transmitter)
            .field("description", &self.description)
            .field("delivery", &self.delivery)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

/// One accepted event, as the callback gets it.
#[derive(Debug, Clone, PartialEq)]
pub struct SetEvent {
    pub jti: String,
    pub iss: String,
    pub iat: i64,
    pub txn: Option<String>,
    pub stream_id: String,
    pub sub_id: SubjectId,
    pub kind: EventType,
    pub claims: EventClaims,
}

/// Why the receiver could not set up or use its stream.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    #[error("the transmitter could not be reached: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the transmitter answered {what} with {status}: {body}")]
    Status {
        what: &'static str,
        status: u16,
        body: String,
    },
    #[error("the transmitter's answer is unusable: {0}")]
    Invalid(String),
    #[error("the receiver has not started (no stream yet)")]
    NotStarted,
}

/// Why one SET was not accepted. `code()` is its RFC 8935 / 8936 `err`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidKey(String),
    #[error("{0}")]
    InvalidIssuer(String),
    #[error("{0}")]
    InvalidAudience(String),
    #[error("{0}")]
    AuthenticationFailed(String),
    #[error("{0}")]
    AccessDenied(String),
    /// SSF §8.1.4: a verification `state` this receiver never asked for.
    #[error("{0}")]
    InvalidState(String),
    /// Not a verdict on the SET: not started yet, or the key set is unreachable. Retry.
    #[error("{0}")]
    Unavailable(String),
    /// The service's callback failed. Retry.
    #[error("the receiver could not act on the event")]
    HandlerFailed,
}

impl PushError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidKey(_) => "invalid_key",
            Self::InvalidIssuer(_) => "invalid_issuer",
            Self::InvalidAudience(_) => "invalid_audience",
            Self::AuthenticationFailed(_) => "authentication_failed",
            Self::AccessDenied(_) => "access_denied",
            Self::InvalidState(_) => "invalid_state",
            Self::Unavailable(_) => "temporarily_unavailable",
            Self::HandlerFailed => "server_error",
        }
    }

    /// Whether the transmitter should try again later (the SET itself was not judged).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::HandlerFailed)
    }
}

impl IntoResponse for PushError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::HandlerFailed => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let body = json!({"err": self.code(), "description": self.to_string()});
        let mut resp = (status, Json(body)).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_LANGUAGE, HeaderValue::from_static("en"));
        resp
    }
}

type Callback = Arc<dyn Fn(SetEvent) -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>;

/// How many SETs one poll asks for.
const POLL_BATCH: u32 = 100;
/// How long the transmitter may hold a long poll, plus margin (its own bound is shorter).
const POLL_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a `jti` is remembered, and how many.
const SEEN_TTL: Duration = Duration::from_secs(24 * 3600);
const SEEN_MAX: usize = 100_000;
/// Leeway on `iat` in the future.
const IAT_LEEWAY_SECS: i64 = 300;
/// The largest SET a push may carry.
const MAX_SET_BYTES: usize = 64 * 1024;

/// An SSF receiver: cheap to clone, one per service.
#[derive(Clone)]
pub struct Receiver {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: ReceiverConfig,
    callback: Callback,
    bound: RwLock<Option<Arc<Bound>>>,
    seen: Mutex<Seen>,
    /// Verification `state`s asked for and not yet answered.
    states: Mutex<HashSet<String>>,
    /// Poll mode: acknowledgements and errors to send with the next poll.
    pending: tokio::sync::Mutex<PollRequest>,
}

/// What start-up learned: the transmitter and our stream.
struct Bound {
    metadata: TransmitterMetadata,
    stream: StreamConfig,
    jwks: JwksClient,
    /// Push: the exact `Authorization` value the transmitter must send.
    push_authorization: Option<String>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("config", &self.inner.config)
            .field("stream_id", &self.stream_id())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Receiver {
    /// A receiver that hands every accepted event to `on_event`. An `Err` from the callback
    /// makes the transmitter deliver the SET again.
    pub fn new<F, Fut>(http: reqwest::Client, config: ReceiverConfig, on_event: F) -> Self
    where
        F: Fn(SetEvent) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let mut config = config;
        config.transmitter = config.transmitter.trim_end_matches('/').to_owned();
        let callback: Callback = Arc::new(move |e| Box::pin(on_event(e)));
        Self {
            inner: Arc::new(Inner {
                http,
                config,
                callback,
                bound: RwLock::new(None),
                seen: Mutex::new(Seen::default()),
                states: Mutex::new(HashSet::new()),
                pending: tokio::sync::Mutex::new(PollRequest::default()),
            }),
        }
    }

    fn bound(&self) -> Option<Arc<Bound>> {
        self.inner
            .bound
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Our stream as the transmitter last described it, once started.
    pub fn stream(&self) -> Option<StreamConfig> {
        self.bound().map(|b| b.stream.clone())
    }

    pub fn stream_id(&self) -> Option<String> {
        self.bound().map(|b| b.stream.stream_id.clone())
    }

    /// Reads the transmitter's metadata, then reuses our stream (found by `description`,
    /// updated to this configuration) or creates it. Returns the stream's configuration.
    pub async fn start(&self) -> Result<StreamConfig, ReceiverError> {
        let cfg = &self.inner.config;
        let metadata = self.metadata().await?;
        let endpoint = metadata
            .configuration_endpoint
            .clone()
            .ok_or_else(|| ReceiverError::Invalid("no configuration_endpoint".into()))?;
        let jwks_uri = metadata
            .jwks_uri
            .clone()
            .ok_or_else(|| ReceiverError::Invalid("no jwks_uri".into()))?;
        let push_authorization = match &cfg.delivery {
            Delivery::Push { .. } => Some(format!("Bearer {}", crate::random_id(32))),
            Delivery::Poll => None,
        };
        let delivery = match &cfg.delivery {
            Delivery::Push { endpoint_url } => StreamDelivery {
                method: PUSH.into(),
                endpoint_url: Some(endpoint_url.clone()),
                authorization_header: push_authorization.clone(),
            },
            Delivery::Poll => StreamDelivery {
                method: POLL.into(),
                endpoint_url: None,
                authorization_header: None,
            },
        };
        let events: Vec<String> = cfg.events.iter().map(|e| e.uri()).collect();
        let mut body = json!({
            "events_requested": events,
            "delivery": delivery,
            "description": cfg.description,
        });
        let resp = self.send(reqwest::Method::GET, &endpoint, None).await?;
        let streams: Vec<StreamConfig> = expect(resp, "reading streams", StatusCode::OK).await?;
        let existing = streams
            .into_iter()
            .find(|s| s.description.as_deref() == Some(cfg.description.as_str()));
        let stream: StreamConfig = match existing {
            Some(s) => {
                body["stream_id"] = json!(s.stream_id);
                let resp = self
                    .send(reqwest::Method::PATCH, &endpoint, Some(&body))
                    .await?;
                expect(resp, "updating the stream", StatusCode::OK).await?
            }
            None => {
                let resp = self
                    .send(reqwest::Method::POST, &endpoint, Some(&body))
                    .await?;
                expect(resp, "creating the stream", StatusCode::CREATED).await?
            }
        };
        if stream.iss != metadata.issuer {
            return Err(ReceiverError::Invalid(format!(
                "stream iss {} is not the transmitter {}",
                stream.iss, metadata.issuer
            )));
        }
        let jwks = JwksClient::new(jwks_uri, self.inner.http.clone());
        let bound = Bound {
            metadata,
            stream: stream.clone(),
            jwks,
            push_authorization,
        };
        *self
            .inner
            .bound
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(bound));
        tracing::info!(stream_id = %stream.stream_id, transmitter = %cfg.transmitter, "ssf stream ready");
        Ok(stream)
    }

    async fn metadata(&self) -> Result<TransmitterMetadata, ReceiverError> {
        let issuer = &self.inner.config.transmitter;
        let parsed = url::Url::parse(issuer)
            .map_err(|e| ReceiverError::Invalid(format!("transmitter {issuer}: {e}")))?;
        let path = parsed.path().trim_end_matches('/');
        let origin = parsed.origin().ascii_serialization();
        let url = format!("{origin}{WELL_KNOWN}{path}");
        let resp = self.inner.http.get(&url).send().await?;
        let metadata: TransmitterMetadata =
            expect(resp, "the metadata request", StatusCode::OK).await?;
        if metadata.issuer.trim_end_matches('/') != issuer {
            return Err(ReceiverError::Invalid(format!(
                "metadata issuer {} is not {issuer}",
                metadata.issuer
            )));
        }
        Ok(metadata)
    }

    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<reqwest::Response, ReceiverError> {
        let mut req = self
            .inner
            .http
            .request(method, url)
            .bearer_auth(&self.inner.config.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        Ok(req.send().await?)
    }

    /// Asks the transmitter for a verification event (SSF §8.1.4) carrying a fresh `state`,
    /// which this receiver then expects back; returns that `state`.
    pub async fn request_verification(&self) -> Result<String, ReceiverError> {
        let bound = self.bound().ok_or(ReceiverError::NotStarted)?;
        let url = bound
            .metadata
            .verification_endpoint
            .clone()
            .ok_or_else(|| ReceiverError::Invalid("no verification_endpoint".into()))?;
        let state = crate::random_id(12);
        lock(&self.inner.states).insert(state.clone());
        let body = json!({"stream_id": bound.stream.stream_id, "state": state});
        let resp = self.send(reqwest::Method::POST, &url, Some(&body)).await?;
        if resp.status() != StatusCode::NO_CONTENT {
            lock(&self.inner.states).remove(&state);
            return Err(status_error(resp, "the verification request").await);
        }
        Ok(state)
    }

    /// Sets our stream's status (`paused` holds events at the transmitter, `disabled` drops them).
    pub async fn set_status(
        &self,
        status: StreamStatus,
        reason: Option<&str>,
    ) -> Result<StatusBody, ReceiverError> {
        let bound = self.bound().ok_or(ReceiverError::NotStarted)?;
        let url = bound
            .metadata
            .status_endpoint
            .clone()
            .ok_or_else(|| ReceiverError::Invalid("no status_endpoint".into()))?;
        let body = json!({"stream_id": bound.stream.stream_id, "status": status, "reason": reason});
        let resp = self.send(reqwest::Method::POST, &url, Some(&body)).await?;
        expect(resp, "the status update", StatusCode::OK).await
    }

    /// The RFC 8935 push endpoint, to mount where [`Delivery::Push`] points:
    /// `Router::new().route("/ssf/events", receiver.push_route())`.
    pub fn push_route<S: Clone + Send + Sync + 'static>(&self) -> MethodRouter<S> {
        let me = self.clone();
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let me = me.clone();
            async move {
                match me.accept_push(&headers, &body).await {
                    Ok(()) => StatusCode::ACCEPTED.into_response(),
                    Err(e) => e.into_response(),
                }
            }
        })
        .layer(DefaultBodyLimit::max(MAX_SET_BYTES))
    }

    /// A router with only the push endpoint at `path`.
    pub fn router(&self, path: &str) -> Router {
        Router::new().route(path, self.push_route())
    }

    async fn accept_push(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), PushError> {
        let bound = self
            .bound()
            .ok_or_else(|| PushError::Unavailable("the receiver is starting".into()))?;
        if bound.stream.delivery.method != PUSH {
            return Err(PushError::AccessDenied(
                "this receiver's stream is delivered by poll".into(),
            ));
        }
        let media = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::trim)
            .unwrap_or_default();
        if !media.eq_ignore_ascii_case(SET_MEDIA_TYPE) {
            return Err(PushError::InvalidRequest(format!(
                "Content-Type must be {SET_MEDIA_TYPE}"
            )));
        }
        if let Some(expected) = &bound.push_authorization {
            let given = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            // Compared as digests, so the time taken says nothing about the secret.
            if crate::sha256_hex(given) != crate::sha256_hex(expected) {
                return Err(PushError::AuthenticationFailed(
                    "the Authorization header is not the one this stream was given".into(),
                ));
            }
        }
        let token = std::str::from_utf8(body)
            .map_err(|_| PushError::InvalidRequest("the body is not a compact JWS".into()))?
            .trim();
        self.process(&bound, token).await.map(|_| ())
    }

    /// Validates one SET and, the first time its `jti` is seen, hands it to the callback.
    /// `Ok(true)` = acted on, `Ok(false)` = a duplicate, accepted and ignored.
    async fn process(&self, bound: &Bound, token: &str) -> Result<bool, PushError> {
        let event = validate(bound, token).await?;
        if !lock(&self.inner.seen).begin(&event.jti) {
            tracing::debug!(jti = %event.jti, "duplicate SET ignored");
            return Ok(false);
        }
        if event.kind == EventType::Verification
            && let Some(state) = &event.claims.state
            && !lock(&self.inner.states).contains(state)
        {
            lock(&self.inner.seen).abandon(&event.jti);
            return Err(PushError::InvalidState(
                "the verification state is not one this receiver asked for".into(),
            ));
        }
        let jti = event.jti.clone();
        let state = event.claims.state.clone();
        match (self.inner.callback)(event).await {
            Ok(()) => {
                lock(&self.inner.seen).done(&jti);
                if let Some(s) = state {
                    lock(&self.inner.states).remove(&s);
                }
                Ok(true)
            }
            Err(e) => {
                lock(&self.inner.seen).abandon(&jti);
                tracing::error!(jti = %jti, error = %format!("{e:#}"), "the SET callback failed");
                Err(PushError::HandlerFailed)
            }
        }
    }

    /// Poll mode: one RFC 8936 round. Sends the acknowledgements and errors of the previous
    /// round, fetches up to a batch (waiting for SETs unless `return_immediately`), validates and
    /// acts on each, and keeps their acknowledgements for the next round. Returns how many SETs
    /// were acted on.
    pub async fn poll_once(&self, return_immediately: bool) -> Result<usize, ReceiverError> {
        let bound = self.bound().ok_or(ReceiverError::NotStarted)?;
        let url =
            bound.stream.delivery.endpoint_url.clone().ok_or_else(|| {
                ReceiverError::Invalid("the poll stream has no endpoint_url".into())
            })?;
        let mut pending = self.inner.pending.lock().await;
        let mut req = std::mem::take(&mut *pending);
        req.max_events = Some(POLL_BATCH);
        req.return_immediately = Some(return_immediately);
        let sent = self
            .inner
            .http
            .post(&url)
            .bearer_auth(&self.inner.config.token)
            .timeout(POLL_TIMEOUT)
            .json(&req)
            .send()
            .await;
        let resp = match sent {
            Ok(r) if r.status() == StatusCode::OK => r,
            Ok(r) => {
                *pending = req;
                return Err(status_error(r, "the poll").await);
            }
            Err(e) => {
                *pending = req;
                return Err(e.into());
            }
        };
        let body: PollResponse = match resp.json().await {
            Ok(b) => b,
            Err(e) => {
                *pending = req;
                return Err(e.into());
            }
        };
        let mut acted = 0;
        for (jti, set) in body.sets {
            match self.process(&bound, &set).await {
                Ok(did) => {
                    acted += usize::from(did);
                    pending.ack.push(jti);
                }
                Err(e) if e.is_retryable() => {}
                Err(e) => {
                    tracing::warn!(jti = %jti, err = e.code(), description = %e, "polled SET refused");
                    pending.set_errs.insert(
                        jti,
                        SetErr {
                            err: e.code().into(),
                            description: e.to_string(),
                        },
                    );
                }
            }
        }
        Ok(acted)
    }

    /// Poll mode: long-polls until the task is aborted, backing off while the transmitter is
    /// unreachable.
    pub fn spawn_poller(&self) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(200);
            loop {
                match me.poll_once(false).await {
                    Ok(_) => backoff = Duration::from_millis(200),
                    Err(e) => {
                        tracing::warn!(error = %e, "ssf poll failed");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                    }
                }
            }
        })
    }
}

async fn expect<T: serde::de::DeserializeOwned>(
    resp: reqwest::Response,
    what: &'static str,
    status: StatusCode,
) -> Result<T, ReceiverError> {
    if resp.status() != status {
        return Err(status_error(resp, what).await);
    }
    resp.json()
        .await
        .map_err(|e| ReceiverError::Invalid(format!("{what}: {e}")))
}

async fn status_error(resp: reqwest::Response, what: &'static str) -> ReceiverError {
    let status = resp.status().as_u16();
    let body: String = resp
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect();
    ReceiverError::Status { what, status, body }
}

/// Every rule of the module's table except the push-only ones and the replay memory.
async fn validate(bound: &Bound, token: &str) -> Result<SetEvent, PushError> {
    let header = peek_set_header(token).map_err(|e| match e {
        TokenError::AlgorithmNotAllowed(alg) => {
            PushError::InvalidKey(format!("algorithm {alg} is not allowed; SETs are RS256"))
        }
        _ => PushError::InvalidRequest("the SET is not a compact JWS".into()),
    })?;
    let typ_ok = header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case(SET_TYP) || t.eq_ignore_ascii_case(SET_MEDIA_TYPE));
    if !typ_ok {
        return Err(PushError::InvalidRequest(format!(
            "the SET's typ must be {SET_TYP}"
        )));
    }
    let kid = header
        .kid
        .ok_or_else(|| PushError::InvalidKey("the SET names no key (kid)".into()))?;
    let key = bound.jwks.key(&kid).await.map_err(|e| match e {
        TokenError::KeySetUnavailable => {
            PushError::Unavailable("the transmitter's key set could not be fetched".into())
        }
        _ => PushError::InvalidKey(format!("key {kid} is not in the transmitter's key set")),
    })?;
    let claims = verify_set_signature(token, &key).map_err(|e| match e {
        TokenError::BadSignature | TokenError::AlgorithmNotAllowed(_) => {
            PushError::InvalidKey("the SET's signature does not verify".into())
        }
        other => PushError::InvalidRequest(other.to_string()),
    })?;
    let stream = &bound.stream;
    if claims.get("iss").and_then(Value::as_str) != Some(stream.iss.as_str()) {
        return Err(PushError::InvalidIssuer(format!(
            "the SET's iss is not {}",
            stream.iss
        )));
    }
    let aud: Option<Audience> = claims
        .get("aud")
        .and_then(|a| serde_json::from_value(a.clone()).ok());
    if !aud.is_some_and(|a| stream.aud.0.iter().any(|mine| a.contains(mine))) {
        return Err(PushError::InvalidAudience(format!(
            "the SET's aud does not name this stream's audience {}",
            stream.aud.0.join(" ")
        )));
    }
    for forbidden in ["sub", "exp"] {
        if claims.contains_key(forbidden) {
            return Err(PushError::InvalidRequest(format!(
                "an SSF SET must not carry {forbidden}"
            )));
        }
    }
    let set: SetClaims = serde_json::from_value(Value::Object(claims))
        .map_err(|e| PushError::InvalidRequest(format!("the SET's claims are invalid: {e}")))?;
    if set.jti.is_empty() {
        return Err(PushError::InvalidRequest("the SET's jti is empty".into()));
    }
    if set.iat > crate::now_secs() + IAT_LEEWAY_SECS {
        return Err(PushError::InvalidRequest(
            "the SET's iat is in the future".into(),
        ));
    }
    set.sub_id
        .validate()
        .map_err(|e| PushError::InvalidRequest(format!("sub_id: {e}")))?;
    let mut events = set.events.into_iter();
    let (Some((uri, body)), None) = (events.next(), events.next()) else {
        return Err(PushError::InvalidRequest(
            "a SET must carry exactly one event".into(),
        ));
    };
    let kind = EventType::from_uri(&uri)
        .ok_or_else(|| PushError::InvalidRequest(format!("event type {uri} is not understood")))?;
    let claims: EventClaims = serde_json::from_value(body)
        .map_err(|e| PushError::InvalidRequest(format!("the event's members are invalid: {e}")))?;
    claims.validate(kind).map_err(PushError::InvalidRequest)?;
    if kind.is_stream_event() && set.sub_id != SubjectId::opaque(stream.stream_id.clone()) {
        return Err(PushError::InvalidAudience(
            "the stream event is for another stream".into(),
        ));
    }
    Ok(SetEvent {
        jti: set.jti,
        iss: set.iss,
        iat: set.iat,
        txn: set.txn,
        stream_id: stream.stream_id.clone(),
        sub_id: set.sub_id,
        kind,
        claims,
    })
}

/// The `jti`s acted on (or being acted on), bounded in time and number.
#[derive(Default)]
struct Seen {
    at: HashMap<String, Option<Instant>>,
    order: VecDeque<(Instant, String)>,
}

impl Seen {
    /// Claims `jti` for processing; false if it was done or is in progress.
    fn begin(&mut self, jti: &str) -> bool {
        self.expire();
        if self.at.contains_key(jti) {
            return false;
        }
        self.at.insert(jti.to_owned(), None);
        true
    }

    fn done(&mut self, jti: &str) {
        let now = Instant::now();
        self.at.insert(jti.to_owned(), Some(now));
        self.order.push_back((now, jti.to_owned()));
    }

    fn abandon(&mut self, jti: &str) {
        self.at.remove(jti);
    }

    fn expire(&mut self) {
        while let Some((t, jti)) = self.order.front() {
            if t.elapsed() < SEEN_TTL && self.order.len() <= SEEN_MAX {
                break;
            }
            self.at.remove(jti);
            self.order.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jti_is_acted_on_once_unless_the_action_failed() {
        let mut seen = Seen::default();
        assert!(seen.begin("a"));
        assert!(!seen.begin("a"), "in progress");
        seen.abandon("a");
        assert!(seen.begin("a"), "a failed action may be retried");
        seen.done("a");
        assert!(!seen.begin("a"));
    }

    #[test]
    fn errors_carry_rfc_8935_codes() {
        assert_eq!(PushError::InvalidKey(String::new()).code(), "invalid_key");
        assert_eq!(
            PushError::AuthenticationFailed(String::new()).code(),
            "authentication_failed"
        );
        assert!(PushError::HandlerFailed.is_retryable());
        assert!(!PushError::InvalidAudience(String::new()).is_retryable());
    }
}
