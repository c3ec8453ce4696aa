//! [`TokenKey::load_or_create`]: the deployment key kept in a file.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::{MaskError, TokenKey};

/// Why the key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file exists but does not hold a key.
    #[error("{path}: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with its content.
        source: MaskError,
    },
    /// The file exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// There was no file, and a new one cannot be written.
    #[error("cannot create {path}: {source}")]
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// There was no file, and no key could be generated.
    #[error(transparent)]
    Generate(MaskError),
}

impl TokenKey {
    /// The key in `path` (hex), or a new one written there readable by its
    /// owner only (mode 0600, never overwriting a file), so tokens stay the
    /// same across restarts. The boolean says whether the key is new.
    ///
    /// ```
    /// use airlock_masking::TokenKey;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("masking.key");
    /// let (key, created) = TokenKey::load_or_create(&path).unwrap();
    /// assert!(created);
    /// let (again, created) = TokenKey::load_or_create(&path).unwrap();
    /// assert!(!created);
    /// assert_eq!(key.to_hex(), again.to_hex());
    /// ```
    ///
    /// # Errors
    ///
    /// A file that holds no key, cannot be read, or cannot be created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), KeyFileError> {
        match std::fs::read_to_string(path) {
            Ok(text) => TokenKey::from_hex(text.trim())
                .map(|key| (key, false))
                .map_err(|source| KeyFileError::Invalid {
                    path: path.to_owned(),
                    source,
                }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let key = TokenKey::generate().map_err(KeyFileError::Generate)?;
                write_private(path, &key.to_hex()).map_err(|source| KeyFileError::Create {
                    path: path.to_owned(),
                    source,
                })?;
                Ok((key, true))
            }
            Err(source) => Err(KeyFileError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }
}

/// Creates `path` (never overwriting) readable and writable by its owner only.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_new_key_file_is_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        TokenKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_file_without_a_key_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "not hex").unwrap();
        let error = TokenKey::load_or_create(&path).unwrap_err();
        assert!(matches!(error, KeyFileError::Invalid { .. }), "{error}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not hex");
    }
}
