//! The integration tests of `airlock-store`, one module per concern, in one test binary
//! (one link, not one per file).

#![allow(clippy::unwrap_used)]

mod approvals;
mod audit;
mod postgres;
mod quotas;
