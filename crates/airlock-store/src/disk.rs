//! Free space on the database's file system, for the disk guard
//! ([`SqliteStore::min_free_bytes`](crate::SqliteStore::min_free_bytes)).

use std::path::Path;

/// Bytes an unprivileged writer can still use on the file system holding
/// `path` (`statvfs`: available blocks × fragment size).
pub(crate) fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let stats = rustix::fs::statvfs(path)?;
    Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_free_space_of_a_real_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(dir.path()).unwrap() > 0);
        assert!(free_bytes(&dir.path().join("missing")).is_err());
    }
}
