//! The signed-in users' tokens, held here and nowhere else: the browser has only a session
//! cookie naming an idp session id. Per idp session: the user's access token (audience: the
//! concierge), the "device" token (audience: the idp, for the phone's approvals and ending the
//! session) and the refresh token that renews both.
//!
//! Refresh tokens rotate and reusing one ends the session (the idp's theft detection), so every
//! renewal of one account is serialized by its lock, and the whole set is dropped the moment the
//! session is revoked: no token outlives its session.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use tokio::sync::Mutex;

use crate::oidc::{Oidc, TokenSet};

/// Renew a token this long before it expires.
const MARGIN_SECS: i64 = 60;

/// One signed-in idp session.
pub struct Account {
    pub email: String,
    pub sub: String,
    /// The idp's session id (`sid`): the key of everything here.
    pub sid: String,
    tokens: Mutex<Option<TokenSet>>,
    /// Why the session ended, once it has.
    ended: RwLock<Option<String>>,
}

impl std::fmt::Debug for Account {
    // Tokens never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("email", &self.email)
            .field("sid", &self.sid)
            .finish_non_exhaustive()
    }
}

/// The session is over (revoked, or its refresh was refused): sign in again.
#[derive(Debug, thiserror::Error)]
#[error("your session has ended: {0}")]
pub struct SessionEnded(pub String);

impl Account {
    pub fn new(email: String, sub: String, sid: String, tokens: TokenSet) -> Self {
        Self {
            email,
            sub,
            sid,
            tokens: Mutex::new(Some(tokens)),
            ended: RwLock::new(None),
        }
    }

    /// Why the session ended, if it has.
    pub fn ended(&self) -> Option<String> {
        self.ended
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Marks the session ended and forgets its tokens.
    pub async fn end(&self, why: &str) {
        *self
            .ended
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(why.to_owned());
        *self.tokens.lock().await = None;
    }

    /// The user's access token for the concierge, renewed if it is about to expire.
    pub async fn access_token(&self, oidc: &Oidc) -> Result<String, SessionEnded> {
        Ok(self.fresh(oidc).await?.access)
    }

    /// The user's own token for the idp's APIs (approvals, sessions), renewed likewise.
    pub async fn device_token(&self, oidc: &Oidc) -> Result<String, SessionEnded> {
        Ok(self.fresh(oidc).await?.device)
    }

    async fn fresh(&self, oidc: &Oidc) -> Result<TokenSet, SessionEnded> {
        if let Some(why) = self.ended() {
            return Err(SessionEnded(why));
        }
        let mut guard = self.tokens.lock().await;
        let Some(current) = guard.as_ref() else {
            return Err(SessionEnded("signed out".into()));
        };
        if current.expires_at.min(current.device_expires_at) > kit::now_secs() + MARGIN_SECS {
            return Ok(current.clone());
        }
        match oidc.renew(&current.refresh).await {
            Ok(renewed) => {
                *guard = Some(renewed.clone());
                Ok(renewed)
            }
            Err(e) => {
                drop(guard);
                let why = format!("the identity provider refused to renew it ({e})");
                self.end(&why).await;
                Err(SessionEnded(why))
            }
        }
    }
}

/// Every signed-in session of this process, by idp session id.
#[derive(Default)]
pub struct Accounts {
    by_sid: RwLock<HashMap<String, Arc<Account>>>,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts").finish_non_exhaustive()
    }
}

impl Accounts {
    pub fn insert(&self, account: Arc<Account>) {
        self.by_sid
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(account.sid.clone(), account);
    }

    pub fn get(&self, sid: &str) -> Option<Arc<Account>> {
        self.by_sid
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(sid)
            .cloned()
    }

    pub fn remove(&self, sid: &str) -> Option<Arc<Account>> {
        self.by_sid
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(sid)
    }
}
