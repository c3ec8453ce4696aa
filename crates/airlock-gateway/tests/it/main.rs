//! The integration tests of `airlock-gateway`, one module per concern, in one test binary
//! (one link, not one per file).

#![allow(clippy::unwrap_used)]

mod default_pack;
