//! The integration tests of `airlock-policy`, one module per concern, in one test binary
//! (one link, not one per file).

#![allow(clippy::unwrap_used)]

mod agents;
mod decisions;
mod layer;
mod quotas;
mod reload;
