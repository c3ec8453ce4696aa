//! The `ApprovalStore` conformance suite against `MemoryApprovalStore`.
//!
//! The `conformance` feature is on for this crate's own tests through its
//! self dev-dependency (see Cargo.toml), so plain `cargo nextest run` runs it.

use std::sync::Arc;

use airlock_approval::{ApprovalStore, MemoryApprovalStore};

async fn memory() -> ((), Arc<dyn ApprovalStore>) {
    ((), Arc::new(MemoryApprovalStore::new()))
}

airlock_approval::conformance_tests!(memory);
