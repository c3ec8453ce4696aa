//! Checkpointing the WAL off the write path.
//!
//! SQLite's automatic checkpoint runs inside the commit that takes the WAL
//! past 1000 pages: that commit copies the WAL into the database file and
//! fsyncs both before it returns. On disk that was a 40 ms stall every
//! fourth audit batch (512 events) and held appends near 30 000 events/s.
//!
//! So the writing connection only asks for a checkpoint (its WAL hook, which
//! replaces the automatic one) and a [`Checkpointer`] thread, on a
//! connection of its own, runs it `PASSIVE`: it never waits for the writer
//! nor makes it wait. It is asked often ([`CHECKPOINT_AFTER`]) so that each
//! checkpoint is small and often ends before the next commit: only then does
//! SQLite fsync the database file and let the WAL start over. Asked every
//! 1000 pages instead, checkpoints never ended first under a steady stream
//! of batches, the WAL grew to [`WAL_BOUND`], and the final checkpoint
//! fsynced all of it while holding writers up for 150–340 ms.
//!
//! If the WAL still grows past [`WAL_BOUND`] (checkpoints do not keep up,
//! or a long read pins old frames), a `RESTART` checkpoint makes writers
//! wait for one full checkpoint, so the file stays bounded.
//!
//! Guarantees do not change: with WAL and `synchronous=NORMAL`, a
//! transaction is committed when its frames are in the WAL, whoever later
//! checkpoints them; a checkpoint fsyncs the WAL before it writes the
//! database file, and the WAL is only reused once the database file is
//! fsynced. The audit trail's document files are flushed before each
//! checkpoint. The last connection to close (the writer's: the thread is
//! stopped first) still checkpoints everything and removes the WAL.

use std::ffi::c_int;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, ErrorCode, MAIN_DB};

use crate::StoreError;
use crate::sqlite::BUSY_TIMEOUT;

/// New WAL content, in bytes, after which a commit asks for a checkpoint
/// (an audit batch of 512 events is about 1.1 MiB).
const CHECKPOINT_AFTER: i64 = 1 << 20;

/// WAL size, in bytes, past which a checkpoint waits for writers (and makes
/// them wait) so that the next transaction starts the WAL over.
const WAL_BOUND: i64 = 64 << 20;

/// The thread checkpointing one database file, stopped (and joined) when
/// dropped.
pub(crate) struct Checkpointer {
    signal: Arc<Signal>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer").finish_non_exhaustive()
    }
}

impl Checkpointer {
    /// Turns automatic checkpoints off on `writer` and starts the thread
    /// that does them instead, on a connection of its own to `path`.
    pub(crate) fn start(path: &Path, writer: &mut Connection) -> Result<Self, StoreError> {
        let failed = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let connection = Connection::open(path).map_err(failed)?;
        // A RESTART checkpoint waits for the writer as long as a write may.
        connection.busy_timeout(BUSY_TIMEOUT).map_err(failed)?;
        // Reading the schema makes the connection find the WAL; until then a
        // checkpoint does nothing.
        let mode: String = connection
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .map_err(failed)?;
        let signal = Arc::new(Signal::default());
        if !mode.eq_ignore_ascii_case("wal") {
            // No WAL (see `Database::open`), nothing to checkpoint.
            return Ok(Self {
                signal,
                thread: None,
            });
        }
        let page_size: i64 = connection
            .pragma_query_value(None, "page_size", |row| row.get(0))
            .map_err(failed)?;
        let pages = |bytes: i64| c_int::try_from(bytes / page_size.max(512)).unwrap_or(c_int::MAX);
        let (every, bound) = (pages(CHECKPOINT_AFTER), pages(WAL_BOUND));

        let asking = Arc::clone(&signal);
        // The WAL's size in frames when a checkpoint was last asked for.
        let mut asked_at: c_int = 0;
        // Called after each commit of `writer`, with the frames now in the
        // WAL; asks for a checkpoint every CHECKPOINT_AFTER of new frames
        // (the WAL does not start over after every checkpoint, so its size
        // alone would not tell). Setting a WAL hook turns SQLite's automatic
        // checkpoint off.
        writer
            .wal_hook(Some(move |_: &mut _, frames: c_int| {
                if frames < asked_at {
                    asked_at = 0; // the WAL started over
                }
                if frames - asked_at >= every {
                    asked_at = frames;
                    asking.ask();
                }
                Ok(())
            }))
            .map_err(failed)?;

        let waiting = Arc::clone(&signal);
        let file = path.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("airlock-store-checkpoint".into())
            .spawn(move || {
                // The first trail segment the next flush covers.
                let mut flushed = 0;
                while waiting.wait() {
                    flushed = flush_documents(&file, flushed);
                    checkpoint(&connection, &file, bound);
                }
                // Closing the writer checkpoints the rest.
                flush_documents(&file, flushed);
            })
            .map_err(|error| StoreError::Worker {
                path: path.to_path_buf(),
                reason: error.to_string(),
            })?;
        Ok(Self {
            signal,
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.signal.stop();
        if let Some(thread) = self.thread.take() {
            // Waits for a checkpoint under way (it panics only on a bug).
            let _ = thread.join();
        }
    }
}

/// Flushes the audit trail's document files from segment `from` on (see
/// [`crate::audit`]), before the rows pointing into them are checkpointed;
/// returns where the next flush starts. A failure is logged: the rows
/// checkpointed anyway keep their place, and the documents are flushed
/// again next time.
fn flush_documents(path: &Path, from: u64) -> u64 {
    match crate::audit::flush_documents(path, from) {
        Ok(last) => last,
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot flush the audit trail's document files");
            from
        }
    }
}

/// A `PASSIVE` checkpoint; a `RESTART` one too if the WAL has grown past
/// `bound` frames. Failures are logged: the next commit asks again.
fn checkpoint(connection: &Connection, path: &Path, bound: c_int) {
    let mut mode = CheckpointMode::PASSIVE;
    loop {
        match connection.wal_checkpoint_v2(Some(MAIN_DB), mode) {
            Ok((frames, _)) if frames > bound && matches!(mode, CheckpointMode::PASSIVE) => {
                mode = CheckpointMode::RESTART;
            }
            Ok(_) => return,
            // Another connection (process) is checkpointing, or a RESTART
            // gave up waiting: the next request tries again.
            Err(error) if error.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) => {
                tracing::debug!(path = %path.display(), %error, "WAL checkpoint skipped");
                return;
            }
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "WAL checkpoint failed");
                return;
            }
        }
    }
}

/// Requests for the thread: checkpoint, or stop.
#[derive(Default)]
struct Signal {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    wanted: bool,
    stop: bool,
}

impl Signal {
    fn ask(&self) {
        self.lock().wanted = true;
        self.changed.notify_one();
    }

    fn stop(&self) {
        self.lock().stop = true;
        self.changed.notify_one();
    }

    /// Waits for a request: `true` to checkpoint, `false` to stop (closing
    /// the writer's connection checkpoints what is left).
    fn wait(&self) -> bool {
        let mut state = self.lock();
        loop {
            if state.stop {
                return false;
            }
            if std::mem::take(&mut state.wanted) {
                return true;
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
