//! The audit trail on real SQLite files in a temporary directory: appending,
//! reading, tampering found by `verify` (edits, deletions, reorderings,
//! rewrites), retention, signed checkpoints and HAR export.

// Tests unwrap freely: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use airlock_recorder::chain::{self, ChainBreak, EXAMPLE_EVENT};
use airlock_recorder::{AuditEvent, AuditSink, ChainHead, ChainedEvent, EventPrincipal};
use airlock_store::SqliteStore;
use airlock_store::audit::{
    AuditProblem, Checkpoint, TrustedCheckpoints, generate_signing_key,
    load_or_generate_signing_key, load_signing_key, parse_public_key, public_key_hex,
};
use serde_json::Value;
use tempfile::TempDir;

const DAY: Duration = Duration::from_secs(24 * 3600);

/// An event of `session` at `time`, with a distinct path.
fn event(session: &str, time: SystemTime, n: usize) -> AuditEvent {
    let mut event: AuditEvent = serde_json::from_str(EXAMPLE_EVENT).unwrap();
    event.id = format!("00000000-0000-0000-0000-{n:012}");
    event.session_id = session.into();
    event.time = time;
    event.path = format!("/subscriptions/s/resourceGroups/rg-{n}");
    event.request_id = Some(format!("r-{n}"));
    event.principal = Some(EventPrincipal {
        id: format!("oid-{session}"),
        tenant_id: "t1".into(),
        kind: "managed_identity".into(),
        display_name: Some(format!("agent {session}")),
        app_id: None,
        agent: None,
        groups: Vec::new(),
        roles: Vec::new(),
    });
    event
}

/// `time` as the trail keeps it: to the millisecond.
fn to_millis(time: SystemTime) -> SystemTime {
    let since = time.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    SystemTime::UNIX_EPOCH + Duration::from_millis(since.as_millis() as u64)
}

/// Links `events` after `head`.
fn link(head: &mut ChainHead, events: Vec<AuditEvent>) -> Vec<ChainedEvent> {
    events.into_iter().map(|event| head.link(event)).collect()
}

fn file(dir: &TempDir) -> PathBuf {
    dir.path().join("airlock.db")
}

/// A connection of our own to the file, as someone tampering with it has.
fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

/// The segment file holding event `seq`'s document, and where in it.
fn doc_place(path: &Path, seq: u64) -> (PathBuf, u64, u64) {
    let (file, at, bytes): (u64, u64, u64) = raw(path)
        .query_row(
            "SELECT doc_file, doc_at, doc_bytes FROM audit_events WHERE seq = ?1",
            [seq],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap();
    let segment = path
        .with_file_name("airlock.db-trail")
        .join(format!("{file:020}.jsonl"));
    (segment, at, bytes)
}

/// Event `seq`'s document, read from its segment file.
fn doc(path: &Path, seq: u64) -> String {
    let (segment, at, bytes) = doc_place(path, seq);
    let text = std::fs::read(segment).unwrap();
    String::from_utf8(text[at as usize..(at + bytes) as usize].to_vec()).unwrap()
}

/// Gives event `seq` the document `text`, as a forger would: appended to
/// its segment, the row pointed at it.
fn set_doc(path: &Path, seq: u64, text: &str) {
    use std::io::Write as _;
    let (segment, _, _) = doc_place(path, seq);
    let at = std::fs::metadata(&segment).unwrap().len();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .unwrap();
    writeln!(file, "{text}").unwrap();
    raw(path)
        .execute(
            "UPDATE audit_events SET doc_at = ?2, doc_bytes = ?3 WHERE seq = ?1",
            rusqlite::params![seq, at, text.len()],
        )
        .unwrap();
}

/// Every event's place in the chain, in order.
fn seqs(path: &Path) -> Vec<u64> {
    raw(path)
        .prepare("SELECT seq FROM audit_events ORDER BY seq")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Moves every document into its row and drops the columns schema 5
/// added: the trail as Airlock kept it before document files.
fn inline_documents(path: &Path) {
    let connection = raw(path);
    for seq in seqs(path) {
        connection
            .execute(
                "UPDATE audit_events SET doc = ?2 WHERE seq = ?1",
                rusqlite::params![seq, doc(path, seq)],
            )
            .unwrap();
    }
    for column in [
        "doc_file",
        "doc_at",
        "doc_bytes",
        "denied",
        "principal_name",
        "approval_id",
    ] {
        connection
            .execute_batch(&format!("ALTER TABLE audit_events DROP COLUMN {column}"))
            .unwrap();
    }
    std::fs::remove_dir_all(path.with_file_name("airlock.db-trail")).unwrap();
}

/// A store holding three batches (12 events, sessions a, b, c; b denied
/// once and approved once), and its head.
async fn three_batches() -> (TempDir, SqliteStore, ChainHead) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(file(&dir)).await.unwrap();
    let now = SystemTime::now();
    let mut head = store.head().await.unwrap().unwrap();
    assert_eq!(head, ChainHead::default());
    let first = link(&mut head, (1..=5).map(|n| event("a", now, n)).collect());
    let mut second = (6..=8).map(|n| event("b", now, n)).collect::<Vec<_>>();
    second[1].decision = Some("deny".into());
    second[1].rule = Some("no-vm-delete".into());
    second[1].status = 403;
    second[2].approval_id = Some("appr-1".into());
    second[2].approvers = vec!["carol".into()];
    let second = link(&mut head, second);
    let third = link(&mut head, (9..=12).map(|n| event("c", now, n)).collect());
    for batch in [first, second, third] {
        store.append(&batch).await.unwrap();
    }
    (dir, store, head)
}

async fn problem(store: &SqliteStore) -> Option<AuditProblem> {
    store.verify().await.unwrap().problem
}

/// Reads every row, lets `change` alter the events, and relinks the whole
/// chain from genesis, consistently: what a thorough forger does.
fn rewrite_wholesale(path: &Path, change: impl Fn(&mut AuditEvent)) {
    let connection = raw(path);
    let mut head = ChainHead::default();
    for seq in seqs(path) {
        let mut event: AuditEvent = serde_json::from_str(&doc(path, seq)).unwrap();
        change(&mut event);
        let chained = head.link(event);
        assert_eq!(chained.seq, seq);
        set_doc(path, seq, &serde_json::to_string(&chained.event).unwrap());
        connection
            .execute(
                "UPDATE audit_events SET prev_hash = ?2, hash = ?3, status = ?4, denied = ?5
                 WHERE seq = ?1",
                rusqlite::params![
                    seq as i64,
                    chained.prev_hash,
                    chained.hash,
                    chained.event.status,
                    chained.event.decision.as_deref() == Some("deny"),
                ],
            )
            .unwrap();
    }
}

#[tokio::test]
async fn three_batches_verify_and_the_head_survives_reopening() {
    let (dir, store, head) = three_batches().await;
    let report = store.verify().await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.events_checked, 12);
    assert_eq!(report.start, ChainHead::default());
    assert_eq!(report.head, head);
    assert_eq!(store.head().await.unwrap(), Some(head.clone()));
    drop(store);

    let store = SqliteStore::open(file(&dir)).await.unwrap();
    assert_eq!(store.head().await.unwrap(), Some(head.clone()));
    // The chain goes on where it ended.
    let mut next = head;
    let batch = link(&mut next, vec![event("d", SystemTime::now(), 13)]);
    store.append(&batch).await.unwrap();
    let report = store.verify().await.unwrap();
    assert_eq!((report.events_checked, report.head), (13, next));
}

#[tokio::test]
async fn append_refuses_a_batch_that_does_not_continue_the_chain() {
    let (_dir, store, head) = three_batches().await;
    let now = SystemTime::now();

    // Skips an event.
    let mut skipped = head.clone();
    skipped.seq += 1;
    let batch = link(&mut skipped, vec![event("d", now, 13)]);
    let error = store.append(&batch).await.unwrap_err().to_string();
    assert!(
        error
            .contains("audit events 14.. do not continue the stored chain, which ends at event 12")
            && error.contains("event 14 comes after event 12"),
        "{error}"
    );

    // Starts again from genesis (another gateway's chain in the same file).
    let batch = link(&mut ChainHead::default(), vec![event("d", now, 13)]);
    let error = store.append(&batch).await.unwrap_err().to_string();
    assert!(error.contains("event 1 comes after event 12"), "{error}");

    // Right place, wrong link.
    let mut forged = ChainHead {
        seq: head.seq,
        hash: "f".repeat(64),
    };
    let batch = link(&mut forged, vec![event("d", now, 13)]);
    let error = store.append(&batch).await.unwrap_err().to_string();
    assert!(
        error.contains("event 13 does not link to the hash of event 12"),
        "{error}"
    );

    // A batch broken in its middle is refused whole.
    let mut next = head.clone();
    let mut batch = link(&mut next, (13..=15).map(|n| event("d", now, n)).collect());
    batch[2].seq = 16;
    let error = store.append(&batch).await.unwrap_err().to_string();
    assert!(error.contains("event 16 comes after event 14"), "{error}");
    assert_eq!(store.head().await.unwrap(), Some(head));
    assert!(store.verify().await.unwrap().is_ok());
}

#[tokio::test]
async fn an_edited_event_is_found_at_its_seq() {
    let (dir, store, _) = three_batches().await;
    let edited = doc(&file(&dir), 7).replace("\"status\":403", "\"status\":200");
    set_doc(&file(&dir), 7, &edited);
    assert_eq!(
        problem(&store).await,
        Some(ChainBreak::Edited { seq: 7 }.into())
    );
    let report = store.verify().await.unwrap();
    assert_eq!(report.events_checked, 6);
    assert_eq!(
        report.problem.unwrap().to_string(),
        "event 7 was edited: its content does not match its hash"
    );
}

#[tokio::test]
async fn a_doc_that_is_not_an_event_counts_as_edited() {
    let (dir, store, _) = three_batches().await;
    set_doc(&file(&dir), 3, "gone");
    assert_eq!(
        problem(&store).await,
        Some(ChainBreak::Edited { seq: 3 }.into())
    );
}

/// A document file cut short, or deleted, loses the events in it: `verify`
/// names the first and its file, and reading it names the problem.
#[tokio::test]
async fn documents_cut_off_or_deleted_are_found_by_verify() {
    let (dir, store, _) = three_batches().await;
    let (segment, at, _) = doc_place(&file(&dir), 10);
    let whole = std::fs::metadata(&segment).unwrap().len();
    let cut = |length| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&segment)
            .unwrap()
            .set_len(length)
            .unwrap();
    };
    cut(at + 5);
    let found = problem(&store).await.unwrap();
    assert_eq!(
        found,
        AuditProblem::DocumentMissing {
            seq: 10,
            file: segment.clone()
        }
    );
    assert!(
        found.to_string().starts_with(&format!(
            "event 10's document is missing from {}",
            segment.display()
        )),
        "{found}"
    );
    let error = store.session_events("c").await.unwrap_err().to_string();
    assert!(
        error.contains("audit event 10") && error.contains("missing"),
        "{error}"
    );

    // A row pointed far past its file is the same, and allocates nothing.
    cut(whole);
    raw(&file(&dir))
        .execute(
            "UPDATE audit_events SET doc_bytes = 9000000000000000000 WHERE seq = 5",
            [],
        )
        .unwrap();
    assert_eq!(problem(&store).await.unwrap().seq(), 5);

    std::fs::remove_file(&segment).unwrap();
    assert_eq!(problem(&store).await.unwrap().seq(), 1);
}

/// The columns session summaries read (copied from the document, which SQL
/// cannot see in its file) are checked against it.
#[tokio::test]
async fn an_edited_summary_column_is_found() {
    let (dir, store, _) = three_batches().await;
    for (change, column) in [
        ("UPDATE audit_events SET denied = 0 WHERE seq = 7", "denied"),
        (
            "UPDATE audit_events SET denied = 1, principal_name = 'someone else' WHERE seq = 7",
            "principal_name",
        ),
        (
            "UPDATE audit_events SET principal_name = 'agent b' WHERE seq = 7;
             UPDATE audit_events SET approval_id = NULL WHERE seq = 8;",
            "approval_id",
        ),
    ] {
        raw(&file(&dir)).execute_batch(change).unwrap();
        let found = problem(&store).await.unwrap();
        assert_eq!(
            found.to_string(),
            format!(
                "event {} was edited: its `{column}` column differs from its content",
                found.seq()
            )
        );
    }
}

#[tokio::test]
async fn an_edited_index_column_is_found() {
    let (dir, store, _) = three_batches().await;
    raw(&file(&dir))
        .execute("UPDATE audit_events SET status = 200 WHERE seq = 7", [])
        .unwrap();
    let found = problem(&store).await.unwrap();
    assert_eq!(
        found,
        AuditProblem::ColumnEdited {
            seq: 7,
            column: "status"
        }
    );
    assert_eq!(
        found.to_string(),
        "event 7 was edited: its `status` column differs from its content"
    );
}

#[tokio::test]
async fn a_deleted_event_is_a_gap() {
    let (dir, store, _) = three_batches().await;
    raw(&file(&dir))
        .execute("DELETE FROM audit_events WHERE seq = 4", [])
        .unwrap();
    let found = problem(&store).await.unwrap();
    assert_eq!(
        found,
        ChainBreak::Gap {
            expected: 4,
            found: 5
        }
        .into()
    );
    assert_eq!(found.seq(), 4);
}

#[tokio::test]
async fn swapped_events_are_found_at_the_first_of_them() {
    let (dir, store, _) = three_batches().await;
    let connection = raw(&file(&dir));
    let row = |seq: i64| -> (i64, i64, String, String) {
        connection
            .query_row(
                "SELECT doc_at, doc_bytes, prev_hash, hash FROM audit_events WHERE seq = ?1",
                [seq],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
            )
            .unwrap()
    };
    let (three, six) = (row(3), row(6));
    for (seq, (at, bytes, prev_hash, hash)) in [(3, six), (6, three)] {
        connection
            .execute(
                "UPDATE audit_events SET doc_at = ?2, doc_bytes = ?3, prev_hash = ?4, hash = ?5
                 WHERE seq = ?1",
                rusqlite::params![seq, at, bytes, prev_hash, hash],
            )
            .unwrap();
    }
    let found = problem(&store).await.unwrap();
    assert_eq!(found, ChainBreak::Edited { seq: 3 }.into());
}

#[tokio::test]
async fn a_tail_renumbered_and_rehashed_after_a_deletion_is_unlinked() {
    let (dir, store, _) = three_batches().await;
    let connection = raw(&file(&dir));
    connection
        .execute("DELETE FROM audit_events WHERE seq = 4", [])
        .unwrap();
    // Close the gap: every later event moves down one place and gets the
    // hash its new place gives it.
    let rows: Vec<(i64, String)> = connection
        .prepare("SELECT seq, prev_hash FROM audit_events WHERE seq > 4 ORDER BY seq")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (seq, prev_hash) in rows {
        let event: AuditEvent = serde_json::from_str(&doc(&file(&dir), seq as u64)).unwrap();
        let hash = chain::link_hash(seq as u64 - 1, &prev_hash, &event);
        connection
            .execute(
                "UPDATE audit_events SET seq = ?2, hash = ?3 WHERE seq = ?1",
                rusqlite::params![seq, seq - 1, hash],
            )
            .unwrap();
    }
    let found = problem(&store).await.unwrap();
    assert_eq!(found, ChainBreak::Unlinked { seq: 4 }.into());
    assert_eq!(
        found.to_string(),
        "event 4 does not follow the event before it: events were replaced or reordered"
    );
}

#[tokio::test]
async fn sessions_summarise_newest_first_and_list_their_events() {
    let (_dir, store, _) = three_batches().await;
    let sessions = store.sessions(10).await.unwrap();
    let ids: Vec<&str> = sessions.iter().map(|s| s.session_id.as_str()).collect();
    assert_eq!(ids, ["c", "b", "a"]);
    let b = &sessions[1];
    assert_eq!(b.events, 3);
    assert_eq!(b.denied, 1);
    assert_eq!(b.approvals, ["appr-1"]);
    assert_eq!(b.principal_id.as_deref(), Some("oid-b"));
    assert_eq!(b.principal_name.as_deref(), Some("agent b"));
    assert!(b.first_time <= b.last_time);
    assert_eq!(sessions[2].denied, 0);
    assert_eq!(store.sessions(1).await.unwrap().len(), 1);

    let events = store.session_events("b").await.unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [6, 7, 8]);
    assert_eq!(events[1].event.rule.as_deref(), Some("no-vm-delete"));
    assert!(store.session_events("nope").await.unwrap().is_empty());
}

/// Links `events` after `head` and appends them `size` at a time.
async fn append_in_batches(
    store: &SqliteStore,
    head: &mut ChainHead,
    events: Vec<AuditEvent>,
    size: usize,
) {
    for batch in link(head, events).chunks(size) {
        store.append(batch).await.unwrap();
    }
}

/// Rows of the bulk session index, and how far it reaches.
fn session_index(path: &Path) -> (u64, u64) {
    raw(path)
        .query_row(
            "SELECT (SELECT COUNT(*) FROM audit_session_index),
                    (SELECT through FROM audit_session_indexed)",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap()
}

#[tokio::test]
async fn sessions_read_alike_from_the_bulk_session_index_and_the_events_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(file(&dir)).await.unwrap();
    let now = SystemTime::now();
    let mut head = ChainHead::default();
    // 100 old events of one session, then two sessions interleaved: 5 000
    // events in batches of 500, more than one bulk of the session index.
    let events: Vec<AuditEvent> = (1..=5000)
        .map(|n| match n {
            ..=100 => event("old", now - 100 * DAY, n),
            _ if n % 2 == 0 => event("x", now, n),
            _ => event("y", now, n),
        })
        .collect();
    append_in_batches(&store, &mut head, events, 500).await;
    // The append that took the head to 4 500 (4 096 past the index) indexed
    // one run of 1 024 events, no more; the 3 976 after it are read from
    // the events themselves.
    assert_eq!(session_index(&file(&dir)), (1024, 1024));

    let sessions = store.sessions(10).await.unwrap();
    let counts: Vec<(&str, u64)> = sessions
        .iter()
        .map(|s| (s.session_id.as_str(), s.events))
        .collect();
    assert_eq!(counts, [("x", 2450), ("y", 2450), ("old", 100)]);
    let x: Vec<u64> = store
        .session_events("x")
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(x, (102..=5000).step_by(2).collect::<Vec<u64>>());

    // Pruning the old session takes its rows out of the index too.
    let pruned = store.prune(Some(90 * DAY), None).await.unwrap();
    assert_eq!((pruned.events, pruned.sessions), (100, 1));
    assert_eq!(session_index(&file(&dir)), (924, 1024));
    assert!(store.session_events("old").await.unwrap().is_empty());
    assert_eq!(store.sessions(10).await.unwrap().len(), 2);
    assert_eq!(store.session_events("y").await.unwrap().len(), 2450);
    assert!(store.verify().await.unwrap().is_ok());
}

/// Rows of the bulk time index.
fn time_index(path: &Path) -> u64 {
    raw(path)
        .query_row("SELECT COUNT(*) FROM audit_time_index", [], |row| {
            row.get(0)
        })
        .unwrap()
}

/// The seqs `events_since(since)` reads.
async fn seqs_since(store: &SqliteStore, since: SystemTime) -> Vec<u64> {
    let mut pages = store.events_since(since);
    let mut seqs = Vec::new();
    while let Some(page) = pages.next_page().await.unwrap() {
        seqs.extend(page.iter().map(|chained| chained.seq));
    }
    seqs
}

/// Where exports since a time and pruning by age start is found alike in
/// the bulk time index (events up to `through`) and in the events after
/// it, with times out of chain order.
#[tokio::test]
async fn the_first_event_since_a_time_is_found_in_the_bulk_time_index_and_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(file(&dir)).await.unwrap();
    let now = to_millis(SystemTime::now());
    let mut head = ChainHead::default();
    // 5 000 events 100 days old (a session each: pruning cuts no session
    // in half), but event 700 (50 days old, indexed), event 3000 (10 days,
    // not indexed yet) and the last hundred (now).
    let events: Vec<AuditEvent> = (1..=5000)
        .map(|n| {
            let age = match n {
                700 => 50 * DAY,
                3000 => 10 * DAY,
                4901.. => Duration::ZERO,
                _ => 100 * DAY,
            };
            event(&format!("s{n}"), now - age, n)
        })
        .collect();
    append_in_batches(&store, &mut head, events, 500).await;
    assert_eq!(session_index(&file(&dir)).1, 1024);
    assert_eq!(time_index(&file(&dir)), 1024);
    let young: Vec<u64> = (4901..=5000).collect();

    let mut expected = vec![700, 3000];
    expected.extend(&young);
    assert_eq!(seqs_since(&store, now - 60 * DAY).await, expected);
    assert_eq!(seqs_since(&store, now - 20 * DAY).await, expected[1..]);
    assert_eq!(seqs_since(&store, now - DAY).await, young);

    // Pruning at 90 days keeps event 700 and everything after it; at 30,
    // everything from event 3000. The index loses the rows pruned.
    let pruned = store.prune(Some(90 * DAY), None).await.unwrap();
    assert_eq!(pruned.events, 699);
    assert_eq!(time_index(&file(&dir)), 1024 - 699);
    let pruned = store.prune(Some(30 * DAY), None).await.unwrap();
    assert_eq!(pruned.events, 3000 - 700);
    assert_eq!(time_index(&file(&dir)), 0);
    assert_eq!(seqs_since(&store, now - 60 * DAY).await, expected[1..]);
    assert!(store.verify().await.unwrap().is_ok());
}

#[tokio::test]
async fn a_trail_from_before_the_bulk_session_index_is_indexed_when_opened() {
    let (dir, store, mut head) = three_batches().await;
    drop(store);
    // Back to schema 3: the session index was an index on the events, and
    // documents were kept in their rows.
    inline_documents(&file(&dir));
    raw(&file(&dir))
        .execute_batch(
            "DROP VIEW audit_event_sessions;
             DROP TABLE audit_session_index;
             DROP TABLE audit_session_indexed;
             DROP VIEW audit_event_times;
             DROP TABLE audit_time_index;
             CREATE INDEX audit_events_by_session ON audit_events (session_id, seq);
             CREATE INDEX audit_events_by_time ON audit_events (time_ms);
             PRAGMA user_version = 3;",
        )
        .unwrap();
    let store = SqliteStore::open(file(&dir)).await.unwrap();
    assert_eq!(session_index(&file(&dir)), (12, 12));
    assert_eq!(time_index(&file(&dir)), 12);
    // New events go to document files, after the inline ones.
    let now = to_millis(SystemTime::now());
    let batch = link(&mut head, (13..=14).map(|n| event("d", now, n)).collect());
    store.append(&batch).await.unwrap();
    let report = store.verify().await.unwrap();
    assert!(report.is_ok() && report.events_checked == 14, "{report:?}");
    assert_eq!(store.session_events("d").await.unwrap(), batch);
    let seqs: Vec<u64> = store
        .session_events("b")
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, [6, 7, 8]);
    let indexes: Option<String> = raw(&file(&dir))
        .query_row(
            "SELECT group_concat(name) FROM sqlite_master
             WHERE name IN ('audit_events_by_session', 'audit_events_by_time')",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(indexes, None);
}

/// Both bulk indexes filled up to the last of [`three_batches`]' events.
const INDEX_ALL: &str = "INSERT OR IGNORE INTO audit_session_index (session_id, seq)
                             SELECT session_id, seq FROM audit_events;
                         INSERT OR IGNORE INTO audit_time_index (time_ms, seq)
                             SELECT time_ms, seq FROM audit_events;
                         UPDATE audit_session_indexed SET through = 12;";

/// `verify` checks both bulk indexes against the chain: a row moved to
/// another session or time, deleted, added for no event, or `through`
/// raised past the last event is reported at its event, as the index's
/// problem; rebuilt as the message says, the trail verifies again.
#[tokio::test]
async fn a_tampered_bulk_index_fails_verify_until_rebuilt() {
    let (dir, store, _) = three_batches().await;
    let db = raw(&file(&dir));
    db.execute_batch(INDEX_ALL).unwrap();
    assert!(store.verify().await.unwrap().is_ok());
    let (sessions, times) = ("audit_session_index", "audit_time_index");
    for (tamper, seq, index) in [
        (
            "UPDATE audit_session_index SET session_id = 'a' WHERE seq = 7",
            7,
            sessions,
        ),
        ("DELETE FROM audit_session_index WHERE seq = 5", 5, sessions),
        (
            "INSERT INTO audit_session_index VALUES ('a', 99)",
            99,
            sessions,
        ),
        (
            "UPDATE audit_session_indexed SET through = 4000",
            4000,
            sessions,
        ),
        (
            "UPDATE audit_time_index SET time_ms = 0 WHERE seq = 7",
            7,
            times,
        ),
        ("DELETE FROM audit_time_index WHERE seq = 5", 5, times),
        ("INSERT INTO audit_time_index VALUES (0, 99)", 99, times),
    ] {
        db.execute_batch(tamper).unwrap();
        let found = store.verify().await.unwrap().problem;
        match (&found, index) {
            (Some(found @ AuditProblem::SessionIndexEdited { .. }), "audit_session_index")
            | (Some(found @ AuditProblem::TimeIndexEdited { .. }), "audit_time_index") => {
                assert_eq!(found.seq(), seq, "{tamper}");
                let message = found.to_string();
                assert!(message.contains("the chain is intact"), "{message}");
                assert!(message.contains(index), "{message}");
            }
            _ => panic!("{tamper}: {found:?}"),
        }
        // Rebuilt as the message says.
        db.execute_batch(&format!(
            "DELETE FROM {index}; UPDATE audit_session_indexed SET through = 0;"
        ))
        .unwrap();
        assert!(store.verify().await.unwrap().is_ok(), "{tamper}");
        db.execute_batch(INDEX_ALL).unwrap();
    }
}

#[tokio::test]
async fn events_since_reads_a_large_trail_in_pages_in_chain_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(file(&dir)).await.unwrap();
    // Whole seconds: the trail keeps milliseconds.
    let yesterday = (SystemTime::now() - DAY).duration_since(SystemTime::UNIX_EPOCH);
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(yesterday.unwrap().as_secs());
    let mut head = ChainHead::default();
    // 2500 events, a second apart; a few arrive late (out of time order).
    let events: Vec<AuditEvent> = (0..2500)
        .map(|n| {
            let late = if n % 500 == 499 { 2000 } else { 0 };
            event(
                &format!("s{}", n / 10),
                start + Duration::from_secs(n as u64) - Duration::from_secs(late),
                n,
            )
        })
        .collect();
    append_in_batches(&store, &mut head, events, 512).await;

    let since = start + Duration::from_secs(1000);
    let mut pages = store.events_since(since);
    let mut seqs = Vec::new();
    let mut sizes = Vec::new();
    while let Some(page) = pages.next_page().await.unwrap() {
        sizes.push(page.len());
        for chained in page {
            assert!(chained.event.time >= since);
            seqs.push(chained.seq);
        }
    }
    // Events 1000..2500 (seq 1001..), less the late ones (seq 1500, 2000, 2500).
    assert_eq!(seqs.len(), 1500 - 3);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(seqs[0], 1001);
    assert_eq!(sizes, [1000, 497]);

    // Everything, and nothing.
    let mut all = store.events_since(SystemTime::UNIX_EPOCH);
    let mut count = 0;
    while let Some(page) = all.next_page().await.unwrap() {
        count += page.len();
    }
    assert_eq!(count, 2500);
    let mut none = store.events_since(SystemTime::now() + DAY);
    assert_eq!(none.next_page().await.unwrap(), None);
}

/// Appends do not checkpoint the WAL themselves (a background thread does):
/// the database file still fills while the store is open, and closing it
/// still checkpoints everything and removes the WAL.
#[tokio::test]
async fn the_wal_is_checkpointed_in_the_background_and_removed_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(&dir);
    let store = SqliteStore::open(&path).await.unwrap();
    let now = SystemTime::now();
    let mut head = ChainHead::default();
    // About 8 MiB of rows (the display name is copied into its row's
    // `principal_name`): well past the 1000 pages that ask for a checkpoint.
    let events: Vec<AuditEvent> = (0..4000)
        .map(|n| {
            let mut event = event(&format!("s{}", n / 100), now, n);
            if let Some(principal) = &mut event.principal {
                principal.display_name = Some("x".repeat(2000));
            }
            event
        })
        .collect();
    append_in_batches(&store, &mut head, events, 512).await;

    let size = |path: &Path| std::fs::metadata(path).map_or(0, |m| m.len());
    let mut waited = Duration::ZERO;
    while size(&path) < 4 << 20 {
        assert!(
            waited < Duration::from_secs(30),
            "nothing checkpointed: {} bytes",
            size(&path)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }

    drop(store);
    let wal = dir.path().join("airlock.db-wal");
    assert!(
        !wal.exists(),
        "the WAL is left behind: {} bytes",
        size(&wal)
    );
    let count: i64 = raw(&path)
        .query_row("SELECT COUNT(*) FROM audit_events", [], |row| row.get(0))
        .unwrap();
    assert_eq!(count, 4000);
}

/// Sessions over time, for retention: a (old), b (old, but still active
/// recently), c (recent, starts while b runs), d (recent).
async fn aged_trail() -> (TempDir, SqliteStore, ChainHead) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(file(&dir)).await.unwrap();
    let now = SystemTime::now();
    let mut head = ChainHead::default();
    let events = vec![
        event("a", now - 100 * DAY, 1),
        event("a", now - 100 * DAY, 2),
        event("a", now - 99 * DAY, 3),
        event("b", now - 95 * DAY, 4),
        event("b", now - 95 * DAY, 5),
        event("c", now - DAY, 6),
        event("b", now - DAY, 7),
        event("d", now, 8),
        event("d", now, 9),
    ];
    store.append(&link(&mut head, events)).await.unwrap();
    (dir, store, head)
}

#[tokio::test]
async fn prune_by_age_deletes_whole_old_sessions_and_verify_goes_on_from_there() {
    let (dir, store, head) = aged_trail().await;
    let pruned = store.prune(Some(90 * DAY), None).await.unwrap();
    // b has a young event, so b is kept from its first event (4): only a goes.
    assert_eq!((pruned.events, pruned.sessions), (3, 1));
    let through = pruned.through.unwrap();
    assert_eq!(through.seq, 3);
    assert!(pruned.bytes > 0);
    for session in ["b", "c", "d"] {
        let all = store.session_events(session).await.unwrap();
        let first = all[0].seq;
        assert!(first >= 4, "{session} starts at {first}");
    }
    assert_eq!(store.session_events("b").await.unwrap().len(), 3);
    assert!(store.session_events("a").await.unwrap().is_empty());

    let report = store.verify().await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.start, through);
    assert_eq!((report.events_checked, report.head), (6, head.clone()));
    assert_eq!(store.head().await.unwrap(), Some(head));

    // Nothing more is old enough.
    assert_eq!(
        store.prune(Some(90 * DAY), None).await.unwrap(),
        Default::default()
    );

    // Tampering after pruning is still found.
    let edited = doc(&file(&dir), 5).replace("rg-5", "rg-x");
    set_doc(&file(&dir), 5, &edited);
    assert_eq!(
        problem(&store).await,
        Some(ChainBreak::Edited { seq: 5 }.into())
    );
}

#[tokio::test]
async fn deleting_the_first_kept_event_after_pruning_is_found() {
    let (dir, store, _) = aged_trail().await;
    store.prune(Some(90 * DAY), None).await.unwrap();
    raw(&file(&dir))
        .execute("DELETE FROM audit_events WHERE seq = 4", [])
        .unwrap();
    assert_eq!(
        problem(&store).await,
        Some(
            ChainBreak::Gap {
                expected: 4,
                found: 5
            }
            .into()
        )
    );
}

/// The trail's document files, by name.
fn segments(dir: &TempDir) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("airlock.db-trail"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Documents go to files named after their first event, one JSON document
/// a line; a full file is followed by a new one; retention deletes the
/// files no event points into any more, and appends go on after it.
#[tokio::test]
async fn document_files_fill_in_turn_and_retention_deletes_whole_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(file(&dir))
        .await
        .unwrap()
        .audit_segment_bytes(1);
    let now = to_millis(SystemTime::now());
    let mut head = ChainHead::default();
    let mut batches = Vec::new();
    for (session, age, numbers) in [("a", 100, 1..=2), ("b", 99, 3..=4), ("c", 0, 5..=6)] {
        let events = numbers
            .map(|n| event(session, now - age * DAY, n))
            .collect();
        let batch = link(&mut head, events);
        store.append(&batch).await.unwrap();
        batches.push(batch);
    }
    // A segment is full once it holds a byte: each batch starts its own.
    assert_eq!(
        segments(&dir),
        [
            "00000000000000000001.jsonl",
            "00000000000000000003.jsonl",
            "00000000000000000005.jsonl"
        ]
    );
    let text = std::fs::read_to_string(
        dir.path()
            .join("airlock.db-trail/00000000000000000003.jsonl"),
    )
    .unwrap();
    let lines: Vec<AuditEvent> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(
        lines,
        [batches[1][0].event.clone(), batches[1][1].event.clone()]
    );

    let pruned = store.prune(Some(90 * DAY), None).await.unwrap();
    assert_eq!(pruned.events, 4);
    assert_eq!(segments(&dir), ["00000000000000000005.jsonl"]);
    assert!(store.verify().await.unwrap().is_ok());
    assert_eq!(store.session_events("c").await.unwrap(), batches[2]);

    // Everything pruned: the files go, and the chain goes on in a new one.
    let pruned = store.prune(Some(Duration::ZERO), None).await.unwrap();
    assert_eq!(pruned.events, 2);
    assert!(segments(&dir).is_empty());
    let next = link(&mut head, vec![event("d", now, 7)]);
    store.append(&next).await.unwrap();
    assert_eq!(segments(&dir), ["00000000000000000007.jsonl"]);
    let report = store.verify().await.unwrap();
    assert!(report.is_ok() && report.events_checked == 1, "{report:?}");
}

/// A batch whose transaction did not commit (here: refused, as it does not
/// continue the chain) leaves nothing in the files that the next batch
/// does not replace: the file ends with the last stored event.
#[tokio::test]
async fn a_refused_batch_leaves_nothing_behind_in_the_files() {
    let (dir, store, head) = three_batches().await;
    let now = SystemTime::now();
    let mut wrong = head.clone();
    wrong.hash = chain::GENESIS.to_owned();
    let refused = link(&mut wrong, vec![event("d", now, 13)]);
    store.append(&refused).await.unwrap_err();
    let mut head = head;
    let stored = link(&mut head, vec![event("d", now, 14)]);
    store.append(&stored).await.unwrap();
    let (segment, at, bytes) = doc_place(&file(&dir), 13);
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), at + bytes + 1);
    assert!(store.verify().await.unwrap().is_ok());
}

#[tokio::test]
async fn prune_by_size_never_cuts_a_session_and_pruning_all_keeps_the_head() {
    let (_dir, store, head) = aged_trail().await;
    let d_size: u64 = store
        .session_events("d")
        .await
        .unwrap()
        .iter()
        .map(|e| serde_json::to_string(&e.event).unwrap().len() as u64)
        .sum();
    // Room for d and one more event: that event is 7, of b, which began at
    // 4 and is interleaved with c: b and c are kept whole.
    let pruned = store
        .prune(None, Some(d_size + 10 + d_size / 2))
        .await
        .unwrap();
    assert_eq!(pruned.through.unwrap().seq, 3);
    // Room for d only: b and c go, d stays.
    let pruned = store.prune(None, Some(d_size)).await.unwrap();
    assert_eq!((pruned.events, pruned.sessions), (4, 2));
    assert_eq!(pruned.through.unwrap().seq, 7);
    assert_eq!(store.session_events("d").await.unwrap().len(), 2);
    assert!(store.verify().await.unwrap().is_ok());

    // Everything is old: the table empties, the chain's head stays.
    let pruned = store.prune(Some(Duration::ZERO), None).await.unwrap();
    assert_eq!(pruned.through, Some(head.clone()));
    assert!(store.sessions(10).await.unwrap().is_empty());
    assert_eq!(store.head().await.unwrap(), Some(head.clone()));
    let report = store.verify().await.unwrap();
    assert!(report.is_ok());
    assert_eq!((report.events_checked, report.head), (0, head.clone()));

    // And the chain continues from it.
    let mut next = head;
    let batch = link(&mut next, vec![event("e", SystemTime::now(), 10)]);
    store.append(&batch).await.unwrap();
    let report = store.verify().await.unwrap();
    assert_eq!((report.events_checked, report.head), (1, next));
}

#[tokio::test]
async fn a_signed_checkpoint_catches_a_chain_rewritten_wholesale() {
    let (dir, store, head) = three_batches().await;
    let key_file = dir.path().join("audit-signing.key");
    let (key, created) = load_or_generate_signing_key(&key_file).unwrap();
    assert!(created);
    let checkpoint = store.checkpoint(&key).await.unwrap();
    assert_eq!((checkpoint.seq, &checkpoint.hash), (head.seq, &head.hash));
    assert_eq!(
        checkpoint.public_key.as_deref(),
        Some(public_key_hex(&key).as_str())
    );
    let public_key = parse_public_key(&public_key_hex(&key)).unwrap();
    assert!(checkpoint.signature_verifies(&public_key));

    // Held elsewhere: the public key and the checkpoint.
    let trusted = TrustedCheckpoints {
        public_key: Some(public_key),
        checkpoints: vec![checkpoint.clone()],
    };
    let report = store.verify_against(trusted.clone()).await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.checkpoints_checked, 2);

    // The forger hides the denial at 7, relinks everything from genesis
    // and removes the stored checkpoint.
    rewrite_wholesale(&file(&dir), |event| {
        if event.decision.as_deref() == Some("deny") {
            event.decision = Some("allow".into());
            event.status = 200;
        }
    });
    raw(&file(&dir))
        .execute("DELETE FROM audit_checkpoints", [])
        .unwrap();
    // The chain alone cannot tell...
    assert!(store.verify().await.unwrap().is_ok());
    // ...the checkpoint held elsewhere can.
    let found = store
        .verify_against(trusted)
        .await
        .unwrap()
        .problem
        .unwrap();
    assert!(
        matches!(&found, AuditProblem::CheckpointNotOnChain { seq: 12, expected, .. } if *expected == head.hash),
        "{found:?}"
    );
    assert!(
        found
            .to_string()
            .contains("the chain was rewritten after it was made"),
        "{found}"
    );

    // An anchor (seq and hash, no signature) does as well.
    let anchor = TrustedCheckpoints {
        public_key: None,
        checkpoints: vec![Checkpoint::anchor(head.seq, head.hash.clone())],
    };
    assert_eq!(
        store
            .verify_against(anchor)
            .await
            .unwrap()
            .problem
            .unwrap()
            .seq(),
        12
    );
}

#[tokio::test]
async fn a_tampered_or_foreign_signature_and_a_truncated_tail_are_reported() {
    let (dir, store, _) = three_batches().await;
    let key = generate_signing_key(&dir.path().join("k1")).unwrap();
    let checkpoint = store.checkpoint(&key).await.unwrap();
    assert!(store.verify().await.unwrap().is_ok());
    let trusted = TrustedCheckpoints {
        public_key: Some(parse_public_key(checkpoint.public_key.as_ref().unwrap()).unwrap()),
        checkpoints: vec![],
    };

    // A flipped signature digit.
    let signature = checkpoint.signature.clone().unwrap();
    let flipped = format!(
        "{}{}",
        if signature.starts_with('0') { '1' } else { '0' },
        &signature[1..]
    );
    let connection = raw(&file(&dir));
    connection
        .execute("UPDATE audit_checkpoints SET signature = ?1", [&flipped])
        .unwrap();
    let found = problem(&store).await.unwrap();
    assert_eq!(found, AuditProblem::BadSignature { seq: 12 });
    assert_eq!(
        found.to_string(),
        "the checkpoint at event 12 has an invalid signature: it was forged or edited"
    );

    // Re-signed with the forger's own key: consistent, but not trusted.
    let forger = generate_signing_key(&dir.path().join("k2")).unwrap();
    let forged =
        forger.sign(airlock_store::audit::checkpoint_message(12, &checkpoint.hash).as_bytes());
    connection
        .execute(
            "UPDATE audit_checkpoints SET signature = ?1, public_key = ?2",
            [hex::encode(forged.as_ref()), public_key_hex(&forger)],
        )
        .unwrap();
    assert!(store.verify().await.unwrap().is_ok());
    let found = store.verify_against(trusted.clone()).await.unwrap().problem;
    assert!(
        matches!(found, Some(AuditProblem::UntrustedKey { seq: 12, .. })),
        "{found:?}"
    );

    // Restored, then the last events deleted.
    connection
        .execute(
            "UPDATE audit_checkpoints SET signature = ?1, public_key = ?2",
            [signature, public_key_hex(&key)],
        )
        .unwrap();
    assert!(store.verify_against(trusted.clone()).await.unwrap().is_ok());
    connection
        .execute("DELETE FROM audit_events WHERE seq > 10", [])
        .unwrap();
    assert_eq!(
        problem(&store).await,
        Some(AuditProblem::CheckpointBeyondHead { seq: 12, head: 10 })
    );
}

#[test]
fn signing_key_files_are_private_reloadable_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signing.key");
    let key = generate_signing_key(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let loaded = load_signing_key(&path).unwrap();
    assert_eq!(public_key_hex(&loaded), public_key_hex(&key));
    let (again, created) = load_or_generate_signing_key(&path).unwrap();
    assert!(!created);
    assert_eq!(public_key_hex(&again), public_key_hex(&key));

    let error = generate_signing_key(&path).unwrap_err().to_string();
    assert!(error.contains("cannot create it"), "{error}");
    std::fs::write(dir.path().join("junk"), "not a key").unwrap();
    let error = load_signing_key(&dir.path().join("junk"))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("not an Ed25519 PKCS#8 private key"),
        "{error}"
    );
    assert!(
        parse_public_key("abcd")
            .unwrap_err()
            .to_string()
            .contains("32 bytes")
    );
}

// --- HAR ---------------------------------------------------------------

/// Checks `value` against the HAR 1.2 structure: every required field with
/// its type, optional ones typed when present, custom fields `_`-prefixed.
mod har_1_2 {
    use serde_json::{Map, Value};

    #[derive(Clone, Copy)]
    enum Kind {
        Str,
        Num,
        Obj,
        Arr,
    }
    use Kind::{Arr, Num, Obj, Str};

    fn is(value: &Value, kind: Kind) -> bool {
        match kind {
            Str => value.is_string(),
            Num => value.is_number(),
            Obj => value.is_object(),
            Arr => value.is_array(),
        }
    }

    /// `value` is an object with `required` and at most `optional` fields
    /// (besides `_custom` ones), all of the right types.
    fn object<'v>(
        value: &'v Value,
        at: &str,
        required: &[(&str, Kind)],
        optional: &[(&str, Kind)],
    ) -> &'v Map<String, Value> {
        let map = value
            .as_object()
            .unwrap_or_else(|| panic!("{at}: not an object"));
        for (name, kind) in required {
            let field = map
                .get(*name)
                .unwrap_or_else(|| panic!("{at}.{name}: missing"));
            assert!(is(field, *kind), "{at}.{name}: wrong type: {field}");
        }
        for (name, field) in map {
            if name.starts_with('_') || required.iter().any(|(n, _)| n == name) {
                continue;
            }
            let (_, kind) = optional
                .iter()
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| panic!("{at}.{name}: not a HAR 1.2 field"));
            assert!(is(field, *kind), "{at}.{name}: wrong type: {field}");
        }
        map
    }

    fn date(value: &Value, at: &str) {
        let text = value.as_str().unwrap();
        humantime::parse_rfc3339(text).unwrap_or_else(|e| panic!("{at}: {text:?}: {e}"));
    }

    fn pairs(value: &Value, at: &str) {
        for (i, pair) in value.as_array().unwrap().iter().enumerate() {
            object(
                pair,
                &format!("{at}[{i}]"),
                &[("name", Str), ("value", Str)],
                &[("comment", Str)],
            );
        }
    }

    pub(crate) fn validate(har: &Value) {
        let root = object(har, "", &[("log", Obj)], &[]);
        let log = object(
            &root["log"],
            "log",
            &[("version", Str), ("creator", Obj), ("entries", Arr)],
            &[("browser", Obj), ("pages", Arr), ("comment", Str)],
        );
        assert_eq!(log["version"], "1.2");
        let creator_fields = [("name", Str), ("version", Str)];
        object(
            &log["creator"],
            "log.creator",
            &creator_fields,
            &[("comment", Str)],
        );
        let mut page_ids = Vec::new();
        for (i, page) in log["pages"].as_array().into_iter().flatten().enumerate() {
            let at = format!("log.pages[{i}]");
            let page = object(
                page,
                &at,
                &[
                    ("startedDateTime", Str),
                    ("id", Str),
                    ("title", Str),
                    ("pageTimings", Obj),
                ],
                &[("comment", Str)],
            );
            date(&page["startedDateTime"], &at);
            object(
                &page["pageTimings"],
                &format!("{at}.pageTimings"),
                &[],
                &[("onContentLoad", Num), ("onLoad", Num), ("comment", Str)],
            );
            page_ids.push(page["id"].as_str().unwrap().to_owned());
        }
        for (i, entry) in log["entries"].as_array().unwrap().iter().enumerate() {
            let at = format!("log.entries[{i}]");
            let entry = object(
                entry,
                &at,
                &[
                    ("startedDateTime", Str),
                    ("time", Num),
                    ("request", Obj),
                    ("response", Obj),
                    ("cache", Obj),
                    ("timings", Obj),
                ],
                &[
                    ("pageref", Str),
                    ("serverIPAddress", Str),
                    ("connection", Str),
                    ("comment", Str),
                ],
            );
            date(&entry["startedDateTime"], &at);
            if let Some(page) = entry.get("pageref") {
                assert!(
                    page_ids.iter().any(|id| id == page),
                    "{at}.pageref: no such page"
                );
            }
            let request = object(
                &entry["request"],
                &format!("{at}.request"),
                &[
                    ("method", Str),
                    ("url", Str),
                    ("httpVersion", Str),
                    ("cookies", Arr),
                    ("headers", Arr),
                    ("queryString", Arr),
                    ("headersSize", Num),
                    ("bodySize", Num),
                ],
                &[("postData", Obj), ("comment", Str)],
            );
            pairs(&request["headers"], &format!("{at}.request.headers"));
            pairs(
                &request["queryString"],
                &format!("{at}.request.queryString"),
            );
            if let Some(post) = request.get("postData") {
                let post = object(
                    post,
                    &format!("{at}.request.postData"),
                    &[("mimeType", Str)],
                    &[("params", Arr), ("text", Str), ("comment", Str)],
                );
                assert!(
                    post.contains_key("text") != post.contains_key("params"),
                    "{at}.request.postData: text or params, not both"
                );
            }
            let response = object(
                &entry["response"],
                &format!("{at}.response"),
                &[
                    ("status", Num),
                    ("statusText", Str),
                    ("httpVersion", Str),
                    ("cookies", Arr),
                    ("headers", Arr),
                    ("content", Obj),
                    ("redirectURL", Str),
                    ("headersSize", Num),
                    ("bodySize", Num),
                ],
                &[("comment", Str)],
            );
            pairs(&response["headers"], &format!("{at}.response.headers"));
            object(
                &response["content"],
                &format!("{at}.response.content"),
                &[("size", Num), ("mimeType", Str)],
                &[
                    ("compression", Num),
                    ("text", Str),
                    ("encoding", Str),
                    ("comment", Str),
                ],
            );
            object(
                &entry["cache"],
                &format!("{at}.cache"),
                &[],
                &[
                    ("beforeRequest", Obj),
                    ("afterRequest", Obj),
                    ("comment", Str),
                ],
            );
            let timings = object(
                &entry["timings"],
                &format!("{at}.timings"),
                &[("send", Num), ("wait", Num), ("receive", Num)],
                &[
                    ("blocked", Num),
                    ("dns", Num),
                    ("connect", Num),
                    ("ssl", Num),
                    ("comment", Str),
                ],
            );
            // `time` is the sum of the timings that apply.
            let sum: f64 = ["blocked", "dns", "connect", "send", "wait", "receive"]
                .iter()
                .filter_map(|name| timings.get(*name).and_then(Value::as_f64))
                .filter(|t| *t >= 0.0)
                .sum();
            assert_eq!(entry["time"].as_f64(), Some(sum), "{at}.time");
        }
    }
}

fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| {
            out.push(k.clone());
            strings(v, out);
        }),
        _ => {}
    }
}

#[tokio::test]
async fn a_session_exports_as_valid_har_1_2_without_credentials() {
    let (_dir, store, _) = three_batches().await;
    let mut events = store.session_events("b").await.unwrap();
    events[0].event.method = "PUT".into();
    events[0].event.request_body = Some(r#"{"location":"westeurope"}"#.into());
    events[0].event.bytes_in = 25;
    events[2].event.response_body = Some(r#"{"keys":[{"value":"***MASKED:1a2b3c4d***"}]}"#.into());
    events[2].event.masked_count = 1;
    events[2].event.upstream_request_id = Some("ms-req-1".into());
    events.extend(store.session_events("c").await.unwrap());

    let har = airlock_store::har::session_har(&events);
    har_1_2::validate(&har);
    let log = &har["log"];
    assert_eq!(log["creator"]["name"], "airlock");
    assert_eq!(log["pages"].as_array().unwrap().len(), 2);
    assert_eq!(log["pages"][0]["id"], "b");
    assert_eq!(log["entries"].as_array().unwrap().len(), 7);

    let put = &log["entries"][0];
    assert_eq!(put["pageref"], "b");
    assert_eq!(
        put["request"]["url"],
        "https://localhost/subscriptions/s/resourceGroups/rg-6?api-version=2021-04-01"
    );
    assert_eq!(put["request"]["queryString"][0]["name"], "api-version");
    assert_eq!(
        put["request"]["postData"]["text"],
        r#"{"location":"westeurope"}"#
    );
    let headers = &put["request"]["headers"];
    assert_eq!(headers[0]["name"], "x-airlock-request-id");
    assert_eq!(headers[1]["value"], "b");

    let denied = &log["entries"][1];
    assert_eq!(denied["response"]["status"], 403);
    assert_eq!(denied["response"]["statusText"], "Forbidden");
    assert_eq!(denied["_airlock"]["decision"], "deny");
    assert_eq!(denied["_airlock"]["rule"], "no-vm-delete");
    assert_eq!(denied["_airlock"]["principal"]["id"], "oid-b");

    let masked = &log["entries"][2];
    assert_eq!(masked["_airlock"]["approvalId"], "appr-1");
    assert_eq!(masked["_airlock"]["approvers"][0], "carol");
    assert_eq!(masked["response"]["headers"][0]["value"], "ms-req-1");
    assert!(
        masked["response"]["content"]["text"]
            .as_str()
            .unwrap()
            .contains("***MASKED:1a2b3c4d***")
    );

    let mut all = Vec::new();
    strings(&har, &mut all);
    for text in all {
        let lower = text.to_ascii_lowercase();
        assert!(
            !text.contains("eyJ") && !lower.contains("bearer") && lower != "authorization",
            "token-like value in the HAR: {text}"
        );
    }
}
