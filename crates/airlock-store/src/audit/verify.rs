//! `verify`: the whole chain, walked in pages from genesis (or from where
//! pruning cut it), with every checkpoint checked on the way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use airlock_recorder::chain::{self, ChainBreak};
use airlock_recorder::{AuditEvent, ChainHead, ChainedEvent};

use super::checkpoint::{Checkpoint, CheckpointKind, stored_checkpoints};
use super::{
    BULK_INDEXES, DocReader, StoredEvent, Summary, blocking, latest_pruned, millis, open_reader,
    page_after, sqlite,
};
use crate::{SqliteStore, StoreError};

/// Checkpoints held outside the database (by whoever made them), to verify
/// the database against: a chain rewritten wholesale, consistently from
/// genesis, passes [`chain::verify`] but not these.
#[derive(Clone, Debug, Default)]
pub struct TrustedCheckpoints {
    /// The Ed25519 public key (32 bytes) every signed checkpoint must be
    /// signed with. Without it, a stored checkpoint's signature is checked
    /// with the key stored beside it, which proves only that it was not
    /// edited since.
    pub public_key: Option<Vec<u8>>,
    /// Checkpoints the chain must pass through (their `seq` and `hash`;
    /// a signature, when present, is checked too).
    pub checkpoints: Vec<Checkpoint>,
}

/// What [`SqliteStore::verify`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditVerification {
    /// Where the walk began: genesis, or the last event pruning deleted.
    pub start: ChainHead,
    /// The last event that verified (`start` if none did).
    pub head: ChainHead,
    /// How many events verified.
    pub events_checked: u64,
    /// How many checkpoints were found on the chain with valid signatures.
    pub checkpoints_checked: usize,
    /// Checkpoints older than `start` (their events were pruned): their
    /// signatures were checked, their place on the chain cannot be.
    pub checkpoints_pruned: usize,
    /// The first problem, in chain order; `None` when the trail is intact.
    pub problem: Option<AuditProblem>,
}

impl AuditVerification {
    /// Whether the trail is intact.
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// Where and how the trail was tampered with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditProblem {
    /// The chain itself is broken: an event was edited, deleted, reordered
    /// or replaced (an event whose stored JSON is not an event at all
    /// counts as edited).
    #[error(transparent)]
    Break(#[from] ChainBreak),
    /// A row's indexed columns disagree with its (intact) event: the row
    /// was edited outside Airlock.
    #[error("event {seq} was edited: its `{column}` column differs from its content")]
    ColumnEdited {
        /// Its position.
        seq: u64,
        /// The column.
        column: &'static str,
    },
    /// A checkpoint names a hash the chain does not have at its place: the
    /// chain was rewritten since the checkpoint was made.
    #[error(
        "the checkpoint at event {seq} is not on the chain (checkpoint hash {expected}, \
         chain hash {found}): the chain was rewritten after it was made"
    )]
    CheckpointNotOnChain {
        /// The checkpoint's position.
        seq: u64,
        /// The hash the checkpoint recorded.
        expected: String,
        /// The hash the chain has there.
        found: String,
    },
    /// A checkpoint lies beyond the end of the chain: events were deleted
    /// from its end.
    #[error(
        "the chain ends at event {head}, but a checkpoint was made at event {seq}: \
         events were deleted from the end"
    )]
    CheckpointBeyondHead {
        /// The checkpoint's position.
        seq: u64,
        /// Where the chain ends.
        head: u64,
    },
    /// The session index (`audit_session_index`, which `airlock sessions`
    /// reads) disagrees with the (intact) chain at this event: a row was
    /// edited, added or deleted outside Airlock, so a session could show
    /// another's events or hide its own. The chain itself is intact.
    #[error(
        "the session index disagrees with event {seq}: it was edited outside Airlock, and \
         session listings may group events wrongly (the chain is intact). Rebuild it: delete \
         the rows of audit_session_index and set audit_session_indexed.through to 0; the appends \
         that follow index every event again"
    )]
    SessionIndexEdited {
        /// The first event it disagrees about.
        seq: u64,
    },
    /// The time index (`audit_time_index`, where pruning by age and exports
    /// since a time start) disagrees with the (intact) chain at this event:
    /// a row was edited, added or deleted outside Airlock, so pruning could
    /// keep old events or take young ones. The chain itself is intact.
    #[error(
        "the time index disagrees with event {seq}: it was edited outside Airlock, and pruning \
         by age or an export since a time may start at the wrong event (the chain is intact). \
         Rebuild it: delete the rows of audit_time_index and set audit_session_indexed.through \
         to 0; the appends that follow index every event again"
    )]
    TimeIndexEdited {
        /// The first event it disagrees about.
        seq: u64,
    },
    /// An event's document is missing from the trail's files (its file ends
    /// before it, or is gone): cut short or deleted outside Airlock, or
    /// taken by a power loss before it was flushed (the last events only).
    #[error(
        "event {seq}'s document is missing from {}: the file was cut short or deleted outside \
         Airlock, or a power loss took it before it was flushed",
        file.display()
    )]
    DocumentMissing {
        /// Its position.
        seq: u64,
        /// The file that should hold it.
        file: PathBuf,
    },
    /// A signed checkpoint's signature does not verify.
    #[error("the checkpoint at event {seq} has an invalid signature: it was forged or edited")]
    BadSignature {
        /// The checkpoint's position.
        seq: u64,
    },
    /// A checkpoint was signed with another key than the trusted one.
    #[error(
        "the checkpoint at event {seq} was signed with key {found}, not the trusted key {trusted}"
    )]
    UntrustedKey {
        /// The checkpoint's position.
        seq: u64,
        /// The key it names (hex).
        found: String,
        /// The trusted key (hex).
        trusted: String,
    },
}

impl AuditProblem {
    /// The position in the chain the problem is at.
    pub fn seq(&self) -> u64 {
        match self {
            AuditProblem::Break(ChainBreak::Edited { seq } | ChainBreak::Unlinked { seq }) => *seq,
            AuditProblem::Break(ChainBreak::Gap { expected, .. }) => *expected,
            AuditProblem::ColumnEdited { seq, .. }
            | AuditProblem::SessionIndexEdited { seq }
            | AuditProblem::TimeIndexEdited { seq }
            | AuditProblem::CheckpointNotOnChain { seq, .. }
            | AuditProblem::CheckpointBeyondHead { seq, .. }
            | AuditProblem::BadSignature { seq }
            | AuditProblem::DocumentMissing { seq, .. }
            | AuditProblem::UntrustedKey { seq, .. } => *seq,
        }
    }
}

impl SqliteStore {
    /// Verifies the whole trail against the checkpoints stored with it
    /// (see [`verify_against`](Self::verify_against)).
    pub async fn verify(&self) -> Result<AuditVerification, StoreError> {
        self.verify_against(TrustedCheckpoints::default()).await
    }

    /// Walks the whole chain in order, in pages, from one snapshot of the
    /// file: from genesis, or from the last `pruned` checkpoint. Each event
    /// must continue the chain ([`chain::verify`]) and agree with its
    /// indexed columns; every `signed` checkpoint stored, and every one in
    /// `trusted`, must lie on the chain and carry a valid signature.
    ///
    /// Returns the first problem in chain order; an `Err` only when the
    /// database cannot be read.
    pub async fn verify_against(
        &self,
        trusted: TrustedCheckpoints,
    ) -> Result<AuditVerification, StoreError> {
        let path = self.db.path.clone();
        let walking = path.clone();
        blocking(&path, move || walk(&walking, &trusted)).await
    }
}

/// The walk, on a blocking thread with a connection of its own.
fn walk(path: &Path, trusted: &TrustedCheckpoints) -> Result<AuditVerification, StoreError> {
    let mut connection = open_reader(path)?;
    let snapshot = connection.transaction().map_err(sqlite(path))?;
    let start = latest_pruned(&snapshot, path)?.unwrap_or_default();
    let stored = stored_checkpoints(&snapshot, path)?;
    let mut walk = Walk::begin(&start, stored, trusted);
    let mut documents = DocReader::new(path);
    while walk.wants_more() {
        let page = page_after(&snapshot, path, walk.head())?
            .into_iter()
            .map(|row| row.read_to_verify(&mut documents))
            .collect::<Result<Vec<_>, _>>()?;
        walk.page(page);
    }
    let mut report = walk.finish();
    if report.problem.is_none() {
        let [sessions, times] = BULK_INDEXES;
        // `through` is shared: one past the last event is reported once, at
        // the session index (the index it was first named for).
        let sessions = index_problem(&snapshot, path, sessions)?
            .into_iter()
            .chain(through_beyond_head(&snapshot, path)?)
            .min()
            .map(|seq| AuditProblem::SessionIndexEdited { seq });
        let times =
            index_problem(&snapshot, path, times)?.map(|seq| AuditProblem::TimeIndexEdited { seq });
        report.problem = sessions
            .into_iter()
            .chain(times)
            .min_by_key(AuditProblem::seq);
    }
    Ok(report)
}

/// The first event a bulk index (one of [`BULK_INDEXES`]: `table`, holding
/// each event's `column` and `seq` up to `audit_session_indexed.through`)
/// disagrees about, once the chain is known intact: an index row naming
/// another value than its event, or no event at all (added); an event up
/// to `through` with no row (deleted, or `through` raised to hide the
/// events after it).
fn index_problem(
    connection: &rusqlite::Connection,
    path: &Path,
    (table, column): (&str, &str),
) -> Result<Option<u64>, StoreError> {
    use rusqlite::OptionalExtension as _;
    let wrong: Option<u64> = connection
        .query_row(
            &format!(
                "SELECT MIN(i.seq) FROM {table} i
                 LEFT JOIN audit_events e ON e.seq = i.seq
                 WHERE e.seq IS NULL OR e.{column} IS NOT i.{column}"
            ),
            [],
            |row| row.get(0),
        )
        .map_err(sqlite(path))?;
    let missing: Option<u64> = connection
        .query_row(
            &format!(
                "SELECT e.seq FROM audit_events e
                 WHERE e.seq <= (SELECT through FROM audit_session_indexed)
                   AND NOT EXISTS (SELECT 1 FROM {table} i
                                   WHERE i.{column} = e.{column} AND i.seq = e.seq)
                 ORDER BY e.seq LIMIT 1"
            ),
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(sqlite(path))?;
    Ok(wrong.into_iter().chain(missing).min())
}

/// The bulk indexes' `through`, if it lies past the last event: it would
/// hide the events appended next from both indexes' views.
fn through_beyond_head(
    connection: &rusqlite::Connection,
    path: &Path,
) -> Result<Option<u64>, StoreError> {
    use rusqlite::OptionalExtension as _;
    connection
        .query_row(
            "SELECT through FROM audit_session_indexed
             WHERE through > (SELECT COALESCE(MAX(seq), 0) FROM audit_events)",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(sqlite(path))
}

/// One chain's verification, fed page by page by whichever backend reads
/// it: the checks live here once.
pub(crate) struct Walk {
    report: AuditVerification,
    /// Checkpoints not reached yet, by position.
    pending: BTreeMap<u64, Vec<Checkpoint>>,
    key: Option<Vec<u8>>,
    /// The last page was full: there may be more.
    more: bool,
}

impl Walk {
    /// Starts at `start` (genesis, or where pruning cut the chain), with the
    /// chain's stored checkpoints and the trusted ones; checks those at or
    /// before the start at once.
    pub(crate) fn begin(
        start: &ChainHead,
        stored: Vec<Checkpoint>,
        trusted: &TrustedCheckpoints,
    ) -> Self {
        let mut pending: BTreeMap<u64, Vec<Checkpoint>> = BTreeMap::new();
        for checkpoint in stored
            .into_iter()
            .filter(|c| c.kind == CheckpointKind::Signed)
            .chain(trusted.checkpoints.iter().cloned())
        {
            pending.entry(checkpoint.seq).or_default().push(checkpoint);
        }
        let mut walk = Self {
            report: AuditVerification {
                start: start.clone(),
                head: start.clone(),
                events_checked: 0,
                checkpoints_checked: 0,
                checkpoints_pruned: 0,
                problem: None,
            },
            pending,
            key: trusted.public_key.clone(),
            more: true,
        };
        // Checkpoints at or before the start: at the start, its hash is known.
        let later = walk.pending.split_off(&(start.seq + 1));
        let early = std::mem::replace(&mut walk.pending, later);
        for checkpoint in early.into_values().flatten() {
            let key = walk.key.as_deref();
            let problem = if checkpoint.seq == start.seq {
                check(&checkpoint, &start.hash, key)
            } else {
                walk.report.checkpoints_pruned += 1;
                check_signature(&checkpoint, key).err()
            };
            if let Some(problem) = problem {
                walk.report.problem = Some(problem);
                return walk;
            }
            walk.report.checkpoints_checked += usize::from(checkpoint.seq == start.seq);
        }
        walk
    }

    /// Whether the next page should be read: no problem yet, and the last
    /// page was full.
    pub(crate) fn wants_more(&self) -> bool {
        self.more && self.report.problem.is_none()
    }

    /// Where the next page starts after.
    pub(crate) fn head(&self) -> u64 {
        self.report.head.seq
    }

    /// Verifies the next page of rows (at most [`PAGE`](super::PAGE), in
    /// chain order).
    pub(crate) fn page(&mut self, page: Vec<VerifyRow>) {
        self.more = page.len() == super::PAGE as usize;
        for row in page {
            if let Err(problem) = verify_row(&mut self.report.head, row) {
                self.report.problem = Some(problem);
                return;
            }
            self.report.events_checked += 1;
            for checkpoint in self
                .pending
                .remove(&self.report.head.seq)
                .into_iter()
                .flatten()
            {
                if let Some(problem) =
                    check(&checkpoint, &self.report.head.hash, self.key.as_deref())
                {
                    self.report.problem = Some(problem);
                    return;
                }
                self.report.checkpoints_checked += 1;
            }
        }
    }

    /// The report; a checkpoint left over lies beyond the end of the chain.
    pub(crate) fn finish(mut self) -> AuditVerification {
        if self.report.problem.is_none()
            && let Some((&seq, _)) = self.pending.iter().next()
        {
            self.report.problem = Some(AuditProblem::CheckpointBeyondHead {
                seq,
                head: self.report.head.seq,
            });
        }
        self.report
    }
}

/// A row to verify, with what the SQLite trail keeps beside it.
pub(crate) struct VerifyRow {
    /// The row, with its document (empty if it is missing).
    pub(crate) row: StoredEvent,
    /// The summary columns, for rows that have them.
    pub(crate) summary: Option<Summary>,
    /// The file its document should be in, when it is not there.
    pub(crate) missing: Option<PathBuf>,
}

impl From<StoredEvent> for VerifyRow {
    fn from(row: StoredEvent) -> Self {
        Self {
            row,
            summary: None,
            missing: None,
        }
    }
}

/// Verifies one row after `head` and moves `head` to it.
fn verify_row(head: &mut ChainHead, verifying: VerifyRow) -> Result<(), AuditProblem> {
    let VerifyRow {
        row,
        summary,
        missing,
    } = verifying;
    if let Some(file) = missing {
        if row.seq != head.seq + 1 {
            return Err(ChainBreak::Gap {
                expected: head.seq + 1,
                found: row.seq,
            }
            .into());
        }
        return Err(AuditProblem::DocumentMissing { seq: row.seq, file });
    }
    let event: AuditEvent = match serde_json::from_str(&row.doc) {
        Ok(event) => event,
        // Not an event at all: its content cannot match its hash.
        Err(_) if row.seq == head.seq + 1 => {
            return Err(ChainBreak::Edited { seq: row.seq }.into());
        }
        Err(_) => {
            return Err(ChainBreak::Gap {
                expected: head.seq + 1,
                found: row.seq,
            }
            .into());
        }
    };
    let columns = Columns::of(&row);
    let chained = ChainedEvent {
        seq: row.seq,
        prev_hash: row.prev_hash,
        hash: row.hash,
        event,
        encoded: None,
    };
    *head = chain::verify(head, [&chained])?;
    columns.check(&chained)?;
    match summary.and_then(|summary| summary.edited(&chained.event)) {
        Some(column) => Err(AuditProblem::ColumnEdited {
            seq: chained.seq,
            column,
        }),
        None => Ok(()),
    }
}

/// The indexed columns of a row, to compare with its event.
struct Columns {
    id: String,
    time_ms: i64,
    session_id: String,
    principal_id: Option<String>,
    request_id: Option<String>,
    status: i64,
}

impl Columns {
    fn of(row: &StoredEvent) -> Self {
        Self {
            id: row.id.clone(),
            time_ms: row.time_ms,
            session_id: row.session_id.clone(),
            principal_id: row.principal_id.clone(),
            request_id: row.request_id.clone(),
            status: row.status,
        }
    }

    fn check(&self, chained: &ChainedEvent) -> Result<(), AuditProblem> {
        let event = &chained.event;
        let column = if self.id != event.id {
            "id"
        } else if self.time_ms != millis(event.time) {
            "time_ms"
        } else if self.session_id != event.session_id {
            "session_id"
        } else if self.principal_id.as_deref() != event.principal.as_ref().map(|p| p.id.as_str()) {
            "principal_id"
        } else if self.request_id != event.request_id {
            "request_id"
        } else if self.status != i64::from(event.status) {
            "status"
        } else {
            return Ok(());
        };
        Err(AuditProblem::ColumnEdited {
            seq: chained.seq,
            column,
        })
    }
}

/// Checks that `checkpoint` names `chain_hash` and, if signed, its signature.
fn check(checkpoint: &Checkpoint, chain_hash: &str, key: Option<&[u8]>) -> Option<AuditProblem> {
    if checkpoint.hash != chain_hash {
        return Some(AuditProblem::CheckpointNotOnChain {
            seq: checkpoint.seq,
            expected: checkpoint.hash.clone(),
            found: chain_hash.to_owned(),
        });
    }
    check_signature(checkpoint, key).err()
}

/// A signed checkpoint (or any carrying a signature) must verify, with the
/// trusted key when there is one.
fn check_signature(checkpoint: &Checkpoint, trusted: Option<&[u8]>) -> Result<(), AuditProblem> {
    if checkpoint.kind != CheckpointKind::Signed && checkpoint.signature.is_none() {
        return Ok(());
    }
    let seq = checkpoint.seq;
    let stored_key = checkpoint
        .public_key
        .as_deref()
        .and_then(|key| hex::decode(key).ok());
    let key = match (trusted, stored_key) {
        (Some(trusted), Some(stored)) if trusted != stored.as_slice() => {
            return Err(AuditProblem::UntrustedKey {
                seq,
                found: hex::encode(stored),
                trusted: hex::encode(trusted),
            });
        }
        (Some(trusted), _) => trusted.to_vec(),
        (None, Some(stored)) => stored,
        (None, None) => return Err(AuditProblem::BadSignature { seq }),
    };
    if checkpoint.signature_verifies(&key) {
        Ok(())
    } else {
        Err(AuditProblem::BadSignature { seq })
    }
}
