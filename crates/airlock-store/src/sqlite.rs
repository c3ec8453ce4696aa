//! Opening the database file: [`SqliteStore::open`], its settings and its
//! migrations.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use airlock_approval::StateWatchers;
use rusqlite::{Connection, ErrorCode, TransactionBehavior};

use crate::StoreError;
use crate::wal::Checkpointer;

/// How long a write waits for another connection's (another process's)
/// transaction before it fails with "database is locked".
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The page size of a new database file: SQLite's default, 4 KiB. While
/// audit rows held their event's 2-3 KiB document, 16 KiB pages (six rows
/// each) wrote fewer pages per event; with the documents in files of their
/// own ([`crate::audit`]) a row is a few hundred bytes, and each commit
/// rewrites a handful of partly filled pages (the last leaf of the table
/// and of each index): 4 KiB pages write 1.1 KB of WAL per recorded request
/// under the bench's load, 16 KiB pages 2.4 KB. Existing files keep their
/// size (it changes only before the first table, or with `VACUUM`, never
/// run here).
const PAGE_SIZE: i64 = 4 * 1024;

/// The schema, one migration per version: `MIGRATIONS[n]` takes a database
/// from `PRAGMA user_version` `n` to `n + 1`. Append only; never edit one
/// that shipped.
const MIGRATIONS: &[&str] = &[
    // 1: approvals. `doc` is the whole ApprovalRequest as JSON; the other
    // columns are copies of its fields, for the indexes.
    "CREATE TABLE approvals (
        id TEXT PRIMARY KEY NOT NULL,
        state TEXT NOT NULL,
        wait TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        grant_expires_at INTEGER,
        doc TEXT NOT NULL,
        sealed BLOB
    );
    CREATE INDEX approvals_by_state ON approvals (state, created_at);
    CREATE INDEX approvals_by_fingerprint ON approvals (fingerprint, state);",
    // 2: the audit trail. `seq` is the event's place in the hash chain;
    // `doc` is the AuditEvent JSON exactly as serialized; the other columns
    // are copies of its fields, for the indexes (`verify` checks they agree).
    // Checkpoints: where pruning cut the chain ('pruned'), and signed heads
    // ('signed').
    "CREATE TABLE audit_events (
        seq INTEGER PRIMARY KEY NOT NULL,
        id TEXT NOT NULL,
        time_ms INTEGER NOT NULL,
        session_id TEXT NOT NULL,
        principal_id TEXT,
        request_id TEXT,
        status INTEGER NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL,
        doc TEXT NOT NULL
    );
    CREATE INDEX audit_events_by_session ON audit_events (session_id, seq);
    CREATE INDEX audit_events_by_time ON audit_events (time_ms);
    CREATE TABLE audit_checkpoints (
        seq INTEGER NOT NULL,
        hash TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('pruned', 'signed')),
        signature TEXT,
        public_key TEXT
    );
    CREATE INDEX audit_checkpoints_by_kind ON audit_checkpoints (kind, seq);",
    // 3: quota use, one row per use (an operation, or an answer's bytes):
    // a window sums the rows within it, so it slides.
    "CREATE TABLE quota_uses (
        quota TEXT NOT NULL,
        subject TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        amount INTEGER NOT NULL
    );
    CREATE INDEX quota_uses_by_key ON quota_uses (quota, subject, at_ms);",
    // 4: the session index, written in bulk. An index on audit_events
    // (session_id, seq) took entries in as many places per commit as the
    // batch had sessions: about one more page per event with many agents.
    // `audit_session_index` holds (session_id, seq) up to
    // `audit_session_indexed.through`; the appends fill it in sorted runs
    // of thousands (`audit::SESSION_INDEX_EVERY`), and the events after
    // `through` are read from audit_events (the view joins both).
    "CREATE TABLE audit_session_index (
        session_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (session_id, seq)
    ) WITHOUT ROWID;
    INSERT INTO audit_session_index (session_id, seq)
        SELECT session_id, seq FROM audit_events ORDER BY session_id, seq;
    CREATE TABLE audit_session_indexed (through INTEGER NOT NULL);
    INSERT INTO audit_session_indexed (through)
        SELECT COALESCE(MAX(seq), 0) FROM audit_events;
    DROP INDEX audit_events_by_session;
    CREATE VIEW audit_event_sessions AS
        SELECT session_id, seq FROM audit_session_index
        UNION ALL
        SELECT session_id, seq FROM audit_events
            WHERE seq > (SELECT through FROM audit_session_indexed);",
    // 5: event documents in files beside the database (`audit::documents`):
    // a new row's `doc` is empty and `doc_file` (its segment), `doc_at` and
    // `doc_bytes` say where the document lies; rows from before keep theirs
    // inline (`doc_file` NULL). What session summaries read from documents
    // is copied into columns (`verify` checks they agree): `denied` (1 for
    // a refused request), `principal_name`, `approval_id`.
    "ALTER TABLE audit_events ADD COLUMN doc_file INTEGER;
    ALTER TABLE audit_events ADD COLUMN doc_at INTEGER;
    ALTER TABLE audit_events ADD COLUMN doc_bytes INTEGER;
    ALTER TABLE audit_events ADD COLUMN denied INTEGER;
    ALTER TABLE audit_events ADD COLUMN principal_name TEXT;
    ALTER TABLE audit_events ADD COLUMN approval_id TEXT;",
    // 6: the time index, written in bulk like the session index. The index
    // on audit_events (time_ms) took an entry per event in every commit
    // and put its last page into the WAL each time: ~3 us of a recorded
    // request's ~65 on the bench (docs/bench/notes.md). `audit_time_index`
    // holds (time_ms, seq) up to the same `audit_session_indexed.through`
    // (how far both bulk indexes reach); the view `audit_event_times`
    // adds the events after it.
    "CREATE TABLE audit_time_index (
        time_ms INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (time_ms, seq)
    ) WITHOUT ROWID;
    INSERT INTO audit_time_index (time_ms, seq)
        SELECT time_ms, seq FROM audit_events
        WHERE seq <= (SELECT through FROM audit_session_indexed)
        ORDER BY time_ms, seq;
    DROP INDEX audit_events_by_time;
    CREATE VIEW audit_event_times AS
        SELECT time_ms, seq FROM audit_time_index
        UNION ALL
        SELECT time_ms, seq FROM audit_events
            WHERE seq > (SELECT through FROM audit_session_indexed);",
];

/// The schema version this build writes, and the newest it can read.
fn known_version() -> u32 {
    u32::try_from(MIGRATIONS.len()).unwrap_or(u32::MAX)
}

/// Approvals and the audit trail in one SQLite database file.
///
/// The file is in WAL mode, so readers never wait for a writer. Every change
/// is one `BEGIN IMMEDIATE` transaction, so several handles on one file, in
/// one process or several, keep the [rules](airlock_approval::rules): a
/// grant is used once. State changes reach [`subscribe`] receivers of the
/// handle that made them (other handles' waiters find them by polling).
/// Work runs on Tokio's blocking threads, never on the runtime's.
///
/// Clones share the connection.
///
/// [`subscribe`]: airlock_approval::ApprovalStore::subscribe
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use airlock_approval::{ApprovalState, ApprovalStore, conformance};
/// use airlock_core::ApprovalWait;
/// use airlock_store::SqliteStore;
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("airlock.db");
/// let store = SqliteStore::open(&path).await.unwrap();
///
/// // Test helpers (airlock-approval's `conformance` feature) build the request.
/// let agent = conformance::principal("agent", &[]);
/// let request = conformance::pending_request(&agent, ApprovalWait::Hold);
/// store.create(request.clone(), None).await.unwrap();
/// drop(store);
///
/// // A restart: the approval is still there, and can still be approved.
/// let store = SqliteStore::open(&path).await.unwrap();
/// let carol = conformance::principal("carol", &[]);
/// let approved = store.decide(request.id, &carol, true, None).await.unwrap();
/// assert_eq!(approved.state, ApprovalState::Approved);
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pub(crate) db: Arc<Database>,
    pub(crate) approval_watchers: Arc<StateWatchers>,
    /// Below this many free bytes, new approvals are refused.
    pub(crate) min_free_bytes: u64,
    /// How large an audit document file grows before the next one starts.
    pub(crate) segment_bytes: u64,
}

impl SqliteStore {
    /// Opens the database at `path`, creating it if missing, and brings its
    /// schema up to date.
    ///
    /// Async because opening and migrating touch the disk; the work runs on
    /// a blocking thread of the current Tokio runtime (call it within one).
    ///
    /// Fails, naming the file, when it cannot be created, is not an SQLite
    /// database, or was written by a newer Airlock.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let opening = path.clone();
        let db = tokio::task::spawn_blocking(move || Database::open(opening))
            .await
            .map_err(|error| StoreError::Worker {
                path,
                reason: error.to_string(),
            })??;
        Ok(Self {
            db: Arc::new(db),
            approval_watchers: Arc::default(),
            min_free_bytes: 0,
            segment_bytes: crate::audit::SEGMENT_BYTES,
        })
    }

    /// The disk guard: while the file system holding the database has
    /// `floor` bytes free or fewer, new approvals are refused with
    /// [`ApprovalError::NoSpace`](airlock_approval::ApprovalError::NoSpace),
    /// so that pending requests cannot fill the disk the audit trail needs.
    /// Reads, decisions and audit events go on. `0` (the default) turns it
    /// off; SQLite running out of space refuses with the same error.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use airlock_approval::{ApprovalError, ApprovalStore, conformance};
    /// use airlock_core::ApprovalWait;
    /// use airlock_store::SqliteStore;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = SqliteStore::open(dir.path().join("airlock.db")).await.unwrap().min_free_bytes(u64::MAX);
    /// let agent = conformance::principal("agent", &[]);
    /// let request = conformance::pending_request(&agent, ApprovalWait::Hold);
    /// let refused = store.create(request, None).await.unwrap_err();
    /// assert!(matches!(refused, ApprovalError::NoSpace { .. }), "{refused}");
    /// assert!(store.list(None).await.unwrap().is_empty(), "reads go on");
    /// # });
    /// ```
    #[must_use]
    pub fn min_free_bytes(mut self, floor: u64) -> Self {
        self.min_free_bytes = floor;
        self
    }

    /// How large a file of audit event documents grows (64 MiB by default)
    /// before the next one starts: retention ([`prune`](Self::prune))
    /// deletes whole files, so the trail's disk use lags its retention by up
    /// to this much. See [`audit`](crate::audit) for where the files are.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use airlock_store::SqliteStore;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = SqliteStore::open(dir.path().join("airlock.db")).await.unwrap();
    /// let store = store.audit_segment_bytes(8 << 20);
    /// # drop(store);
    /// # });
    /// ```
    #[must_use]
    pub fn audit_segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes.max(1);
        self
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.db.path
    }
}

/// One connection to the file, used by one blocking task at a time.
#[derive(Debug)]
pub(crate) struct Database {
    pub(crate) path: PathBuf,
    /// Checkpoints the WAL for `connection` (see [`crate::wal`]). Declared
    /// first so it is dropped first: its thread stops and its connection
    /// closes before the writer's, which, closing last, checkpoints the rest
    /// and removes the WAL.
    _checkpointer: Checkpointer,
    connection: Mutex<Connection>,
}

impl Database {
    /// Opens (or creates) the file, sets it up and migrates it. Blocking.
    fn open(path: PathBuf) -> Result<Self, StoreError> {
        let failed = |source: rusqlite::Error| opening_failed(&path, source);
        owner_only(&path);
        crate::audit::warn_if_trail_shared(&path);
        let connection = Connection::open(&path).map_err(failed)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(failed)?;
        // Refuse a newer schema before changing anything in the file.
        let found = user_version(&connection).map_err(failed)?;
        if found > known_version() {
            return Err(StoreError::TooNew {
                path,
                found,
                known: known_version(),
            });
        }
        // Before WAL, the only time a new file takes it (see PAGE_SIZE).
        connection
            .pragma_update(None, "page_size", PAGE_SIZE)
            .map_err(failed)?;
        let mode: String = connection
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(failed)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), mode, "SQLite did not switch to WAL mode");
        }
        // With WAL, NORMAL loses no committed transaction on a process
        // crash (only, perhaps, the last ones on a power loss), and is much faster.
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(failed)?;
        // Erased means erased: freed content (a used sealed request) is
        // overwritten with zeros, not left in free pages.
        connection
            .pragma_update(None, "secure_delete", true)
            .map_err(failed)?;
        connection
            .pragma_update(None, "foreign_keys", true)
            .map_err(failed)?;
        let mut connection = connection;
        migrate(&path, &mut connection)?;
        let checkpointer = Checkpointer::start(&path, &mut connection)?;
        Ok(Self {
            path,
            _checkpointer: checkpointer,
            connection: Mutex::new(connection),
        })
    }

    /// Runs `work` with the connection (and the file's path, for errors) on
    /// a blocking thread, one at a time.
    pub(crate) async fn call<T, E>(
        self: &Arc<Self>,
        work: impl FnOnce(&mut Connection, &Path) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let db = Arc::clone(self);
        tokio::task::spawn_blocking(move || work(&mut db.lock(), &db.path))
            .await
            .map_err(|error| {
                E::from(StoreError::Worker {
                    path: self.path.clone(),
                    reason: error.to_string(),
                })
            })?
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic mid-transaction rolled it back (the Transaction dropped).
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Creates the file readable by its owner only (SQLite gives its `-wal` and
/// `-shm` files the same mode): it holds sealed requests and the audit
/// trail. An existing file readable by others is used, with a warning.
fn owner_only(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        match std::fs::metadata(path) {
            Ok(metadata) => {
                let mode = metadata.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    tracing::warn!(
                        path = %path.display(),
                        mode = format_args!("{mode:o}"),
                        "the database is readable by others than its owner; fix: chmod 600 it (and its -wal and -shm files)"
                    );
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                // Created empty, owner-only; SQLite makes it a database. If
                // this fails (no such directory, another process was first),
                // SQLite's own open reports what matters.
                let _ = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path);
            }
            // Unreadable metadata: SQLite's open reports it.
            Err(_) => {}
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

fn user_version(connection: &Connection) -> rusqlite::Result<u32> {
    connection.pragma_query_value(None, "user_version", |row| row.get(0))
}

fn opening_failed(path: &Path, source: rusqlite::Error) -> StoreError {
    match source.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => StoreError::NotADatabase {
            path: path.to_path_buf(),
        },
        _ => StoreError::Open {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// Applies the migrations the file lacks, in one transaction (a second
/// process opening the file at the same time waits, then finds it done).
fn migrate(path: &Path, connection: &mut Connection) -> Result<(), StoreError> {
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|source| opening_failed(path, source))?;
    let found = user_version(&transaction).map_err(|source| opening_failed(path, source))?;
    let known = known_version();
    if found > known {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            known,
        });
    }
    for (version, sql) in (1..=known).zip(MIGRATIONS).skip(found as usize) {
        let failed = |source| StoreError::Migrate {
            path: path.to_path_buf(),
            version,
            source,
        };
        transaction.execute_batch(sql).map_err(failed)?;
        transaction
            .pragma_update(None, "user_version", version)
            .map_err(failed)?;
    }
    transaction.commit().map_err(|source| StoreError::Migrate {
        path: path.to_path_buf(),
        version: known,
        source,
    })?;
    if found < known {
        tracing::info!(path = %path.display(), from = found, to = known, "database schema upgraded");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The review's finding: `airlock.db` and its WAL were created 0644.
    #[cfg(unix)]
    #[tokio::test]
    async fn the_database_and_its_wal_are_created_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("airlock.db");
        let store = SqliteStore::open(&path).await.unwrap();
        for file in ["airlock.db", "airlock.db-wal", "airlock.db-shm"] {
            let mode = std::fs::metadata(dir.path().join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}: {mode:o}");
        }
        drop(store);
    }

    fn page_size(path: &Path) -> i64 {
        Connection::open(path)
            .unwrap()
            .pragma_query_value(None, "page_size", |row| row.get(0))
            .unwrap()
    }

    #[tokio::test]
    async fn a_new_file_has_4_kib_pages_and_an_old_file_keeps_its_own() {
        use airlock_recorder::{AuditEvent, AuditSink as _, ChainHead, chain::EXAMPLE_EVENT};
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new.db");
        drop(SqliteStore::open(&new).await.unwrap());
        assert_eq!(page_size(&new), PAGE_SIZE);

        // A file made by an earlier build, with 16 KiB pages.
        let old = dir.path().join("old.db");
        let mut connection = Connection::open(&old).unwrap();
        connection.pragma_update(None, "page_size", 16384).unwrap();
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .unwrap();
        migrate(&old, &mut connection).unwrap();
        drop(connection);
        let store = SqliteStore::open(&old).await.unwrap();
        let event: AuditEvent = serde_json::from_str(EXAMPLE_EVENT).unwrap();
        let mut head = ChainHead::default();
        store.append(&[head.link(event)]).await.unwrap();
        assert_eq!(store.head().await.unwrap(), Some(head));
        drop(store);
        assert_eq!(page_size(&old), 16384);
    }

    fn connection() -> Connection {
        Connection::open_in_memory().unwrap()
    }

    #[test]
    fn migrating_a_new_file_applies_every_migration_once() {
        let mut db = connection();
        migrate(Path::new("mem"), &mut db).unwrap();
        assert_eq!(user_version(&db).unwrap(), known_version());
        // Again: nothing left to apply, and no error for tables that exist.
        migrate(Path::new("mem"), &mut db).unwrap();
        assert_eq!(user_version(&db).unwrap(), known_version());
    }

    #[test]
    fn a_file_from_a_newer_build_is_refused_not_touched() {
        let mut db = connection();
        db.pragma_update(None, "user_version", known_version() + 1)
            .unwrap();
        let error = migrate(Path::new("new.db"), &mut db).unwrap_err();
        assert!(
            matches!(error, StoreError::TooNew { found, known, .. } if found == known + 1),
            "{error}"
        );
        assert_eq!(user_version(&db).unwrap(), known_version() + 1);
    }

    #[test]
    fn a_failed_migration_leaves_the_version_where_it_was() {
        let mut db = connection();
        // A table the first migration creates, already there: it fails.
        db.execute_batch("CREATE TABLE approvals (x INTEGER);")
            .unwrap();
        let error = migrate(Path::new("clash.db"), &mut db).unwrap_err();
        assert!(
            matches!(error, StoreError::Migrate { version: 1, .. }),
            "{error}"
        );
        assert_eq!(user_version(&db).unwrap(), 0);
    }
}
