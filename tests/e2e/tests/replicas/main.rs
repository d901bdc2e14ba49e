//! Replica safety, on one machine: two instances each of the idp, verify-rar and the signals
//! transmitter against one Postgres, started by the same launcher as `just up` ([`stack::launch::Stack::start_replica`]:
//! the first instance's exact environment on another port; a second idp keeps the first's
//! `IDP_ISSUER`, as replicas behind a load balancer share one issuer URL). Requests go to both
//! instances alternately, as a round-robin balancer would send them.
//!
//! - `approvals`: an approval started on one idp is listed, streamed, approved and collected
//!   through the other; an actor token spent on one is refused by the other; a code and a
//!   refresh token issued by one are redeemed at the other.
//! - `sessions`: a session revoked through one idp is dead on both idps and both issuers.
//! - `reaper`: leases issued through both issuers, expired at once, are each revoked exactly once
//!   by two racing reapers.
//! - `events`: the idp's approvals SSE stream on each instance shows approvals created on the
//!   other, and one `LISTEN security_events` hears every instance's decisions, as does the
//!   web UI's live stream (SSE), which shows each of them to the page.
//! - `signals`: a stream made on one transmitter is served by the other; a session revoked
//!   through either idp reaches a poll receiver as exactly one SET, whichever transmitter is
//!   asked, and SETs acknowledged at one are gone from both.
//! - `deploy_keys`: the keys a deployment mounts load as the services load them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly where it stands"
)]

mod approvals;
mod cluster;
mod deploy_keys;
mod events;
mod reaper;
mod sessions;
mod signals;
