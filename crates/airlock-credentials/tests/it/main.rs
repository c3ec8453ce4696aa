//! The integration tests of `airlock-credentials`, one module per concern.

#![allow(clippy::unwrap_used)]

mod cache;
mod chain;
mod client_certificate;
mod client_secret;
mod managed_identity;
mod on_behalf_of;
mod support;
mod workload_identity;
