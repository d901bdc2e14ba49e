//! Queries. Handlers call these; no SQL lives anywhere else in graph.

pub mod users;
