//! Airlock's storage, in one of two backends:
//!
//! - [`PostgresStore`], for several gateway replicas sharing one
//!   PostgreSQL: approvals whose decisions reach every replica's waiters,
//!   and one audit chain per replica (see its module docs);
//! - [`SqliteStore`], the embedded default, described below.
//!
//! [`SqliteStore`] keeps approval
//! requests (an [`ApprovalStore`](airlock_approval::ApprovalStore)), so a
//! pending approval survives a restart and several gateway processes can
//! share one file, and the tamper-evident audit trail (an
//! [`AuditSink`](airlock_recorder::AuditSink); see [`audit`] for reading,
//! verifying, pruning and signing it, and [`har`] for HAR export).
//!
//! SQLite is bundled: nothing needs installing.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use airlock_approval::{ApprovalLayer, ApprovalStore, LogNotifier};
//! use airlock_store::SqliteStore;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = Arc::new(SqliteStore::open(dir.path().join("airlock.db")).await.unwrap());
//! let layer = ApprovalLayer::new(store.clone(), Arc::new(LogNotifier));
//! assert!(store.list(None).await.unwrap().is_empty());
//! # drop(layer);
//! # });
//! ```
//!
//! A file that is not an SQLite database, or that a newer Airlock wrote, is
//! refused with a [`StoreError`] naming it.

mod approval_row;
mod approvals;
pub mod audit;
mod disk;
mod error;
pub mod har;
mod postgres;
mod quotas;
mod sessions_api;
mod sqlite;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod wal;

pub use error::StoreError;
pub use postgres::{ChainVerification, EventForwarding, PostgresOptions, PostgresStore};
pub use sessions_api::SessionsApi;
pub use sqlite::SqliteStore;
pub use store::Store;
