//! The integration tests of `airlock-azure`, one module per concern, in one test binary
//! (one link, not one per file).

#![allow(clippy::unwrap_used)]

mod classification;
mod layer;
mod properties;
mod secret_responses;
mod smuggling;
