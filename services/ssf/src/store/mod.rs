//! All of Antenna's SQL, on the `ssf` schema: streams and their subjects, and the SET queue.

pub mod sets;
pub mod streams;
