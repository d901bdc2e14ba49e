//! The SCIM 2.0 API (RFC 7643/7644) through which the iam agent administers users and groups.
//!
//! It trusts only delegated tokens, and each only for the one operation it was granted. Every
//! call is checked in this order, and each outcome is one security event (`scim_<action>`)
//! naming the rule that decided it:
//!
//! 1. a bearer token is present (401 `token_missing`), signed by this idp (ES256, our key,
//!    `at+jwt`, unexpired) (401 `token_invalid`), addressed to [`AUDIENCE`] (401
//!    `audience_mismatch`), and live: not revoked, its session not ended (401
//!    `session_revoked`);
//! 2. it is delegated: it carries an `act` chain (403 `not_delegated`) whose current actor is a
//!    registered, active agent allowed the `scim` audience (403 `actor_not_allowed`);
//! 3. the request is well formed (400 `invalidSyntax`, `invalidValue`, `invalidFilter`) and
//!    its target exists (404 `not_found`);
//! 4. an `authorization_details` entry of type `urn:smt:agent:iam` has exactly this
//!    operation's action (403 `not_granted`) and names this target, `email` and, for group
//!    membership, `group` (403 `target_mismatch`). A change no action describes (renaming,
//!    reactivating, removing members) is never delegated (403 `not_delegable`).
//!
//! The allowed event is written before the change is made: a change we could not record is
//! not made.
//!
//! | action | endpoint |
//! |---|---|
//! | `list_users` | `GET /Users`, `GET /Groups`, `GET /Groups/{id}` |
//! | `get_user` | `GET /Users/{id}`; `GET /Users?filter=userName eq "<its email>"` |
//! | `create_user` | `POST /Users` (a granted `display_name` must match too) |
//! | `add_user_to_group` | `PATCH /Groups/{id}` adding members; `POST /Groups` (group = the new name) |
//! | `deactivate_user` | `PATCH /Users/{id}` replacing `active` with false; ends every session |
//! | `revoke_user_sessions` | `DELETE /Users/{id}/sessions` (our extension) |
//! | `delete_user` | `DELETE /Users/{id}` |
//! | `grant_admin_role` | `PATCH /Users/{id}` adding role `admin`; adding members to `admins` |
//!
//! `delete_user` and `grant_admin_role` are tier 4 in the demo policy and outside the iam
//! agent's ceiling, so no such token is ever minted; the endpoints still check the grant.
//!
//! Layout: `access` checks the token and the grant and writes the event, `refusal` is what a
//! refused call answers, `wire` is the SCIM JSON in and out, and `users` and `groups` are the
//! endpoints.

mod access;
mod groups;
mod refusal;
mod users;
mod wire;

use axum::{extract::State, http::StatusCode, response::Response};
use serde_json::json;

pub use groups::{create_group, get_group, list_groups, patch_group};
pub use users::{create_user, delete_user, get_user, list_users, patch_user, revoke_user_sessions};
use wire::{MAX_RESULTS, base, scim_json};

use crate::{
    error::{Error, ScimError},
    state::AppState,
};

/// The audience of tokens for this API (what the iam agent asks the token endpoint for).
pub const AUDIENCE: &str = "scim";

/// `GET /scim/v2/ServiceProviderConfig`: what this server supports; no token needed.
pub async fn service_provider_config(State(state): State<AppState>) -> Response {
    let base = base(&state);
    scim_json(
        StatusCode::OK,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "patch": {"supported": true},
            "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": true, "maxResults": MAX_RESULTS},
            "changePassword": {"supported": false},
            "sort": {"supported": false},
            "etag": {"supported": false},
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "Delegated OAuth bearer token",
                "description": "A token from this idp for audience scim with an act chain and authorization_details of type urn:smt:agent:iam naming exactly the operation and its target",
                "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
                "primary": true,
            }],
            "meta": {
                "resourceType": "ServiceProviderConfig",
                "location": format!("{base}/ServiceProviderConfig"),
            },
        }),
    )
}

/// Any other path under `/scim/v2`.
pub async fn unknown_endpoint() -> Error {
    ScimError::not_found("no such SCIM endpoint").into()
}

/// A SCIM path with a method it does not take (`PUT`: every change is one granted operation,
/// made with `PATCH`).
pub async fn method_not_allowed() -> Error {
    ScimError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        None,
        "this method is not supported here",
    )
    .into()
}
