//! `SqliteStore` on real database files in a temporary directory: the
//! `ApprovalStore` conformance suite, restarts, two handles on one file
//! (as two gateway processes would have), erasure, and refused files.

// Tests unwrap freely: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use airlock_approval::conformance::{pending_request, principal};
use airlock_approval::{ApprovalError, ApprovalId, ApprovalState, ApprovalStore, SealedRequest};
use airlock_core::ApprovalWait;
use airlock_store::{SqliteStore, StoreError};
use tempfile::TempDir;

/// A new store on a new file; the directory lives as long as the test.
async fn sqlite() -> (TempDir, Arc<dyn ApprovalStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("airlock.db"))
        .await
        .unwrap();
    (dir, Arc::new(store))
}

airlock_approval::conformance_tests!(sqlite);

fn file(dir: &TempDir) -> PathBuf {
    dir.path().join("airlock.db")
}

/// A connection of our own to the file, to look at what is really there.
fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

/// The `sealed` column of approval `id`, read straight from the file.
fn sealed_column(path: &Path, id: ApprovalId) -> Option<Vec<u8>> {
    raw(path)
        .query_row(
            "SELECT sealed FROM approvals WHERE id = ?1",
            [id.to_string()],
            |row| row.get(0),
        )
        .unwrap()
}

fn alice() -> airlock_core::Principal {
    principal("alice", &["approvers"])
}

#[tokio::test]
async fn a_pending_approval_survives_a_restart_and_is_approvable_after() {
    let dir = tempfile::tempdir().unwrap();
    let request = pending_request(&principal("agent", &[]), ApprovalWait::Async);
    let sealed = SealedRequest::from_bytes(b"sealed PUT".to_vec());
    {
        let store = SqliteStore::open(file(&dir)).await.unwrap();
        store
            .create(request.clone(), Some(sealed.clone()))
            .await
            .unwrap();
    }

    let store = SqliteStore::open(file(&dir)).await.unwrap();
    assert_eq!(store.path(), file(&dir));
    assert_eq!(store.get(request.id).await.unwrap(), Some(request.clone()));
    let pending = store.list(Some(ApprovalState::Pending)).await.unwrap();
    assert_eq!(pending, vec![request.clone()]);
    let mut states = store.subscribe(request.id).await.unwrap();
    let approved = store
        .decide(request.id, &alice(), true, None)
        .await
        .unwrap();
    assert_eq!(approved.state, ApprovalState::Approved);
    states.changed().await.unwrap();
    assert_eq!(*states.borrow(), ApprovalState::Approved);
    let grant = store.consume(request.id).await.unwrap().unwrap();
    assert_eq!(
        grant.request,
        Some(sealed),
        "the stored request survived too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_handles_on_one_file_race_and_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let one = Arc::new(SqliteStore::open(file(&dir)).await.unwrap());
    let two = Arc::new(SqliteStore::open(file(&dir)).await.unwrap());
    let handles: [Arc<dyn ApprovalStore>; 2] = [one, two];

    for _round in 0..4 {
        // Two approvers decide at once, one through each handle: one decision counts.
        let held = pending_request(&principal("agent", &[]), ApprovalWait::Hold);
        handles[0].create(held.clone(), None).await.unwrap();
        let deciders: Vec<_> = ["alice", "bob"]
            .into_iter()
            .zip(handles.iter().cloned())
            .map(|(name, store)| {
                tokio::spawn(async move {
                    store
                        .decide(held.id, &principal(name, &["approvers"]), true, None)
                        .await
                })
            })
            .collect();
        let mut decided = 0;
        for task in deciders {
            match task.await.unwrap() {
                Ok(request) => {
                    assert_eq!(request.state, ApprovalState::Approved);
                    decided += 1;
                }
                Err(ApprovalError::NotPending {
                    state: ApprovalState::Approved,
                    ..
                }) => {}
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!(decided, 1, "one decision is recorded");
        let stored = handles[1].get(held.id).await.unwrap().unwrap();
        assert_eq!(stored.decisions.len(), 1);

        // Sixteen retries, half through each handle: one grant.
        let retries: Vec<_> = (0..16)
            .map(|i| {
                let store = handles[i % 2].clone();
                tokio::spawn(async move { store.consume_grant(&held.fingerprint).await.unwrap() })
            })
            .collect();
        let mut admitted = Vec::new();
        for task in retries {
            admitted.extend(task.await.unwrap());
        }
        assert_eq!(admitted, vec![held.id]);

        // An approved async request, consumed through both handles at once:
        // its stored request is handed out once.
        let queued = pending_request(&principal("agent", &[]), ApprovalWait::Async);
        handles[1]
            .create(
                queued.clone(),
                Some(SealedRequest::from_bytes(b"PUT".to_vec())),
            )
            .await
            .unwrap();
        handles[0]
            .decide(queued.id, &alice(), true, None)
            .await
            .unwrap();
        let consumers: Vec<_> = (0..8)
            .map(|i| {
                let store = handles[i % 2].clone();
                tokio::spawn(async move { store.consume(queued.id).await.unwrap() })
            })
            .collect();
        let mut grants = Vec::new();
        for task in consumers {
            grants.extend(task.await.unwrap());
        }
        assert_eq!(grants.len(), 1);
        assert_eq!(grants[0].request.as_ref().unwrap().as_bytes(), b"PUT");
    }
}

#[tokio::test]
async fn sealed_bytes_are_gone_from_the_file_once_final() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(&dir);
    let store = SqliteStore::open(&path).await.unwrap();
    let agent = principal("agent", &[]);
    let marker = b"SECRET-SEALED-REQUEST-MARKER".repeat(8);
    let sealed = || Some(SealedRequest::from_bytes(marker.clone()));

    let consumed = pending_request(&agent, ApprovalWait::Async);
    let denied = pending_request(&agent, ApprovalWait::Async);
    let mut expired = pending_request(&agent, ApprovalWait::Async);
    expired.expires_at = std::time::SystemTime::now() - Duration::from_secs(1);
    let abandoned = pending_request(&agent, ApprovalWait::Async);
    let waiting = pending_request(&agent, ApprovalWait::Async);
    for request in [&consumed, &denied, &expired, &abandoned, &waiting] {
        store.create(request.clone(), sealed()).await.unwrap();
        assert_eq!(sealed_column(&path, request.id), Some(marker.clone()));
    }

    store
        .decide(consumed.id, &alice(), true, None)
        .await
        .unwrap();
    assert_eq!(
        sealed_column(&path, consumed.id),
        Some(marker.clone()),
        "kept while approved"
    );
    store.consume(consumed.id).await.unwrap().unwrap();
    store
        .decide(denied.id, &alice(), false, None)
        .await
        .unwrap();
    let due = store.expire_due().await.unwrap();
    assert_eq!(
        due.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![expired.id]
    );
    store
        .mark(abandoned.id, ApprovalState::Abandoned)
        .await
        .unwrap();

    for (what, id) in [
        ("consumed", consumed.id),
        ("denied", denied.id),
        ("expired", expired.id),
        ("abandoned", abandoned.id),
    ] {
        assert_eq!(sealed_column(&path, id), None, "{what}: sealed is NULL");
    }
    assert_eq!(sealed_column(&path, waiting.id), Some(marker.clone()));

    // Nor are the bytes left in free space (secure_delete): once the last
    // one still pending is gone and the file is closed (WAL checkpointed),
    // they appear nowhere in it.
    store
        .mark(waiting.id, ApprovalState::Abandoned)
        .await
        .unwrap();
    drop(store);
    let bytes = std::fs::read(&path).unwrap();
    assert!(
        !bytes.windows(marker.len()).any(|w| w == marker.as_slice()),
        "the sealed bytes are still somewhere in the file"
    );
}

#[tokio::test]
async fn the_file_is_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let _store = SqliteStore::open(file(&dir)).await.unwrap();
    let mode: String = raw(&file(&dir))
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn reopening_runs_no_migration_twice() {
    let dir = tempfile::tempdir().unwrap();
    let request = pending_request(&principal("agent", &[]), ApprovalWait::Hold);
    SqliteStore::open(file(&dir))
        .await
        .unwrap()
        .create(request.clone(), None)
        .await
        .unwrap();
    let version = |path: &Path| -> u32 {
        raw(path)
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap()
    };
    let first = version(&file(&dir));
    assert!(first >= 1);
    for _ in 0..2 {
        // A migration run again would fail: its CREATE TABLE has no IF NOT EXISTS.
        let store = SqliteStore::open(file(&dir)).await.unwrap();
        assert_eq!(store.get(request.id).await.unwrap(), Some(request.clone()));
        drop(store);
        assert_eq!(version(&file(&dir)), first);
    }
}

#[tokio::test]
async fn a_file_from_a_newer_airlock_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(&dir);
    raw(&path)
        .execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;")
        .unwrap();

    let err = SqliteStore::open(&path).await.unwrap_err();
    assert!(
        matches!(err, StoreError::TooNew { found: 99, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("schema version 99"), "{message}");
    assert!(message.contains("knows versions up to 6"), "{message}");
    assert!(message.contains("upgrade Airlock"), "{message}");

    let check = raw(&path);
    let mode: String = check
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "delete", "the file is not switched to WAL");
    let version: u32 = check
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, 99);
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("airlock.toml");
    let content = "[listen]\naddress = \"0.0.0.0:8443\"\n".repeat(200);
    std::fs::write(&path, &content).unwrap();

    let err = SqliteStore::open(&path).await.unwrap_err();
    assert!(matches!(err, StoreError::NotADatabase { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("{} is not an SQLite database", path.display())),
        "{message}"
    );
    assert!(
        message.contains("point the store at another path"),
        "{message}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), content);
}

#[tokio::test]
async fn a_file_in_a_missing_directory_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("airlock.db");
    let err = SqliteStore::open(&path).await.unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains("check that its directory exists"),
        "{message}"
    );
}
