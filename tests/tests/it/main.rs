//! The integration tests of `airlock-tests`, one module per concern, in one test binary
//! (one link, not one per file).

#![allow(clippy::unwrap_used)]

mod agents;
mod answers;
mod approval;
mod approval_page;
mod connections;
mod credentials;
mod disk;
mod forward_proxy;
mod forwarding;
mod identity;
mod logs;
mod masking;
mod policy;
mod quotas;
mod recording;
mod refusals;
mod reveal;
mod storage;
mod upstream_identities;
