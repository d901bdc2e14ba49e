//! The credential issuer's client, on `vaultrs` (an unchanged Vault client): log in with the
//! delegated token, read one credential keeping its lease id, revoke that lease.
//!
//! Three Vault calls per operation, each a new Vault token's life from birth to death:
//! `POST /v1/auth/jwt/login`, `GET /v1/verify-rar/creds/<role>`, `PUT /v1/sys/leases/revoke`.

use rustify::{
    endpoint::Endpoint,
    enums::{RequestMethod, RequestType, ResponseType},
};
use vaultrs::{
    api::{
        EndpointResult,
        database::{requests::GenerateCredentialsRequest, responses::GenerateCredentialsResponse},
    },
    client::{Client as _, VaultClient, VaultClientSettingsBuilder},
    error::ClientError,
};

/// Where the issuer mounts its JWT login and its credentials (`infra/verify-rar`).
pub const JWT_MOUNT: &str = "jwt";
pub const CREDS_MOUNT: &str = "verify-rar";

/// Why the issuer gave us nothing.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The issuer answered and said no (bad token, no RAR mapping, dead session): its words.
    #[error("{0}")]
    Refused(String),
    /// The issuer could not be reached or answered something that is not the Vault API.
    #[error("the credential issuer could not be reached: {0}")]
    Unavailable(String),
}

impl From<ClientError> for VaultError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::APIError { code, errors } if (400..500).contains(&code) => {
                VaultError::Refused(if errors.is_empty() {
                    format!("HTTP {code}")
                } else {
                    errors.join("; ")
                })
            }
            other => VaultError::Unavailable(other.to_string()),
        }
    }
}

/// The issuer at one address.
#[derive(Debug, Clone)]
pub struct Issuer {
    addr: String,
}

impl Issuer {
    pub fn new(addr: impl Into<String>) -> Self {
        Self { addr: addr.into() }
    }

    /// Logs in with the delegated token (T2). The Vault token lives only in the returned session.
    pub async fn login(&self, jwt: &str) -> Result<Session, VaultError> {
        // Every setting is explicit, so vaultrs reads none of them from the environment.
        let settings = VaultClientSettingsBuilder::default()
            .address(&self.addr)
            .token("")
            .verify(true)
            .ca_certs(vec![])
            .identity(None)
            .timeout(Some(std::time::Duration::from_secs(15)))
            .build()
            .map_err(|e| VaultError::Unavailable(e.to_string()))?;
        let mut client = VaultClient::new(settings)?;
        let auth = vaultrs::auth::oidc::login(&client, JWT_MOUNT, jwt, None).await?;
        client.set_token(&auth.client_token);
        Ok(Session {
            client,
            accessor: auth.accessor,
        })
    }
}

/// A logged-in Vault token.
pub struct Session {
    client: VaultClient,
    /// The token's accessor: names it in events without revealing it.
    pub accessor: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("accessor", &self.accessor)
            .finish_non_exhaustive()
    }
}

/// One database credential and the lease that will drop it.
pub struct Credential {
    pub lease_id: String,
    pub lease_duration: u32,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credential {
    // The password never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("lease_id", &self.lease_id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// `GET /v1/verify-rar/creds/<role>`. vaultrs' own `database::role::creds` drops the lease
    /// id, so the same public endpoint is executed here and its envelope kept.
    pub async fn creds(&self, role: &str) -> Result<Credential, VaultError> {
        let endpoint = GenerateCredentialsRequest::builder()
            .mount(CREDS_MOUNT)
            .name(role)
            .build()
            .map_err(|e| VaultError::Unavailable(e.to_string()))?;
        let result = endpoint
            .with_middleware(self.client.middle())
            .exec(self.client.http())
            .await
            .map_err(|e| VaultError::from(vaultrs_error(e)))?
            .wrap::<EndpointResult<GenerateCredentialsResponse>>()
            .map_err(|e| VaultError::Unavailable(e.to_string()))?;
        let data = result
            .data
            .ok_or_else(|| VaultError::Unavailable("the credential response has no data".into()))?;
        Ok(Credential {
            lease_id: result.lease_id,
            lease_duration: result.lease_duration,
            username: data.username,
            password: data.password,
        })
    }

    /// `PUT /v1/sys/leases/revoke {"lease_id"}`: the issuer terminates the role's sessions and
    /// drops it. vaultrs 0.8 has no lease calls, so this is the one endpoint written out here.
    pub async fn revoke(&self, lease_id: &str) -> Result<(), VaultError> {
        vaultrs::api::exec_with_empty(
            &self.client,
            RevokeLease {
                lease_id: lease_id.to_owned(),
            },
        )
        .await?;
        Ok(())
    }
}

/// vaultrs maps a rustify error to its own (`APIError` with the Vault `errors`) in `parse_err`,
/// which is private; this is the same mapping for the one call executed by hand.
fn vaultrs_error(e: rustify::errors::ClientError) -> ClientError {
    if let rustify::errors::ClientError::ServerResponseError { code, content } = &e {
        let errors = content
            .as_deref()
            .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
            .and_then(|v| v.get("errors").cloned())
            .and_then(|v| serde_json::from_value::<Vec<String>>(v).ok());
        if let Some(errors) = errors {
            return ClientError::APIError {
                code: *code,
                errors,
            };
        }
    }
    ClientError::RestClientError { source: e }
}

/// `PUT /v1/sys/leases/revoke` (Vault's `sync` defaults to true: 204 once the role is gone).
#[derive(Debug, serde::Serialize)]
struct RevokeLease {
    lease_id: String,
}

impl Endpoint for RevokeLease {
    type Response = ();
    const REQUEST_BODY_TYPE: RequestType = RequestType::JSON;
    const RESPONSE_BODY_TYPE: ResponseType = ResponseType::JSON;

    fn path(&self) -> String {
        "sys/leases/revoke".into()
    }

    fn method(&self) -> RequestMethod {
        RequestMethod::PUT
    }

    fn body(&self) -> Result<Option<Vec<u8>>, rustify::errors::ClientError> {
        serde_json::to_vec(self)
            .map(Some)
            .map_err(|e| rustify::errors::ClientError::DataParseError { source: e.into() })
    }
}
