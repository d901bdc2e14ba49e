//! Signing in at the idp: OAuth 2.0 authorization code with PKCE (S256) through the `oauth2`
//! crate, and renewing tokens by refresh. The second refresh, with `resource=<issuer>`, gives
//! the user's own token for the idp's APIs (the phone's approvals): RFC 8707.

use kit::{claims::AccessClaims, jwks::JwksClient, jwt::Expect};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, Scope, TokenResponse as _,
    TokenUrl, basic::BasicClient,
};

use crate::config::Config;

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// The tokens of one signed-in session (server-side only).
#[derive(Clone)]
pub struct TokenSet {
    pub access: String,
    pub expires_at: i64,
    pub device: String,
    pub device_expires_at: i64,
    pub refresh: String,
}

/// A sign-in that has left for the idp: what the callback must match.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct PendingSignIn {
    pub state: String,
    pub verifier: String,
    /// Where to go once signed in (a path of ours).
    pub then: String,
}

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider refused: {0}")]
    Refused(String),
    #[error("the token from the identity provider does not verify: {0}")]
    BadToken(#[from] kit::jwt::TokenError),
    #[error("{0}")]
    Config(String),
}

#[derive(Clone)]
pub struct Oidc {
    client: Client,
    http: reqwest::Client,
    issuer: String,
    jwks: JwksClient,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl Oidc {
    pub fn new(config: &Config, http: reqwest::Client) -> Result<Self, OidcError> {
        let bad = |e: url::ParseError| OidcError::Config(e.to_string());
        let client = BasicClient::new(ClientId::new(config.client_id.clone()))
            .set_client_secret(ClientSecret::new(config.client_secret.clone()))
            .set_auth_uri(AuthUrl::new(format!("{}/authorize", config.idp)).map_err(bad)?)
            .set_token_uri(TokenUrl::new(format!("{}/token", config.idp)).map_err(bad)?)
            .set_redirect_uri(
                RedirectUrl::new(format!("{}/auth/callback", config.public_url)).map_err(bad)?,
            );
        Ok(Self {
            client,
            jwks: JwksClient::new(format!("{}/jwks", config.idp), http.clone()),
            http,
            issuer: config.idp.clone(),
        })
    }

    /// Where to send the browser, and what the callback must match.
    pub fn start(&self, then: String) -> (url::Url, PendingSignIn) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state) = self
            .client
            .authorize_url(CsrfToken::new_random)
            .add_scope(Scope::new("openid".into()))
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("offline_access".into()))
            .set_pkce_challenge(challenge)
            .url();
        (
            url,
            PendingSignIn {
                state: state.secret().clone(),
                verifier: verifier.secret().clone(),
                then,
            },
        )
    }

    /// Redeems the code; returns the verified claims of the user's token and the token set.
    pub async fn finish(
        &self,
        code: String,
        verifier: String,
    ) -> Result<(AccessClaims, TokenSet), OidcError> {
        let http = self.adapter();
        let r = self
            .client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier))
            .request_async(&http)
            .await
            .map_err(|e| OidcError::Refused(describe(&e)))?;
        let refresh = r
            .refresh_token()
            .ok_or_else(|| OidcError::Refused("no refresh token was issued".into()))?
            .secret()
            .clone();
        let access = r.access_token().secret().clone();
        let claims = self.verify(&access).await?;
        let set = self.device(access, claims.exp, &refresh).await?;
        Ok((claims, set))
    }

    /// Renews both tokens from the refresh token (which rotates twice).
    pub async fn renew(&self, refresh: &str) -> Result<TokenSet, OidcError> {
        let http = self.adapter();
        let r = self
            .client
            .exchange_refresh_token(&RefreshToken::new(refresh.to_owned()))
            .request_async(&http)
            .await
            .map_err(|e| OidcError::Refused(describe(&e)))?;
        let next = r
            .refresh_token()
            .map(|t| t.secret().clone())
            .unwrap_or_else(|| refresh.to_owned());
        let access = r.access_token().secret().clone();
        let claims = self.verify(&access).await?;
        self.device(access, claims.exp, &next).await
    }

    /// The user's token for the idp itself (`resource=<issuer>`), completing the set.
    async fn device(
        &self,
        access: String,
        expires_at: i64,
        refresh: &str,
    ) -> Result<TokenSet, OidcError> {
        let http = self.adapter();
        let r = self
            .client
            .exchange_refresh_token(&RefreshToken::new(refresh.to_owned()))
            .add_extra_param("resource", self.issuer.clone())
            .request_async(&http)
            .await
            .map_err(|e| OidcError::Refused(describe(&e)))?;
        let device = r.access_token().secret().clone();
        let device_claims = self.verify(&device).await?;
        Ok(TokenSet {
            access,
            expires_at,
            device,
            device_expires_at: device_claims.exp,
            refresh: r
                .refresh_token()
                .map(|t| t.secret().clone())
                .unwrap_or_else(|| refresh.to_owned()),
        })
    }

    /// The idp's signature, issuer and expiry (the audience is the concierge's or the idp's to
    /// check; we only read who signed in).
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, OidcError> {
        Ok(self
            .jwks
            .verify(
                token,
                &Expect {
                    issuer: Some(&self.issuer),
                    audience: None,
                },
            )
            .await?)
    }

    /// `oauth2`'s HTTP client interface over our reqwest 0.13 client.
    fn adapter(
        &self,
    ) -> impl Fn(
        oauth2::HttpRequest,
    ) -> std::pin::Pin<
        Box<dyn Future<Output = Result<oauth2::HttpResponse, reqwest::Error>> + Send>,
    > + use<> {
        let http = self.http.clone();
        move |req: oauth2::HttpRequest| {
            let http = http.clone();
            Box::pin(async move {
                let (parts, body) = req.into_parts();
                let resp = http
                    .request(parts.method, parts.uri.to_string())
                    .headers(parts.headers)
                    .body(body)
                    .send()
                    .await?;
                let status = resp.status();
                let headers = resp.headers().clone();
                let body = resp.bytes().await?.to_vec();
                let mut out = http::Response::new(body);
                *out.status_mut() = status;
                *out.headers_mut() = headers;
                Ok(out)
            })
        }
    }
}

fn describe<E: std::error::Error>(
    e: &oauth2::RequestTokenError<E, oauth2::basic::BasicErrorResponse>,
) -> String {
    match e {
        oauth2::RequestTokenError::ServerResponse(r) => match r.error_description() {
            Some(d) => format!("{}: {d}", r.error()),
            None => r.error().to_string(),
        },
        other => other.to_string(),
    }
}
