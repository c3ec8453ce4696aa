//! Retention: `prune` deletes the oldest whole sessions, a prefix of the
//! chain, and remembers where it cut.

use std::path::Path;
use std::time::{Duration, SystemTime};

use airlock_recorder::ChainHead;
use rusqlite::{Connection, OptionalExtension, Transaction};

use super::checkpoint::{Checkpoint, CheckpointKind, insert};
use super::{begin, documents, latest_pruned, millis, sqlite};

/// A row's document size, inline or in its segment file.
const DOC_BYTES: &str = "CASE WHEN doc_file IS NULL THEN octet_length(doc) ELSE doc_bytes END";
use crate::{SqliteStore, StoreError};

/// What [`SqliteStore::prune`] deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Events deleted.
    pub events: u64,
    /// Sessions deleted (always whole).
    pub sessions: u64,
    /// The size of their JSON documents, in bytes.
    pub bytes: u64,
    /// The last event deleted, now a `pruned` checkpoint verification
    /// starts from; `None` when nothing was deleted.
    pub through: Option<ChainHead>,
}

impl SqliteStore {
    /// Deletes the oldest events, whole sessions only, so that the trail
    /// keeps every session with a request younger than `max_age`, and at
    /// most about `max_bytes` of event documents (a session is never cut:
    /// one that must be kept is kept from its first event, even if that
    /// goes over). What is deleted is always a prefix of the chain; its last
    /// event is recorded as a `pruned` checkpoint in the same transaction,
    /// so [`verify`](Self::verify) goes on from there.
    pub async fn prune(
        &self,
        max_age: Option<Duration>,
        max_bytes: Option<u64>,
    ) -> Result<Pruned, StoreError> {
        let now = SystemTime::now();
        self.db
            .call(move |connection, path| {
                let transaction = begin(connection, path)?;
                let pruned = match first_kept(&transaction, path, now, max_age, max_bytes)? {
                    Some(cut) => delete_before(&transaction, path, cut)?,
                    None => Pruned::default(),
                };
                let keep_from = first_segment_kept(&transaction, path)?;
                transaction.commit().map_err(sqlite(path))?;
                // After the commit (a failure leaves files no row points
                // into, which the next prune deletes).
                documents::delete_before(path, keep_from)?;
                if let Some(through) = &pruned.through {
                    tracing::info!(
                        path = %path.display(),
                        events = pruned.events,
                        sessions = pruned.sessions,
                        through = through.seq,
                        "audit trail pruned"
                    );
                }
                Ok(pruned)
            })
            .await
    }
}

/// The first segment of event documents still needed: the first a row
/// points into; with none, the one after the last event pruned (appends
/// go on into segments named after later events).
fn first_segment_kept(connection: &Connection, path: &Path) -> Result<u64, StoreError> {
    let first: Option<u64> = connection
        .query_row("SELECT MIN(doc_file) FROM audit_events", [], |row| {
            row.get(0)
        })
        .map_err(sqlite(path))?;
    match first {
        Some(first) => Ok(first),
        None => Ok(latest_pruned(connection, path)?.map_or(0, |head| head.seq + 1)),
    }
}

/// The first event to keep (every event before it goes), or `None` if
/// nothing is to be pruned.
fn first_kept(
    connection: &Connection,
    path: &Path,
    now: SystemTime,
    max_age: Option<Duration>,
    max_bytes: Option<u64>,
) -> Result<Option<u64>, StoreError> {
    let bounds: Option<(u64, u64)> = connection
        .query_row("SELECT MIN(seq), MAX(seq) FROM audit_events", [], |row| {
            Ok(row.get::<_, Option<u64>>(0)?.zip(row.get(1)?))
        })
        .map_err(sqlite(path))?;
    let Some((first, last)) = bounds else {
        return Ok(None);
    };
    let mut wanted = first;
    if let Some(cutoff) = max_age.and_then(|age| now.checked_sub(age)) {
        // The first young event; none: every event is old.
        let young: Option<u64> = connection
            .query_row(
                "SELECT MIN(seq) FROM audit_event_times WHERE time_ms >= ?1",
                [millis(cutoff)],
                |row| row.get(0),
            )
            .map_err(sqlite(path))?;
        wanted = wanted.max(young.unwrap_or(last + 1));
    }
    if let Some(max_bytes) = max_bytes {
        wanted = wanted.max(first_within(connection, path, max_bytes, last)?);
    }
    if wanted <= first {
        return Ok(None);
    }
    if wanted > last {
        return Ok(Some(last + 1));
    }
    // The latest session start at or before `wanted` that no earlier
    // session runs past: cutting there cuts no session in half.
    let cut: Option<u64> = connection
        .query_row(
            "WITH sessions AS (
                 SELECT MIN(seq) AS first, MAX(seq) AS last FROM audit_event_sessions GROUP BY session_id
             ),
             reach AS (
                 SELECT first, MAX(last) OVER (
                     ORDER BY first ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
                 ) AS earlier_last
                 FROM sessions
             )
             SELECT MAX(first) FROM reach
             WHERE first <= ?1 AND (earlier_last IS NULL OR earlier_last < first)",
            [wanted],
            |row| row.get(0),
        )
        .map_err(sqlite(path))?;
    Ok(cut.filter(|&cut| cut > first))
}

/// The first event of the longest suffix of the chain whose documents fit
/// in `max_bytes` (`last + 1` if not even the last one does).
fn first_within(
    connection: &Connection,
    path: &Path,
    max_bytes: u64,
    last: u64,
) -> Result<u64, StoreError> {
    let mut statement = connection
        .prepare(&format!(
            "SELECT seq, {DOC_BYTES} FROM audit_events ORDER BY seq DESC"
        ))
        .map_err(sqlite(path))?;
    let mut rows = statement.query([]).map_err(sqlite(path))?;
    let mut total = 0_u64;
    let mut first = last + 1;
    while let Some(row) = rows.next().map_err(sqlite(path))? {
        let seq: u64 = row.get(0).map_err(sqlite(path))?;
        let size: u64 = row.get(1).map_err(sqlite(path))?;
        total = total.saturating_add(size);
        if total > max_bytes {
            break;
        }
        first = seq;
    }
    Ok(first)
}

/// Deletes every event before `cut` and records the last one as a
/// `pruned` checkpoint.
fn delete_before(
    transaction: &Transaction<'_>,
    path: &Path,
    cut: u64,
) -> Result<Pruned, StoreError> {
    let through: Option<ChainHead> = transaction
        .query_row(
            "SELECT seq, hash FROM audit_events WHERE seq < ?1 ORDER BY seq DESC LIMIT 1",
            [cut],
            |row| {
                Ok(ChainHead {
                    seq: row.get(0)?,
                    hash: row.get(1)?,
                })
            },
        )
        .optional()
        .map_err(sqlite(path))?;
    let Some(through) = through else {
        return Ok(Pruned::default());
    };
    let (events, sessions, bytes): (u64, u64, u64) = transaction
        .query_row(
            &format!(
                "SELECT COUNT(*), COUNT(DISTINCT session_id), COALESCE(SUM({DOC_BYTES}), 0)
                 FROM audit_events WHERE seq < ?1"
            ),
            [cut],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .map_err(sqlite(path))?;
    transaction
        .execute("DELETE FROM audit_events WHERE seq < ?1", [cut])
        .map_err(sqlite(path))?;
    transaction
        .execute("DELETE FROM audit_session_index WHERE seq < ?1", [cut])
        .map_err(sqlite(path))?;
    transaction
        .execute("DELETE FROM audit_time_index WHERE seq < ?1", [cut])
        .map_err(sqlite(path))?;
    insert(
        transaction,
        path,
        &Checkpoint {
            seq: through.seq,
            hash: through.hash.clone(),
            created: SystemTime::now(),
            kind: CheckpointKind::Pruned,
            signature: None,
            public_key: None,
        },
    )?;
    Ok(Pruned {
        events,
        sessions,
        bytes,
        through: Some(through),
    })
}
