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
        Self {
            inner: Arc::new(Inner {
                url: url.into(),
                http,
                keys: RwLock::new(HashMap::new()),
                last_fetch: Mutex::new(None),
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
            let due = last.is_none_or(|t| t.elapsed() >= REFETCH_INTERVAL);
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
