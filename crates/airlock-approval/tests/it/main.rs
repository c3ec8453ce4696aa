//! The integration tests of `airlock-approval`, one module per concern, in one test binary
//! (one link, not one per file).

#![allow(clippy::unwrap_used)]

mod api;
mod approval;
mod conformance;
mod notify;
mod page;
