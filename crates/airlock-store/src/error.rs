//! [`StoreError`]: why the database could not be opened or used.

use std::path::PathBuf;

use airlock_approval::ApprovalError;

/// Why the database could not be opened or used. Each names the file (or
/// the PostgreSQL database, as `host:port/dbname`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite could not open or create the file.
    #[error(
        "cannot open the database {}: {source}; check that its directory exists and is writable",
        path.display()
    )]
    Open {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The file exists but is not an SQLite database.
    #[error(
        "{} is not an SQLite database (it may be another kind of file, or damaged); \
         point the store at another path, or move the file aside to start a new database",
        path.display()
    )]
    NotADatabase {
        /// The file.
        path: PathBuf,
    },
    /// The file was written by a newer Airlock, with a schema this one does not know.
    #[error(
        "the database {} has schema version {found}, but this Airlock knows versions up to {known}: \
         it was written by a newer Airlock; upgrade Airlock, or point it at another file",
        path.display()
    )]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its schema version (`PRAGMA user_version`).
        found: u32,
        /// The newest version this build knows.
        known: u32,
    },
    /// A migration failed; the file was left at the version before it.
    #[error("cannot upgrade the database {} to schema version {version}: {source}", path.display())]
    Migrate {
        /// The file.
        path: PathBuf,
        /// The version it failed to reach.
        version: u32,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// A query failed.
    #[error("the database {} failed: {source}", path.display())]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// A stored approval does not read back as one.
    #[error(
        "the database {}: approval {id} is stored in a form this Airlock cannot read: {reason}",
        path.display()
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The approval's id, as stored.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A stored audit event does not read back as one (`airlock audit
    /// verify` tells whether it was tampered with).
    #[error(
        "the database {}: audit event {seq} is stored in a form this Airlock cannot read: {reason}; \
         run `airlock audit verify` to check the trail",
        path.display()
    )]
    AuditCorrupt {
        /// The file.
        path: PathBuf,
        /// The event's place in the chain.
        seq: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A file of the audit trail's event documents (beside the database)
    /// could not be created, written, read or deleted.
    #[error(
        "cannot {action} {}, which holds audit event documents: {source}; \
         check that the directory beside the database is writable and the disk has room",
        path.display()
    )]
    AuditFile {
        /// The file or directory.
        path: PathBuf,
        /// What was being done to it (`write`, `open`, ...).
        action: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A batch of audit events does not continue the stored chain.
    #[error(
        "the database {}: audit events {first}.. do not continue the stored chain, which ends at \
         event {head}: {reason}; is another gateway writing its own chain into this file?",
        path.display()
    )]
    NotConsecutive {
        /// The file.
        path: PathBuf,
        /// The first event of the refused batch.
        first: u64,
        /// The last event stored.
        head: u64,
        /// What does not follow.
        reason: String,
    },
    /// A checkpoint signing key could not be created, read or used.
    #[error("the signing key {}: {reason}", path.display())]
    SigningKey {
        /// The key file.
        path: PathBuf,
        /// What went wrong, and what to do.
        reason: String,
    },
    /// The PostgreSQL settings cannot be used (the URL, the TLS roots).
    #[error("the PostgreSQL store cannot be set up: {0}")]
    PostgresConfig(String),
    /// The PostgreSQL database cannot be reached (down, unreachable, out of
    /// connections): what needs it fails closed until it is back.
    #[error(
        "the database {database} is unavailable: {reason}; requests that need it are refused \
         until it is back"
    )]
    Unavailable {
        /// `host:port/dbname`.
        database: String,
        /// Why.
        reason: String,
    },
    /// A PostgreSQL migration failed; the database was left at the version before it.
    #[error(
        "cannot upgrade the database {database} to schema version {version}: {}",
        crate::postgres::describe(source)
    )]
    PostgresMigrate {
        /// `host:port/dbname`.
        database: String,
        /// The version it failed to reach.
        version: u32,
        /// What PostgreSQL said.
        source: tokio_postgres::Error,
    },
    /// A PostgreSQL query failed.
    #[error(
        "the database {database} failed: {}",
        crate::postgres::describe(source)
    )]
    Postgres {
        /// `host:port/dbname`.
        database: String,
        /// What PostgreSQL (or its client) said.
        source: tokio_postgres::Error,
    },
    /// The thread running the database work stopped (it panicked, or the
    /// runtime is shutting down).
    #[error("the database {} worker stopped: {reason}", path.display())]
    Worker {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl From<StoreError> for airlock_recorder::SinkError {
    fn from(error: StoreError) -> Self {
        airlock_recorder::SinkError(error.to_string())
    }
}

impl From<StoreError> for airlock_policy::QuotaError {
    fn from(error: StoreError) -> Self {
        airlock_policy::QuotaError(error.to_string())
    }
}

impl From<StoreError> for ApprovalError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable { .. } => ApprovalError::Unavailable(error.to_string()),
            error => ApprovalError::Store(error.to_string()),
        }
    }
}
