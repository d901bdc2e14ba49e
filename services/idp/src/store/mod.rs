//! Queries, one file per table family. Handlers and the exchange logic call these; no SQL
//! lives anywhere else in the idp.

pub mod anomaly;
pub mod approvals;
pub mod codes;
pub mod outbox;
pub mod replay;
pub mod scim;
pub mod sessions;
pub mod users;
