//! The idp's HTTP surface: every route, next to the module that handles it.

pub mod agents;
pub mod approvals;
pub mod authorize;
pub mod ciba;
pub mod discovery;
pub mod events;
pub mod form;
pub mod introspect;
pub mod scim;
pub mod sessions;
pub mod token;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    routing::{any, delete, get, post},
};

use crate::{error::Error, state::AppState};

pub use kit::plain_id;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::metadata),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::metadata),
        )
        .route("/jwks", get(discovery::jwks))
        .route("/health", get(discovery::health))
        .route("/authorize", get(authorize::form).post(authorize::submit))
        .route("/token", post(token::token))
        .route("/bc-authorize", post(ciba::bc_authorize))
        .route("/introspect", post(introspect::introspect))
        .route("/revoke", post(introspect::revoke))
        .route(
            "/userinfo",
            get(introspect::userinfo).post(introspect::userinfo),
        )
        .route("/api/approvals", get(approvals::list))
        .route("/api/approvals/stream", get(approvals::stream))
        .route("/api/approvals/{id}/approve", post(approvals::approve))
        .route("/api/approvals/{id}/deny", post(approvals::deny))
        .route("/api/sessions", get(sessions::list))
        .route("/api/sessions/{id}/revoke", post(sessions::revoke))
        .route("/api/events", get(events::list))
        .route("/admin/agents", get(agents::list))
        .route("/admin/agents/{name}", get(agents::get).put(agents::put))
        .route("/admin/agents/{name}/status", post(agents::set_status))
        .route(
            "/scim/v2/ServiceProviderConfig",
            get(scim::service_provider_config),
        )
        .route(
            "/scim/v2/Users",
            get(scim::list_users)
                .post(scim::create_user)
                .fallback(scim::method_not_allowed),
        )
        .route(
            "/scim/v2/Users/{id}",
            get(scim::get_user)
                .patch(scim::patch_user)
                .delete(scim::delete_user)
                .fallback(scim::method_not_allowed),
        )
        .route(
            "/scim/v2/Users/{id}/sessions",
            delete(scim::revoke_user_sessions).fallback(scim::method_not_allowed),
        )
        .route(
            "/scim/v2/Groups",
            get(scim::list_groups)
                .post(scim::create_group)
                .fallback(scim::method_not_allowed),
        )
        .route(
            "/scim/v2/Groups/{id}",
            get(scim::get_group)
                .patch(scim::patch_group)
                .fallback(scim::method_not_allowed),
        )
        .route("/scim/v2/{*rest}", any(scim::unknown_endpoint))
        .fallback(|| async { Error::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(form::MAX_FORM_BYTES))
        .with_state(state)
}
