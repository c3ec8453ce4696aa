//! [`Store`]: the database a gateway runs on, whichever backend it is, and
//! what the audit commands, the sessions API and the replay page read.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use airlock_approval::ApprovalStore;
use airlock_policy::QuotaStore;
use airlock_recorder::{AuditSink, ChainedEvent};
use aws_lc_rs::signature::Ed25519KeyPair;

use crate::audit::{Checkpoint, EventPages, Pruned, SessionSummary, TrustedCheckpoints};
use crate::{ChainVerification, PostgresStore, SqliteStore, StoreError};

/// The embedded SQLite file, or PostgreSQL shared by replicas. Cheap to clone.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use airlock_store::{SqliteStore, Store};
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = Store::from(SqliteStore::open(dir.path().join("airlock.db")).await.unwrap());
/// let reports = store.verify_against(&Default::default()).await.unwrap();
/// assert_eq!(reports.len(), 1, "SQLite keeps one chain");
/// assert!(reports[0].report.is_ok());
/// # });
/// ```
#[derive(Clone, Debug)]
pub enum Store {
    /// One SQLite file.
    Sqlite(SqliteStore),
    /// A PostgreSQL database, one audit chain per replica.
    Postgres(PostgresStore),
}

impl From<SqliteStore> for Store {
    fn from(store: SqliteStore) -> Self {
        Store::Sqlite(store)
    }
}

impl From<PostgresStore> for Store {
    fn from(store: PostgresStore) -> Self {
        Store::Postgres(store)
    }
}

impl Store {
    /// The approvals kept here.
    pub fn approvals(&self) -> Arc<dyn ApprovalStore> {
        match self {
            Store::Sqlite(store) => Arc::new(store.clone()),
            Store::Postgres(store) => Arc::new(store.clone()),
        }
    }

    /// Quota use counted here (shared by replicas on PostgreSQL).
    pub fn quotas(&self) -> Arc<dyn QuotaStore> {
        match self {
            Store::Sqlite(store) => Arc::new(store.clone()),
            Store::Postgres(store) => Arc::new(store.clone()),
        }
    }

    /// Tells `notifier` of approval events other replicas cause (see
    /// [`PostgresStore::forward_events`]); `None` for SQLite, whose one
    /// process causes them all.
    pub fn forward_events(
        &self,
        notifier: Arc<dyn airlock_approval::Notifier>,
    ) -> Option<crate::EventForwarding> {
        match self {
            Store::Sqlite(_) => None,
            Store::Postgres(store) => Some(store.forward_events(notifier)),
        }
    }

    /// Where the recorder writes (for PostgreSQL: this replica's chain).
    pub fn audit_sink(&self) -> Arc<dyn AuditSink> {
        match self {
            Store::Sqlite(store) => Arc::new(store.clone()),
            Store::Postgres(store) => Arc::new(store.clone()),
        }
    }

    /// The file's path, or `host:port/dbname`, for messages.
    pub fn name(&self) -> String {
        match self {
            Store::Sqlite(store) => store.path().display().to_string(),
            Store::Postgres(store) => store.database().to_owned(),
        }
    }

    /// The `limit` sessions with the most recent activity, newest first.
    ///
    /// # Errors
    ///
    /// The database cannot be read.
    pub async fn sessions(&self, limit: usize) -> Result<Vec<SessionSummary>, StoreError> {
        match self {
            Store::Sqlite(store) => store.sessions(limit).await,
            Store::Postgres(store) => store.sessions(limit).await,
        }
    }

    /// Every event of session `id`, in order; empty if there is none.
    ///
    /// # Errors
    ///
    /// The database cannot be read.
    pub async fn session_events(&self, id: &str) -> Result<Vec<ChainedEvent>, StoreError> {
        match self {
            Store::Sqlite(store) => store.session_events(id).await,
            Store::Postgres(store) => store.session_events(id).await,
        }
    }

    /// Every event at or after `since`, in pages (each chain in order).
    pub fn events_since(&self, since: SystemTime) -> EventPages {
        match self {
            Store::Sqlite(store) => store.events_since(since),
            Store::Postgres(store) => store.events_since(since),
        }
    }

    /// Verifies every chain (SQLite has one, named `""`).
    ///
    /// # Errors
    ///
    /// The database cannot be read.
    pub async fn verify_against(
        &self,
        trusted: &TrustedCheckpoints,
    ) -> Result<Vec<ChainVerification>, StoreError> {
        match self {
            Store::Sqlite(store) => Ok(vec![ChainVerification {
                chain: String::new(),
                report: store.verify_against(trusted.clone()).await?,
            }]),
            Store::Postgres(store) => store.verify_against(trusted).await,
        }
    }

    /// Signs the head of every chain, and stores the checkpoints.
    ///
    /// # Errors
    ///
    /// The database cannot be read or written.
    pub async fn checkpoint(
        &self,
        signing_key: &Ed25519KeyPair,
    ) -> Result<Vec<(String, Checkpoint)>, StoreError> {
        match self {
            Store::Sqlite(store) => Ok(vec![(String::new(), store.checkpoint(signing_key).await?)]),
            Store::Postgres(store) => store.checkpoint(signing_key).await,
        }
    }

    /// Deletes the oldest whole sessions ([`SqliteStore::prune`]).
    ///
    /// # Errors
    ///
    /// The database cannot be written; on PostgreSQL, pruning is not built
    /// yet (use the database's own retention, and verify from a checkpoint).
    pub async fn prune(
        &self,
        max_age: Option<Duration>,
        max_bytes: Option<u64>,
    ) -> Result<Pruned, StoreError> {
        match self {
            Store::Sqlite(store) => store.prune(max_age, max_bytes).await,
            Store::Postgres(store) => Err(StoreError::PostgresConfig(format!(
                "pruning {} is not supported yet: `airlock audit prune` works on SQLite files",
                store.database()
            ))),
        }
    }
}
