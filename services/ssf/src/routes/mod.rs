//! Antenna's HTTP surface: every route, next to the module that handles it.

pub mod health;
pub mod metadata;
pub mod poll;
pub mod source;
pub mod status;
pub mod streams;
pub mod subjects;
pub mod verify;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{HeaderValue, header},
    middleware,
    response::Response,
    routing::{get, post},
};

use crate::{error::Error, state::AppState};

/// The largest request body accepted: a stream configuration or a poll with its
/// acknowledgements is a few kilobytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route(kit::ssf::WELL_KNOWN, get(metadata::metadata))
        .route(
            &format!("{}/{{*path}}", kit::ssf::WELL_KNOWN),
            get(metadata::metadata_at_path),
        )
        .route("/jwks", get(metadata::jwks))
        .route(
            "/ssf/streams",
            get(streams::read)
                .post(streams::create)
                .patch(streams::update)
                .put(streams::replace)
                .delete(streams::delete),
        )
        .route("/ssf/status", get(status::read).post(status::update))
        .route("/ssf/subjects/add", post(subjects::add))
        .route("/ssf/subjects/remove", post(subjects::remove))
        .route("/ssf/verify", post(verify::verify))
        .route("/ssf/poll/{stream_id}", post(poll::poll))
        .route("/events", post(source::event))
        .fallback(|| async { Error::NoRoute })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::map_response(no_store))
        .with_state(state)
}

/// Management answers carry stream configurations and tokens' effects: never cached.
async fn no_store(mut resp: Response) -> Response {
    resp.headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

/// The `stream_id` query parameter of GET and DELETE.
#[derive(Debug, serde::Deserialize)]
pub struct StreamQuery {
    pub stream_id: Option<String>,
}

/// Reads a required `stream_id` string member of a body.
pub fn stream_id_of(body: &serde_json::Map<String, serde_json::Value>) -> Result<String, Error> {
    match body.get("stream_id").and_then(|v| v.as_str()) {
        Some(id) if !id.is_empty() && id.len() <= 128 => Ok(id.to_owned()),
        _ => Err(Error::bad_request("stream_id is required")),
    }
}
