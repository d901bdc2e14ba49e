//! JSON Web Key Sets: publishing ours, and a caching client for someone else's.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use jsonwebtoken::{DecodingKey, jwk::JwkSet};
use serde::de::DeserializeOwned;
use tokio::sync::{Mutex, RwLock};

use crate::jwt::{self, Expect, SigningKey, TokenError};

/// The JWKS document for `keys` (public halves only).
pub fn publish<'a>(keys: impl IntoIterator<Item = &'a SigningKey>) -> JwkSet {
    JwkSet {
        keys: keys.into_iter().map(|k| k.public_jwk().clone()).collect(),
    }
}

/// How soon after one fetch an unknown `kid` may trigger another: a flood of tokens with random
/// `kid`s must not turn into a flood of requests to the issuer.
const REFETCH_INTERVAL: Duration = Duration::from_secs(5);

/// Fetches an issuer's JWKS once, keeps the keys, and refetches when a token names a `kid` it
/// has not seen (key rotation), at most once per [`REFETCH_INTERVAL`].
#[derive(Clone)]
pub struct JwksClient {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    http: reqwest::Client,
    keys: RwLock<HashMap<String, Arc<DecodingKey>>>,
    last_fetch: Mutex<Option<Instant>>,
    refetch_interval: Duration,
}

impl std::fmt::Debug for JwksClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksClient")
            .field("url", &self.inner.url)
            .finish_non_exhaustive()
    }
}

impl JwksClient {
    pub fn new(url: impl Into<String>, http: reqwest::Client) -> Self {
        Self::with_refetch_interval(url, http, REFETCH_INTERVAL)
    }

    /// A client that fetches again at most once per `every` (tests use a short interval).
    pub fn with_refetch_interval(
        url: impl Into<String>,
        http: reqwest::Client,
        every: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                url: url.into(),
                http,
                keys: RwLock::new(HashMap::new()),
                last_fetch: Mutex::new(None),
                refetch_interval: every,
            }),
        }
    }

    /// The verification key for `kid`, fetching the set if needed.
    pub async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, TokenError> {
        if let Some(k) = self.inner.keys.read().await.get(kid) {
            return Ok(k.clone());
        }
        {
            let mut last = self.inner.last_fetch.lock().await;
            // Another task may have fetched while we waited for the lock.
            if let Some(k) = self.inner.keys.read().await.get(kid) {
                return Ok(k.clone());
            }
            let due = last.is_none_or(|t| t.elapsed() >= self.inner.refetch_interval);
            if due {
                *last = Some(Instant::now());
                let set = self.fetch().await?;
                let mut keys = self.inner.keys.write().await;
                keys.clear();
                for jwk in &set.keys {
                    let (Some(id), Ok(dk)) =
                        (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk))
                    else {
                        continue;
                    };
                    keys.insert(id, Arc::new(dk));
                }
            }
        }
        self.inner
            .keys
            .read()
            .await
            .get(kid)
            .cloned()
            .ok_or_else(|| TokenError::UnknownKey(kid.to_owned()))
    }

    async fn fetch(&self) -> Result<JwkSet, TokenError> {
        let resp = self
            .inner
            .http
            .get(&self.inner.url)
            .send()
            .await
            .map_err(|e| {
                tracing::warn!(url = %self.inner.url, error = %e, "jwks fetch failed");
                TokenError::KeySetUnavailable
            })?;
        if !resp.status().is_success() {
            return Err(TokenError::KeySetUnavailable);
        }
        resp.json::<JwkSet>()
            .await
            .map_err(|_| TokenError::KeySetUnavailable)
    }

    /// Verifies a token signed by this key set's owner: pinned algorithm, known `kid`, signature,
    /// times, issuer and audience.
    pub async fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        expect: &Expect<'_>,
    ) -> Result<T, TokenError> {
        let header = jwt::peek_header(token)?;
        let kid = header.kid.ok_or(TokenError::MissingKid)?;
        let key = self.key(&kid).await?;
        jwt::verify(token, &key, expect)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::{Json, Router, extract::State, routing::get};
    use serde_json::json;

    use super::*;

    type Served = Arc<(std::sync::Mutex<Vec<SigningKey>>, AtomicUsize)>;

    async fn jwks(State(s): State<Served>) -> Json<JwkSet> {
        s.1.fetch_add(1, Ordering::SeqCst);
        let keys = s.0.lock().map(|k| k.clone()).unwrap_or_default();
        Json(publish(keys.iter()))
    }

    fn token(key: &SigningKey) -> String {
        let now = crate::now_secs();
        key.sign(
            "at+jwt",
            &json!({"iss": "i", "sub": "s", "aud": "a", "iat": now, "exp": now + 60}),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn refetches_on_an_unknown_kid_but_not_on_every_one() {
        let k1 = SigningKey::generate("k1").unwrap();
        let k2 = SigningKey::generate("k2").unwrap();
        let served: Served =
            Arc::new((std::sync::Mutex::new(vec![k1.clone()]), AtomicUsize::new(0)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        let app = Router::new()
            .route("/jwks", get(jwks))
            .with_state(served.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = JwksClient::with_refetch_interval(
            url,
            reqwest::Client::new(),
            Duration::from_millis(200),
        );
        let expect = Expect {
            issuer: Some("i"),
            audience: Some("a"),
        };

        client
            .verify::<serde_json::Value>(&token(&k1), &expect)
            .await
            .unwrap();
        client
            .verify::<serde_json::Value>(&token(&k1), &expect)
            .await
            .unwrap();
        assert_eq!(
            served.1.load(Ordering::SeqCst),
            1,
            "a known kid is served from the cache"
        );

        // The issuer rotates to k2: the first token with k2 makes the client fetch again.
        served.0.lock().unwrap().push(k2.clone());
        tokio::time::sleep(Duration::from_millis(250)).await;
        client
            .verify::<serde_json::Value>(&token(&k2), &expect)
            .await
            .unwrap();
        assert_eq!(served.1.load(Ordering::SeqCst), 2);

        // A flood of unknown kids within the interval costs at most one fetch.
        let rogue = SigningKey::generate("rogue").unwrap();
        for _ in 0..5 {
            let err = client
                .verify::<serde_json::Value>(&token(&rogue), &expect)
                .await
                .unwrap_err();
            assert_eq!(err, TokenError::UnknownKey("rogue".into()));
        }
        assert!(served.1.load(Ordering::SeqCst) <= 3);
    }
}
