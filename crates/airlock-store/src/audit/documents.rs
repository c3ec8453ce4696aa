//! Event documents in append-only files beside the database.
//!
//! An event's JSON is most of its row (2-3 KiB against ~300 bytes of
//! index columns), and in SQLite every byte of it was copied four times
//! more than needed: into the WAL (with the pages each commit rewrites),
//! read back and written again into the database file by the checkpoint,
//! and flushed to disk twice. Measured under the bench's load, the
//! database's threads moved ~17 KB per 2.4 KB event and cost more CPU than
//! all the gateway's layers together (see `docs/bench/notes.md`).
//!
//! So the documents of a SQLite trail go to segment files in
//! `<database>-trail/`, each named by the `seq` of its first event
//! (`00000000000000000001.jsonl`): one JSON document per line, written once,
//! at the end, before the rows that point at them commit. The rows keep the
//! index columns, the hashes and where the document lies (`doc_file`,
//! `doc_at`, `doc_bytes`); rows written before this keep their document
//! inline in `doc` (and `doc_file` NULL).
//!
//! Durability is SQLite's `synchronous = NORMAL`, as for the rows: a commit
//! survives the process crashing, and the documents are flushed to disk
//! ([`flush`]) before each WAL checkpoint flushes the rows. A power loss can
//! take the last events (as it can take the last transactions); if it took
//! documents whose rows survived, `verify` reports those events'
//! documents missing. Flushing each batch instead cost more CPU than it
//! saved (one `fdatasync` per batch: the batch's data and the file's new
//! size through the journal, ~5 µs per event under load).
//!
//! Where a batch goes is decided inside its write transaction, from the last
//! row: after the end of its document, or a new segment once that one holds
//! its size limit. Bytes past the last committed document (a batch whose
//! transaction failed, or a crash between the two) are overwritten by the
//! next batch and cut off, so the file always ends with the last stored
//! event. Retention deletes whole segments once no row points into them.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, Transaction};

use super::sqlite;
use crate::StoreError;

/// By default, a segment holding this many bytes takes no more documents:
/// the next batch starts a new one (so retention frees space in steps this
/// size; [`SqliteStore::audit_segment_bytes`](crate::SqliteStore::audit_segment_bytes)).
pub(crate) const SEGMENT_BYTES: u64 = 64 << 20;

/// Where one event's document lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DocRef {
    /// The segment: the `seq` of its first event.
    pub(crate) file: u64,
    /// Its first byte in the segment.
    pub(crate) at: u64,
    /// Its length (without the newline after it).
    pub(crate) bytes: u64,
}

/// The directory holding the segments of the database at `database`.
pub(crate) fn trail_dir(database: &Path) -> PathBuf {
    let mut name = database.file_name().unwrap_or_default().to_os_string();
    name.push("-trail");
    database.with_file_name(name)
}

/// The segment file whose first event is `first`.
pub(crate) fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.jsonl"))
}

/// The segment numbers (first `seq`s) of the segment files in `dir`, in
/// order; none if `dir` does not exist.
pub(crate) fn segments(dir: &Path) -> io::Result<Vec<u64>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut found = Vec::new();
    for entry in entries {
        let name = entry?.file_name();
        if let Some(first) = name
            .to_str()
            .and_then(|name| name.strip_suffix(".jsonl"))
            .and_then(|digits| digits.parse().ok())
        {
            found.push(first);
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// Writes the documents of a batch whose first event is `first_seq` where
/// the trail's last document ends (or in a new segment), and returns where
/// each one lies; [`flush`] brings them to disk before the next WAL
/// checkpoint. Called inside the batch's write transaction, which
/// serializes writers, in this process or another.
pub(crate) fn write_batch(
    transaction: &Transaction<'_>,
    database: &Path,
    first_seq: u64,
    documents: &[&str],
    segment_bytes: u64,
) -> Result<Vec<DocRef>, StoreError> {
    let last: Option<(Option<u64>, Option<u64>)> = transaction
        .prepare_cached(
            "SELECT doc_file, doc_at + doc_bytes + 1 FROM audit_events ORDER BY seq DESC LIMIT 1",
        )
        .and_then(|mut statement| {
            statement
                .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })
        .map_err(sqlite(database))?;
    let (file, start) = match last {
        Some((Some(file), Some(end))) if end < segment_bytes => (file, end),
        _ => (first_seq, 0),
    };
    let dir = trail_dir(database);
    let failed = |action: &str, path: &Path, error: io::Error| StoreError::AuditFile {
        path: path.to_path_buf(),
        action: action.to_owned(),
        source: error,
    };
    let path = segment_path(&dir, file);
    let created = create_dir(&dir).map_err(|error| failed("create", &dir, error))?;
    let segment = open_for_append(&path).map_err(|error| failed("open", &path, error))?;
    let total: usize = documents.iter().map(|doc| doc.len() + 1).sum();
    let mut buffer = Vec::with_capacity(total);
    let mut refs = Vec::with_capacity(documents.len());
    let mut at = start;
    for doc in documents {
        buffer.extend_from_slice(doc.as_bytes());
        buffer.push(b'\n');
        refs.push(DocRef {
            file,
            at,
            bytes: doc.len() as u64,
        });
        at += doc.len() as u64 + 1;
    }
    let written = (|| {
        segment.write_all_at(&buffer, start)?;
        // What an abandoned batch left beyond: the file ends with this one.
        if segment.metadata()?.len() > at {
            segment.set_len(at)?;
        }
        Ok(())
    })();
    written.map_err(|error| failed("write", &path, error))?;
    if created || start == 0 {
        // A new directory entry is durable once its directory is flushed.
        File::open(&dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|error| failed("flush", &dir, error))?;
    }
    Ok(refs)
}

/// Warns when the trail's directory of the database at `database` is open
/// to others than its owner (as for the database file itself).
pub(crate) fn warn_if_shared(database: &Path) {
    let dir = trail_dir(database);
    if let Some(mode) = shared_mode(&dir) {
        tracing::warn!(
            path = %dir.display(),
            mode = format_args!("{mode:o}"),
            "the audit trail's document directory is open to others than its owner; fix: chmod 700 it and 600 its files"
        );
    }
}

/// The mode of `dir` when group or others have any access to it.
fn shared_mode(dir: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(dir).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

/// Creates `dir` (owner only: it holds the audit trail); says whether it
/// was missing.
fn create_dir(dir: &Path) -> io::Result<bool> {
    use std::os::unix::fs::DirBuilderExt as _;
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(error) => Err(error),
    }
}

/// Opens (or creates, readable by its owner only) a segment for writing.
fn open_for_append(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
}

/// Reads documents for a walk over many rows, keeping the last segment
/// it opened open.
#[derive(Debug)]
pub(crate) struct DocReader {
    dir: PathBuf,
    /// The segment open, and its length when last looked at.
    open: Option<(u64, File, u64)>,
}

impl DocReader {
    /// A reader for the trail of the database at `database`.
    pub(crate) fn new(database: &Path) -> Self {
        Self {
            dir: trail_dir(database),
            open: None,
        }
    }

    /// The document `doc` points at. A missing segment, or one that ends
    /// before the document does, is [`io::ErrorKind::NotFound`] or
    /// [`io::ErrorKind::UnexpectedEof`]; a document that is not UTF-8 is
    /// [`io::ErrorKind::InvalidData`].
    ///
    /// A reference past the end of its file (a row edited to point beyond
    /// it) is refused before anything is allocated for it.
    pub(crate) fn read(&mut self, doc: DocRef) -> io::Result<String> {
        let (_, file, known) = match &mut self.open {
            Some(open) if open.0 == doc.file => open,
            _ => {
                let file = File::open(segment_path(&self.dir, doc.file))?;
                let length = file.metadata()?.len();
                self.open.insert((doc.file, file, length))
            }
        };
        let end = doc.at.saturating_add(doc.bytes);
        if end > *known {
            // The file may have grown since (the segment being written).
            *known = file.metadata()?.len();
            if end > *known {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        let length = usize::try_from(doc.bytes)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "document too large"))?;
        let mut bytes = vec![0; length];
        file.read_exact_at(&mut bytes, doc.at)?;
        String::from_utf8(bytes).map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))
    }

    /// Where this reader looks.
    pub(crate) fn segment(&self, doc: DocRef) -> PathBuf {
        segment_path(&self.dir, doc.file)
    }
}

/// Flushes (`fdatasync`) the segments from `from` on, and returns the last
/// one's number: what the next flush starts from. Called before each WAL
/// checkpoint, so that no row reaches the database file before its
/// document reaches the disk.
pub(crate) fn flush(database: &Path, from: u64) -> io::Result<u64> {
    let dir = trail_dir(database);
    let mut last = from;
    for first in segments(&dir)? {
        if first < from {
            continue;
        }
        match File::open(segment_path(&dir, first)) {
            Ok(file) => file.sync_data()?,
            // Deleted by retention meanwhile: nothing to flush.
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        last = first;
    }
    Ok(last)
}

/// Deletes the segments before `keep_from` (the first segment a row still
/// points into); returns how many.
pub(crate) fn delete_before(database: &Path, keep_from: u64) -> Result<usize, StoreError> {
    let dir = trail_dir(database);
    let failed = |path: &Path, error: io::Error| StoreError::AuditFile {
        path: path.to_path_buf(),
        action: "delete".to_owned(),
        source: error,
    };
    let mut deleted = 0;
    for first in segments(&dir).map_err(|error| failed(&dir, error))? {
        if first >= keep_from {
            break;
        }
        let path = segment_path(&dir, first);
        std::fs::remove_file(&path).map_err(|error| failed(&path, error))?;
        deleted += 1;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trail_sits_beside_its_database() {
        let dir = trail_dir(Path::new("/var/lib/airlock/airlock.db"));
        assert_eq!(dir, Path::new("/var/lib/airlock/airlock.db-trail"));
        assert_eq!(
            segment_path(&dir, 42),
            Path::new("/var/lib/airlock/airlock.db-trail/00000000000000000042.jsonl")
        );
    }

    #[test]
    fn a_trail_directory_open_to_others_is_noticed() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("a.db");
        let trail = trail_dir(&database);
        assert_eq!(shared_mode(&trail), None, "no trail yet");
        assert!(create_dir(&trail).unwrap());
        assert_eq!(shared_mode(&trail), None, "created owner-only");
        std::fs::set_permissions(&trail, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(shared_mode(&trail), Some(0o755));
        assert!(!create_dir(&trail).unwrap(), "already there");
    }

    #[test]
    fn segments_are_listed_in_order_and_other_files_ignored() {
        let dir = tempfile::tempdir().unwrap();
        assert!(segments(&dir.path().join("missing")).unwrap().is_empty());
        for name in [
            "00000000000000001000.jsonl",
            "00000000000000000001.jsonl",
            "notes.txt",
            "x.jsonl",
        ] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        assert_eq!(segments(dir.path()).unwrap(), [1, 1000]);
    }

    #[test]
    fn flushing_covers_the_segments_from_the_last_flushed_on() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("a.db");
        assert_eq!(flush(&database, 7).unwrap(), 7, "no trail yet");
        let trail = trail_dir(&database);
        std::fs::create_dir(&trail).unwrap();
        for first in [1, 5, 9] {
            std::fs::write(segment_path(&trail, first), "{}\n").unwrap();
        }
        assert_eq!(flush(&database, 0).unwrap(), 9);
        assert_eq!(flush(&database, 9).unwrap(), 9);
        std::fs::remove_file(segment_path(&trail, 9)).unwrap();
        assert_eq!(
            flush(&database, 9).unwrap(),
            9,
            "the last one went meanwhile"
        );
    }

    #[test]
    fn a_reader_finds_what_a_ref_points_at_and_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("a.db");
        let trail = trail_dir(&database);
        std::fs::create_dir(&trail).unwrap();
        std::fs::write(segment_path(&trail, 1), "{\"a\":1}\n{\"b\":22}\n").unwrap();
        let mut reader = DocReader::new(&database);
        let second = DocRef {
            file: 1,
            at: 8,
            bytes: 8,
        };
        assert_eq!(reader.read(second).unwrap(), "{\"b\":22}");
        let beyond = DocRef { at: 12, ..second };
        assert_eq!(
            reader.read(beyond).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        let huge = DocRef {
            bytes: u64::MAX - 3,
            ..second
        };
        assert_eq!(
            reader.read(huge).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        std::fs::write(
            segment_path(&trail, 1),
            "{\"a\":1}\n{\"b\":22}\n{\"c\":3}\n",
        )
        .unwrap();
        let grown = DocRef {
            at: 17,
            bytes: 7,
            ..second
        };
        assert_eq!(
            reader.read(grown).unwrap(),
            "{\"c\":3}",
            "read after it grew"
        );
        let elsewhere = DocRef { file: 9, ..second };
        assert_eq!(
            reader.read(elsewhere).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
