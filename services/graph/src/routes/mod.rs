//! Graph's HTTP surface: every route, next to the module that handles it.

pub mod health;
pub mod users;

use axum::{Router, extract::DefaultBodyLimit, http::Uri, middleware, routing::get};

use crate::{error::Error, request, state::AppState};

/// The largest request body accepted. A user is a few hundred bytes; anything near this is not one.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/v1.0/users", get(users::list).post(users::create))
        .route("/v1.0/users/{id}", get(users::get))
        .fallback(unknown_route)
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(request::middleware))
        .with_state(state)
}

/// Any other path: Graph's wording for a segment it does not know.
async fn unknown_route(uri: Uri) -> Error {
    let path: String = uri.path().chars().take(200).collect();
    Error::NotFound(format!("Resource not found for the segment '{path}'."))
}
