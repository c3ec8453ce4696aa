//! The integration tests of `airlock-recorder`, one module per concern, in one test binary
//! (one link, not one per file).

#![allow(clippy::unwrap_used)]

mod durability;
mod events;
mod http_server;
mod load;
mod sessions;
mod support;
