//! The integration tests of `airlock-masking`, one module per concern, in one test binary
//! (one link, not one per file).

#![allow(clippy::unwrap_used)]

mod detectors;
mod layer;
mod logs;
mod properties;
mod reveal;
mod rules;
