//! The audit trail in SQLite: [`AuditSink`] for [`SqliteStore`], and what
//! `airlock audit` and `airlock sessions` are built on: reading sessions and
//! exports ([`read`]), verifying the chain ([`verify`]), retention
//! ([`prune`]) and signed checkpoints ([`checkpoint`]).
//!
//! Table `audit_events` holds one row per event: `seq` (its place in the
//! chain, the primary key), `prev_hash`, `hash`, where the event's
//! document (the [`AuditEvent`](airlock_recorder::AuditEvent) JSON exactly
//! as serialized) lies in the trail's document files beside the database
//! (`doc_file`, `doc_at`, `doc_bytes`; files of JSON lines, written once:
//! see `src/audit/documents.rs`; rows written
//! before those files hold theirs in `doc`), and copies of a few fields for
//! the indexes and listings (`id`, `time_ms`, `session_id`, `principal_id`,
//! `request_id`, `status`, `denied`, `principal_name`, `approval_id`),
//! which `verify` checks against the document. The events of a
//! session are found through `audit_session_index` (`session_id`, `seq`),
//! which appends fill in sorted runs of [`SESSION_INDEX_RUN`] events
//! rather than one entry per event: from many agents at once, an index on
//! the events took an entry in as many places per commit as the batch had
//! sessions. The view `audit_event_sessions` adds the events not indexed
//! yet. The first event at or after a time (where pruning by age and
//! exports since a time start) is found the same way, through
//! `audit_time_index` (`time_ms`, `seq`, filled in the same runs) and the
//! view `audit_event_times`: an index on the events rewrote its last page
//! in every commit. Table `audit_checkpoints` remembers where pruning cut
//! the chain and the heads that were signed.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use airlock_recorder::{AuditEvent, AuditSink, ChainHead, chain::EXAMPLE_EVENT};
//! use airlock_store::SqliteStore;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = SqliteStore::open(dir.path().join("airlock.db")).await.unwrap();
//! let event: AuditEvent = serde_json::from_str(EXAMPLE_EVENT).unwrap();
//!
//! let mut head = store.head().await.unwrap().unwrap_or_default();
//! let batch = vec![head.link(event.clone()), head.link(event)];
//! store.append(&batch).await.unwrap();
//!
//! let report = store.verify().await.unwrap();
//! assert!(report.is_ok());
//! assert_eq!((report.events_checked, report.head), (2, head));
//! # });
//! ```
//!
//! [`read`]: SqliteStore::sessions
//! [`verify`]: SqliteStore::verify
//! [`prune`]: SqliteStore::prune
//! [`checkpoint`]: SqliteStore::checkpoint

mod checkpoint;
mod documents;
mod prune;
mod read;
pub mod text;
mod verify;

use std::path::Path;
use std::time::Duration;

use airlock_core::BoxFuture;
use airlock_recorder::{AuditSink, ChainHead, ChainedEvent, SinkError};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, Transaction, TransactionBehavior};

use crate::approval_row::{from_millis, millis};
use crate::{SqliteStore, StoreError};
use documents::{DocReader, DocRef};

pub use checkpoint::{
    CHECKPOINT_CONTEXT, Checkpoint, CheckpointKind, PublicKeyError, checkpoint_message,
    generate_signing_key, load_or_generate_signing_key, load_signing_key, parse_public_key,
    public_key_hex,
};
pub(crate) use documents::{
    SEGMENT_BYTES, flush as flush_documents, warn_if_shared as warn_if_trail_shared,
};
pub use prune::Pruned;
pub use read::{EventPages, SessionSummary};
pub use verify::{AuditProblem, AuditVerification, TrustedCheckpoints};
pub(crate) use verify::{VerifyRow, Walk};

/// A new row: its document is in a segment file (`doc` empty).
const INSERT: &str = "INSERT INTO audit_events
    (seq, id, time_ms, session_id, principal_id, request_id, status, prev_hash, hash, doc,
     doc_file, doc_at, doc_bytes, denied, principal_name, approval_id)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, '', ?10, ?11, ?12, ?13, ?14, ?15)";

/// The columns [`EventRow::from_row`] reads, in its order.
const SELECT_EVENTS: &str = "SELECT seq, id, time_ms, session_id, principal_id, request_id,
    status, prev_hash, hash, doc, doc_file, doc_at, doc_bytes, denied, principal_name, approval_id
    FROM audit_events";

/// How many events one read of a long walk (verify, export) takes.
pub(crate) const PAGE: u32 = 1000;

/// Below this much free space, the trail is not ready to take events again
/// after a failed append (SQLite needs room for WAL frames and checkpoints).
const AUDIT_MIN_FREE_BYTES: u64 = 1024 * 1024;

impl AuditSink for SqliteStore {
    /// Stores the batch in one transaction, or refuses it (nothing stored)
    /// when it does not continue the stored chain: its first event must
    /// follow the stored head, and each the one before it.
    fn append<'a>(&'a self, events: &'a [ChainedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            if events.is_empty() {
                return Ok(());
            }
            // Serialized here (the recorder's writer task, off the request
            // path): the blocking thread only writes.
            let rows = events
                .iter()
                .map(|chained| StoredEvent::new(chained, &self.db.path))
                .collect::<Result<Vec<_>, _>>()?;
            let summaries = events
                .iter()
                .map(|chained| Summary::of(&chained.event))
                .collect();
            let segment_bytes = self.segment_bytes;
            self.db
                .call(move |connection, path| {
                    append_rows(connection, path, &rows, summaries, segment_bytes)
                })
                .await
                .map_err(SinkError::from)
        })
    }

    /// The last event stored; after pruning emptied the table, the last
    /// event pruned; [`ChainHead::default`] for a new database.
    fn head(&self) -> BoxFuture<'_, Result<Option<ChainHead>, SinkError>> {
        Box::pin(async move {
            let head = self
                .db
                .call(|connection, path| stored_head(connection, path))
                .await?;
            Ok(Some(head))
        })
    }

    /// Not ready while the database's file system has under 1 MiB free: a
    /// full disk keeps the gateway refusing (fail-closed) until space returns.
    fn ready(&self) -> BoxFuture<'_, Result<(), SinkError>> {
        let path = self.db.path.clone();
        Box::pin(async move {
            let free = tokio::task::spawn_blocking(move || crate::disk::free_bytes(&path))
                .await
                .map_err(|error| SinkError(error.to_string()))?
                .map_err(|error| SinkError(format!("cannot read the free disk space: {error}")))?;
            if free < AUDIT_MIN_FREE_BYTES {
                return Err(SinkError(format!(
                    "the disk holding {} has {free} bytes free: free some space for the audit trail",
                    self.db.path.display()
                )));
            }
            Ok(())
        })
    }
}

/// One `audit_events` row.
#[derive(Clone, Debug)]
pub(crate) struct StoredEvent {
    pub(crate) seq: u64,
    pub(crate) id: String,
    pub(crate) time_ms: i64,
    pub(crate) session_id: String,
    pub(crate) principal_id: Option<String>,
    pub(crate) request_id: Option<String>,
    pub(crate) status: i64,
    pub(crate) prev_hash: String,
    pub(crate) hash: String,
    pub(crate) doc: String,
}

impl StoredEvent {
    /// The row for `chained`: its event serialized, the index columns copied.
    pub(crate) fn new(chained: &ChainedEvent, path: &Path) -> Result<Self, StoreError> {
        let event = &chained.event;
        let doc = chained
            .event_json()
            .map_err(|error| StoreError::AuditCorrupt {
                path: path.to_path_buf(),
                seq: chained.seq,
                reason: error.to_string(),
            })?
            .to_string();
        Ok(Self {
            seq: chained.seq,
            id: event.id.clone(),
            time_ms: millis(event.time),
            session_id: event.session_id.clone(),
            principal_id: event.principal.as_ref().map(|p| p.id.clone()),
            request_id: event.request_id.clone(),
            status: i64::from(event.status),
            prev_hash: chained.prev_hash.clone(),
            hash: chained.hash.clone(),
            doc,
        })
    }

    /// The chained event the row holds; a `doc` that is not an event is an error.
    pub(crate) fn chained(self, path: &Path) -> Result<ChainedEvent, StoreError> {
        let event = serde_json::from_str(&self.doc).map_err(|error| StoreError::AuditCorrupt {
            path: path.to_path_buf(),
            seq: self.seq,
            reason: error.to_string(),
        })?;
        Ok(ChainedEvent {
            seq: self.seq,
            prev_hash: self.prev_hash,
            hash: self.hash,
            event,
            encoded: None,
        })
    }
}

/// A row of [`SELECT_EVENTS`]: the event, its document still in its
/// segment file when `doc` says where (rows from before files keep it inline).
pub(crate) struct EventRow {
    event: StoredEvent,
    doc: Option<DocRef>,
    /// The summary columns (kept with documents in files).
    summary: Option<Summary>,
}

impl EventRow {
    /// The event's place in the chain.
    pub(crate) fn seq(&self) -> u64 {
        self.event.seq
    }

    /// Reads a row of [`SELECT_EVENTS`].
    pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        let file: Option<u64> = row.get(10)?;
        let (doc, summary) = match file {
            Some(file) => (
                Some(DocRef {
                    file,
                    at: row.get(11)?,
                    bytes: row.get(12)?,
                }),
                Some(Summary {
                    denied: row.get(13)?,
                    principal_name: row.get(14)?,
                    approval_id: row.get(15)?,
                }),
            ),
            None => (None, None),
        };
        Ok(Self {
            event: StoredEvent {
                seq: row.get(0)?,
                id: row.get(1)?,
                time_ms: row.get(2)?,
                session_id: row.get(3)?,
                principal_id: row.get(4)?,
                request_id: row.get(5)?,
                status: row.get(6)?,
                prev_hash: row.get(7)?,
                hash: row.get(8)?,
                doc: row.get(9)?,
            },
            doc,
            summary,
        })
    }

    /// The stored event with its document; one that cannot be read is an
    /// error naming its file.
    pub(crate) fn read(
        mut self,
        documents: &mut DocReader,
        path: &Path,
    ) -> Result<StoredEvent, StoreError> {
        match self.take_document(documents)? {
            Some(doc) => Ok(StoredEvent { doc, ..self.event }),
            None => Err(StoreError::AuditCorrupt {
                path: path.to_path_buf(),
                seq: self.event.seq,
                reason: "its document is missing from the trail's files".to_owned(),
            }),
        }
    }

    /// For [`verify`](SqliteStore::verify): the stored event with its
    /// document (a missing one named), and the summary columns to check.
    pub(crate) fn read_to_verify(
        mut self,
        documents: &mut DocReader,
    ) -> Result<VerifyRow, StoreError> {
        let document = self.take_document(documents)?;
        let missing = match (&document, self.doc) {
            (None, Some(doc)) => Some(documents.segment(doc)),
            _ => None,
        };
        Ok(VerifyRow {
            row: StoredEvent {
                doc: document.unwrap_or_default(),
                ..self.event
            },
            summary: self.summary,
            missing,
        })
    }

    /// The document: inline, or read from its segment; `None` when it is
    /// gone (its segment missing or cut short). Other I/O errors
    /// (permissions) are errors; bytes that are not text are an empty
    /// document (not an event: verify reports it edited).
    fn take_document(&mut self, documents: &mut DocReader) -> Result<Option<String>, StoreError> {
        let Some(doc) = self.doc else {
            return Ok(Some(std::mem::take(&mut self.event.doc)));
        };
        match documents.read(doc) {
            Ok(text) => Ok(Some(text)),
            Err(error) if error.kind() == std::io::ErrorKind::InvalidData => {
                Ok(Some(String::new()))
            }
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::UnexpectedEof
                ) =>
            {
                Ok(None)
            }
            Err(source) => Err(StoreError::AuditFile {
                path: documents.segment(doc),
                action: "read".to_owned(),
                source,
            }),
        }
    }
}

/// Reads the documents of `rows`, in order.
pub(crate) fn with_documents(
    rows: Vec<EventRow>,
    path: &Path,
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut documents = DocReader::new(path);
    rows.into_iter()
        .map(|row| row.read(&mut documents, path))
        .collect()
}

/// What session summaries read of an event, kept in columns of its row:
/// with the document in a file, SQL cannot look into it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Summary {
    /// Refused: denied by policy, or a 403 Airlock answered itself.
    denied: bool,
    principal_name: Option<String>,
    approval_id: Option<String>,
}

impl Summary {
    /// The columns for `event`. `denied` is the rule the session summary's
    /// SQL applies to rows that still hold their document inline.
    pub(crate) fn of(event: &airlock_recorder::AuditEvent) -> Self {
        Self {
            denied: event.decision.as_deref() == Some("deny")
                || (event.status == 403 && event.error_code.is_some()),
            principal_name: event
                .principal
                .as_ref()
                .and_then(|principal| principal.display_name.clone()),
            approval_id: event.approval_id.clone(),
        }
    }

    /// The first column of `self` (stored) that disagrees with `event`.
    pub(crate) fn edited(&self, event: &airlock_recorder::AuditEvent) -> Option<&'static str> {
        let actual = Self::of(event);
        if self.denied != actual.denied {
            Some("denied")
        } else if self.principal_name != actual.principal_name {
            Some("principal_name")
        } else if self.approval_id != actual.approval_id {
            Some("approval_id")
        } else {
            None
        }
    }
}

/// Inserts `rows` after the stored head, all in one `BEGIN IMMEDIATE`
/// transaction, or none if they do not continue the chain; their
/// documents go to the trail's files first.
fn append_rows(
    connection: &mut Connection,
    path: &Path,
    rows: &[StoredEvent],
    summaries: Vec<Summary>,
    segment_bytes: u64,
) -> Result<(), StoreError> {
    let transaction = begin(connection, path)?;
    let head = stored_head(&transaction, path)?;
    check_links(path, &head, rows)?;
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let texts: Vec<&str> = rows.iter().map(|row| row.doc.as_str()).collect();
    let docs = documents::write_batch(&transaction, path, first.seq, &texts, segment_bytes)?;
    {
        let mut insert = transaction.prepare_cached(INSERT).map_err(sqlite(path))?;
        for ((row, doc), summary) in rows.iter().zip(docs).zip(summaries) {
            insert
                .execute(rusqlite::params![
                    row.seq,
                    row.id,
                    row.time_ms,
                    row.session_id,
                    row.principal_id,
                    row.request_id,
                    row.status,
                    row.prev_hash,
                    row.hash,
                    doc.file,
                    doc.at,
                    doc.bytes,
                    summary.denied,
                    summary.principal_name,
                    summary.approval_id,
                ])
                .map_err(sqlite(path))?;
        }
    }
    if let Some(last) = rows.last() {
        index_in_bulk(&transaction, path, last.seq)?;
    }
    transaction.commit().map_err(sqlite(path))
}

/// How many events the bulk indexes (sessions and times) may lag behind
/// the chain's head before an append brings them closer, by
/// [`SESSION_INDEX_RUN`] events.
pub const SESSION_INDEX_EVERY: u64 = 4096;

/// The most events one append adds to the bulk indexes. Indexing all
/// 4 096 at once held that append, and every response waiting for it, for
/// 4-9 ms (timed at 4 500 requests/s); a run of 1 024 holds it a quarter as
/// long. With many agents at once, each agent's entries go in runs a
/// quarter as long too (no CPU difference in the `recording_cost` bench).
pub const SESSION_INDEX_RUN: u64 = 1024;

/// The indexes appends fill in bulk, each holding `(column, seq)` for the
/// events up to `audit_session_indexed.through`: a table, and the column of
/// `audit_events` it indexes.
pub(crate) const BULK_INDEXES: [(&str, &str); 2] = [
    ("audit_session_index", "session_id"),
    ("audit_time_index", "time_ms"),
];

/// Once more than [`SESSION_INDEX_EVERY`] events follow
/// `audit_session_indexed.through`, adds the next [`SESSION_INDEX_RUN`] of
/// them to `audit_session_index` and `audit_time_index`, each in one
/// sorted run (the appends before that leave the indexes alone; readers
/// find those events through the `audit_event_sessions` and
/// `audit_event_times` views).
fn index_in_bulk(transaction: &Transaction<'_>, path: &Path, head: u64) -> Result<(), StoreError> {
    let through: u64 = transaction
        .query_row("SELECT through FROM audit_session_indexed", [], |row| {
            row.get(0)
        })
        .map_err(sqlite(path))?;
    if head.saturating_sub(through) < SESSION_INDEX_EVERY {
        return Ok(());
    }
    let upto = head.min(through.saturating_add(SESSION_INDEX_RUN));
    for (table, column) in BULK_INDEXES {
        transaction
            .execute(
                &format!(
                    "INSERT OR IGNORE INTO {table} ({column}, seq)
                     SELECT {column}, seq FROM audit_events WHERE seq > ?1 AND seq <= ?2
                     ORDER BY {column}, seq"
                ),
                [through, upto],
            )
            .map_err(sqlite(path))?;
    }
    transaction
        .execute("UPDATE audit_session_indexed SET through = ?1", [upto])
        .map_err(sqlite(path))?;
    Ok(())
}

/// Refuses a batch whose events are not the next links after `head`.
pub(crate) fn check_links(
    path: &Path,
    head: &ChainHead,
    rows: &[StoredEvent],
) -> Result<(), StoreError> {
    let mut previous = (head.seq, head.hash.as_str());
    for row in rows {
        let reason = if row.seq != previous.0 + 1 {
            format!("event {} comes after event {}", row.seq, previous.0)
        } else if row.prev_hash != previous.1 {
            format!(
                "event {} does not link to the hash of event {}",
                row.seq, previous.0
            )
        } else {
            previous = (row.seq, row.hash.as_str());
            continue;
        };
        return Err(StoreError::NotConsecutive {
            path: path.to_path_buf(),
            first: rows.first().map_or(0, |row| row.seq),
            head: head.seq,
            reason,
        });
    }
    Ok(())
}

/// The last event, else the last event pruned, else genesis.
fn stored_head(connection: &Connection, path: &Path) -> Result<ChainHead, StoreError> {
    let last = connection
        .prepare_cached("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
        .and_then(|mut statement| statement.query_row([], chain_head).optional())
        .map_err(sqlite(path))?;
    match last {
        Some(head) => Ok(head),
        None => Ok(latest_pruned(connection, path)?.unwrap_or_default()),
    }
}

/// Where the last pruning cut the chain: the last event it deleted.
fn latest_pruned(connection: &Connection, path: &Path) -> Result<Option<ChainHead>, StoreError> {
    connection
        .prepare_cached(
            "SELECT seq, hash FROM audit_checkpoints WHERE kind = 'pruned' ORDER BY seq DESC LIMIT 1",
        )
        .and_then(|mut statement| statement.query_row([], chain_head).optional())
        .map_err(sqlite(path))
}

fn chain_head(row: &Row<'_>) -> rusqlite::Result<ChainHead> {
    Ok(ChainHead {
        seq: row.get(0)?,
        hash: row.get(1)?,
    })
}

/// Up to [`PAGE`] rows after `after`, in chain order (documents not read).
fn page_after(
    transaction: &Transaction<'_>,
    path: &Path,
    after: u64,
) -> Result<Vec<EventRow>, StoreError> {
    transaction
        .prepare_cached(&format!(
            "{SELECT_EVENTS} WHERE seq > ?1 ORDER BY seq LIMIT ?2"
        ))
        .and_then(|mut statement| {
            statement
                .query_map(rusqlite::params![after, PAGE], EventRow::from_row)?
                .collect()
        })
        .map_err(sqlite(path))
}

/// A connection of its own for a long read (verify, export), so the walk
/// sees one snapshot of the file (WAL: writers carry on) and does not hold
/// the shared connection.
fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite(path))?;
    connection
        .busy_timeout(Duration::from_secs(5))
        .map_err(sqlite(path))?;
    Ok(connection)
}

/// Runs `work` on a blocking thread, outside the shared connection.
async fn blocking<T: Send + 'static>(
    path: &Path,
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| StoreError::Worker {
            path: path.to_path_buf(),
            reason: error.to_string(),
        })?
}

fn begin<'c>(connection: &'c mut Connection, path: &Path) -> Result<Transaction<'c>, StoreError> {
    connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite(path))
}

fn sqlite(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}
