//! Reading the trail: sessions, one session's events, and exports in pages.

use std::path::Path;
use std::time::SystemTime;

use airlock_recorder::ChainedEvent;
use rusqlite::{Connection, OptionalExtension};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{
    DocReader, EventRow, PAGE, SELECT_EVENTS, from_millis, millis, open_reader, sqlite,
    with_documents,
};
use crate::{SqliteStore, StoreError};

/// One session, as `airlock sessions list` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionSummary {
    /// The session id.
    pub session_id: String,
    /// Who the session's first verified request came from.
    pub principal_id: Option<String>,
    /// Their display name, where the token carried one.
    pub principal_name: Option<String>,
    /// When its first request arrived.
    pub first_time: SystemTime,
    /// When its last request arrived.
    pub last_time: SystemTime,
    /// How many requests it made.
    pub events: u64,
    /// How many were refused: denied by policy, or refused by Airlock with
    /// 403 (an approval denied or expired, for instance).
    pub denied: u64,
    /// The approvals its requests involved, in order.
    pub approvals: Vec<String>,
}

/// An export in pages, read from one snapshot of the file (events appended
/// or pruned meanwhile do not show): at most a few pages are in memory.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # let dir = tempfile::tempdir().unwrap();
/// # let store = airlock_store::SqliteStore::open(dir.path().join("a.db")).await.unwrap();
/// let mut pages = store.events_since(std::time::UNIX_EPOCH);
/// while let Some(page) = pages.next_page().await.unwrap() {
///     for chained in page {
///         println!("{}", serde_json::to_string(&chained).unwrap());
///     }
/// }
/// # });
/// ```
#[derive(Debug)]
pub struct EventPages {
    pages: mpsc::Receiver<Result<Vec<ChainedEvent>, StoreError>>,
    reader: Option<JoinHandle<()>>,
    path: std::path::PathBuf,
}

impl EventPages {
    /// Pages sent by `reader`, a task reading the database at `path`.
    pub(crate) fn new(
        pages: mpsc::Receiver<Result<Vec<ChainedEvent>, StoreError>>,
        reader: JoinHandle<()>,
        path: std::path::PathBuf,
    ) -> Self {
        Self {
            pages,
            reader: Some(reader),
            path,
        }
    }

    /// The next page of events in chain order; `None` after the last.
    pub async fn next_page(&mut self) -> Result<Option<Vec<ChainedEvent>>, StoreError> {
        if let Some(page) = self.pages.recv().await {
            return page.map(Some);
        }
        // The reader is done; if it stopped by panicking, say so.
        match self.reader.take() {
            Some(reader) => reader
                .await
                .map(|()| None)
                .map_err(|error| StoreError::Worker {
                    path: self.path.clone(),
                    reason: error.to_string(),
                }),
            None => Ok(None),
        }
    }
}

/// The `seq`s of session `?1`: its bulk-indexed events and those after the
/// index (the `audit_event_sessions` view).
const SESSION_SEQS: &str = "SELECT seq FROM audit_event_sessions WHERE session_id = ?1";

impl SqliteStore {
    /// The `limit` sessions with the most recent activity, newest first.
    pub async fn sessions(&self, limit: usize) -> Result<Vec<SessionSummary>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .call(move |connection, path| {
                let ids: Vec<String> = connection
                    .prepare_cached(
                        "SELECT session_id, MAX(seq) AS last FROM audit_event_sessions
                         GROUP BY session_id ORDER BY last DESC LIMIT ?1",
                    )
                    .and_then(|mut statement| {
                        statement.query_map([limit], |row| row.get(0))?.collect()
                    })
                    .map_err(sqlite(path))?;
                ids.into_iter()
                    .map(|id| summary(connection, path, id))
                    .collect()
            })
            .await
    }

    /// Every event of session `id`, in chain order (empty if there is no
    /// such session).
    pub async fn session_events(&self, id: &str) -> Result<Vec<ChainedEvent>, StoreError> {
        let id = id.to_owned();
        self.db
            .call(move |connection, path| {
                let rows: Vec<EventRow> = connection
                    .prepare_cached(&format!(
                        "{SELECT_EVENTS} WHERE seq IN ({SESSION_SEQS}) ORDER BY seq"
                    ))
                    .and_then(|mut statement| {
                        statement.query_map([id], EventRow::from_row)?.collect()
                    })
                    .map_err(sqlite(path))?;
                with_documents(rows, path)?
                    .into_iter()
                    .map(|row| row.chained(path))
                    .collect()
            })
            .await
    }

    /// Every event whose request arrived at or after `since`, in chain
    /// order, in pages of a thousand (see [`EventPages`]). The reading
    /// starts at once, on a blocking thread of the current Tokio runtime
    /// (call it within one).
    pub fn events_since(&self, since: SystemTime) -> EventPages {
        let (sender, pages) = mpsc::channel(1);
        let path = self.db.path.clone();
        let reading = path.clone();
        let reader = tokio::task::spawn_blocking(move || {
            if let Err(error) = send_pages(&reading, millis(since), &sender) {
                // The receiver may be gone: then nobody is waiting for it.
                let _ = sender.blocking_send(Err(error));
            }
        });
        EventPages {
            pages,
            reader: Some(reader),
            path,
        }
    }
}

/// Reads the export from one snapshot and sends it page by page, until the
/// end or until nobody listens.
fn send_pages(
    path: &Path,
    since_ms: i64,
    sender: &mpsc::Sender<Result<Vec<ChainedEvent>, StoreError>>,
) -> Result<(), StoreError> {
    let mut connection = open_reader(path)?;
    let snapshot = connection.transaction().map_err(sqlite(path))?;
    // Through the time index to the first match, then along the chain.
    let first: Option<u64> = snapshot
        .query_row(
            "SELECT MIN(seq) FROM audit_event_times WHERE time_ms >= ?1",
            [since_ms],
            |row| row.get(0),
        )
        .map_err(sqlite(path))?;
    let Some(mut next) = first else {
        return Ok(());
    };
    let mut statement = snapshot
        .prepare(&format!(
            "{SELECT_EVENTS} WHERE seq >= ?1 AND time_ms >= ?2 ORDER BY seq LIMIT ?3"
        ))
        .map_err(sqlite(path))?;
    let mut documents = DocReader::new(path);
    loop {
        let rows: Vec<EventRow> = statement
            .query_map(rusqlite::params![next, since_ms, PAGE], EventRow::from_row)
            .and_then(Iterator::collect)
            .map_err(sqlite(path))?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        next = last.seq() + 1;
        let full = rows.len() == PAGE as usize;
        let page = rows
            .into_iter()
            .map(|row| row.read(&mut documents, path)?.chained(path))
            .collect::<Result<Vec<_>, _>>()?;
        if sender.blocking_send(Ok(page)).is_err() || !full {
            return Ok(());
        }
    }
}

/// The summary of session `id`.
fn summary(connection: &Connection, path: &Path, id: String) -> Result<SessionSummary, StoreError> {
    let (first_ms, last_ms, events, denied): (i64, i64, u64, u64) = connection
        .prepare_cached(&format!(
            "SELECT MIN(time_ms), MAX(time_ms), COUNT(*),
                 SUM(CASE WHEN doc_file IS NOT NULL THEN denied
                     WHEN json_extract(doc, '$.decision') = 'deny'
                     OR (status = 403 AND json_extract(doc, '$.errorCode') IS NOT NULL)
                     THEN 1 ELSE 0 END)
             FROM audit_events WHERE seq IN ({SESSION_SEQS})"
        ))
        .and_then(|mut statement| {
            statement.query_row([&id], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
        })
        .map_err(sqlite(path))?;
    let principal: Option<(String, Option<String>)> = connection
        .prepare_cached(&format!(
            "SELECT principal_id, CASE WHEN doc_file IS NOT NULL THEN principal_name
                 ELSE json_extract(doc, '$.principal.displayName') END FROM audit_events
             WHERE seq IN ({SESSION_SEQS}) AND principal_id IS NOT NULL ORDER BY seq LIMIT 1"
        ))
        .and_then(|mut statement| {
            statement
                .query_row([&id], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })
        .map_err(sqlite(path))?;
    let approvals = connection
        .prepare_cached(&format!(
            "SELECT approval FROM (SELECT seq, CASE WHEN doc_file IS NOT NULL THEN approval_id
                 ELSE json_extract(doc, '$.approvalId') END AS approval FROM audit_events
                 WHERE seq IN ({SESSION_SEQS}))
             WHERE approval IS NOT NULL GROUP BY approval ORDER BY MIN(seq)"
        ))
        .and_then(|mut statement| statement.query_map([&id], |row| row.get(0))?.collect())
        .map_err(sqlite(path))?;
    let (principal_id, principal_name) = principal.unzip();
    Ok(SessionSummary {
        session_id: id,
        principal_id,
        principal_name: principal_name.flatten(),
        first_time: from_millis(first_ms),
        last_time: from_millis(last_ms),
        events,
        denied,
        approvals,
    })
}
