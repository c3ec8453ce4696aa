//! The integration tests of `airlock-cli`, one module per concern, in one test binary
//! (one link, not one per file).

#![allow(clippy::unwrap_used)]

mod cli;
mod crash;
mod logs;
mod observe;
mod one_cpu;
mod quota;
mod replay;
mod replicas;
mod support;
