//! Checkpoints: where pruning cut the chain, and Ed25519-signed heads that
//! a chain rewritten wholesale cannot pass; the signing key file.

use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use airlock_recorder::ChainHead;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rusqlite::{Connection, Row};

use super::{from_millis, millis, sqlite, stored_head};
use crate::{SqliteStore, StoreError};

/// The first line of every signed checkpoint message.
pub const CHECKPOINT_CONTEXT: &str = "airlock-audit-checkpoint-v1";

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

/// A point of the chain remembered apart from the events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The event's position.
    pub seq: u64,
    /// The event's hash.
    pub hash: String,
    /// When the checkpoint was made.
    pub created: SystemTime,
    /// Why it was made.
    pub kind: CheckpointKind,
    /// The Ed25519 signature of [`checkpoint_message`] (hex), when signed.
    pub signature: Option<String>,
    /// The public key that signed it (hex), when signed.
    pub public_key: Option<String>,
}

/// Why a checkpoint was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointKind {
    /// Pruning deleted the chain up to here: verification starts after it.
    Pruned,
    /// An operator signed the head: the chain must pass through it.
    Signed,
    /// A seq and hash held outside the database (never stored): the chain
    /// must pass through it.
    Anchor,
}

impl CheckpointKind {
    /// The kind a stored checkpoint names (only `pruned` and `signed` are stored).
    pub(crate) fn from_stored(name: &str) -> Self {
        if name == "pruned" {
            CheckpointKind::Pruned
        } else {
            CheckpointKind::Signed
        }
    }

    /// Its name in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckpointKind::Pruned => "pruned",
            CheckpointKind::Signed => "signed",
            CheckpointKind::Anchor => "anchor",
        }
    }
}

impl Checkpoint {
    /// An unsigned anchor: the chain must have `hash` at `seq`.
    pub fn anchor(seq: u64, hash: impl Into<String>) -> Self {
        Self {
            seq,
            hash: hash.into(),
            created: SystemTime::now(),
            kind: CheckpointKind::Anchor,
            signature: None,
            public_key: None,
        }
    }

    /// `head`, signed now with `signing_key`.
    pub(crate) fn signed(head: ChainHead, signing_key: &Ed25519KeyPair) -> Self {
        let signature = signing_key.sign(checkpoint_message(head.seq, &head.hash).as_bytes());
        Self {
            seq: head.seq,
            hash: head.hash,
            created: SystemTime::now(),
            kind: CheckpointKind::Signed,
            signature: Some(hex::encode(signature.as_ref())),
            public_key: Some(public_key_hex(signing_key)),
        }
    }

    /// Whether its signature is a valid signature of its seq and hash by
    /// `public_key` (raw 32 bytes).
    pub fn signature_verifies(&self, public_key: &[u8]) -> bool {
        let Some(signature) = self.signature.as_deref().and_then(|s| hex::decode(s).ok()) else {
            return false;
        };
        UnparsedPublicKey::new(&ED25519, public_key)
            .verify(
                checkpoint_message(self.seq, &self.hash).as_bytes(),
                &signature,
            )
            .is_ok()
    }

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        let kind: String = row.get(3)?;
        Ok(Self {
            seq: row.get(0)?,
            hash: row.get(1)?,
            created: from_millis(row.get(2)?),
            kind: CheckpointKind::from_stored(&kind),
            signature: row.get(4)?,
            public_key: row.get(5)?,
        })
    }
}

/// What a checkpoint signs: `"airlock-audit-checkpoint-v1\n{seq}\n{hash}"`.
pub fn checkpoint_message(seq: u64, hash: &str) -> String {
    format!("{CHECKPOINT_CONTEXT}\n{seq}\n{hash}")
}

impl SqliteStore {
    /// Signs the current head with `signing_key` and stores the checkpoint.
    /// Keep what it returns (or the public key, at least) somewhere else:
    /// [`verify_against`](Self::verify_against) then detects a chain
    /// rewritten after it, however consistently.
    pub async fn checkpoint(&self, signing_key: &Ed25519KeyPair) -> Result<Checkpoint, StoreError> {
        let head = self
            .db
            .call(|connection, path| stored_head(connection, path))
            .await?;
        // Signed here, stored after: the chain only grows at its end, so
        // the head stays on it.
        let checkpoint = Checkpoint::signed(head, signing_key);
        let stored = checkpoint.clone();
        self.db
            .call(move |connection, path| insert(connection, path, &stored))
            .await?;
        Ok(checkpoint)
    }

    /// Every checkpoint stored, in chain order.
    pub async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        self.db
            .call(|connection, path| stored_checkpoints(connection, path))
            .await
    }
}

/// Every checkpoint in `connection`, in chain order.
pub(super) fn stored_checkpoints(
    connection: &Connection,
    path: &Path,
) -> Result<Vec<Checkpoint>, StoreError> {
    connection
        .prepare_cached(
            "SELECT seq, hash, created_ms, kind, signature, public_key FROM audit_checkpoints
             ORDER BY seq, rowid",
        )
        .and_then(|mut statement| statement.query_map([], Checkpoint::from_row)?.collect())
        .map_err(sqlite(path))
}

/// Stores `checkpoint`.
pub(super) fn insert(
    connection: &Connection,
    path: &Path,
    checkpoint: &Checkpoint,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO audit_checkpoints (seq, hash, created_ms, kind, signature, public_key)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .and_then(|mut statement| {
            statement.execute(rusqlite::params![
                checkpoint.seq,
                checkpoint.hash,
                millis(checkpoint.created),
                checkpoint.kind.as_str(),
                checkpoint.signature,
                checkpoint.public_key,
            ])
        })
        .map(drop)
        .map_err(sqlite(path))
}

/// The public key of `key`, in hex (what checkpoints store and
/// `--public-key` files hold).
pub fn public_key_hex(key: &Ed25519KeyPair) -> String {
    hex::encode(key.public_key().as_ref())
}

/// Why a text is not an Ed25519 public key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PublicKeyError(String);

/// Reads a public key written as hex (64 digits; surrounding whitespace is
/// ignored).
///
/// # Errors
///
/// Not hex, or not 32 bytes.
pub fn parse_public_key(text: &str) -> Result<Vec<u8>, PublicKeyError> {
    match hex::decode(text.trim()) {
        Ok(key) if key.len() == 32 => Ok(key),
        Ok(key) => Err(PublicKeyError(format!(
            "an Ed25519 public key is 32 bytes (64 hex digits), this is {} bytes",
            key.len()
        ))),
        Err(error) => Err(PublicKeyError(format!(
            "not a hex public key ({error}); give the key `airlock audit checkpoint` printed"
        ))),
    }
}

/// Creates a new signing key in `path` (PKCS#8, PEM), readable by its owner
/// only; refuses to overwrite an existing file.
pub fn generate_signing_key(path: &Path) -> Result<Ed25519KeyPair, StoreError> {
    let failed = |reason: String| StoreError::SigningKey {
        path: path.to_path_buf(),
        reason,
    };
    let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|_| failed("cannot generate a key".into()))?;
    let key = Ed25519KeyPair::from_pkcs8(document.as_ref())
        .map_err(|error| failed(format!("the generated key is unusable: {error}")))?;
    let encoded = STANDARD.encode(document.as_ref());
    let mut pem = format!("{PEM_BEGIN}\n");
    for line in encoded.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str(PEM_END);
    pem.push('\n');

    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|error| failed(format!("cannot create it: {error}")))?;
    file.write_all(pem.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|error| failed(format!("cannot write it: {error}")))?;
    Ok(key)
}

/// Reads the signing key in `path`: PKCS#8, PEM or DER.
pub fn load_signing_key(path: &Path) -> Result<Ed25519KeyPair, StoreError> {
    let failed = |reason: String| StoreError::SigningKey {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|error| failed(format!("cannot read it: {error}")))?;
    let der = match std::str::from_utf8(&bytes) {
        Ok(text) if text.contains(PEM_BEGIN) => {
            let body: String = text
                .lines()
                .skip_while(|line| !line.contains(PEM_BEGIN))
                .skip(1)
                .take_while(|line| !line.contains(PEM_END))
                .map(str::trim)
                .collect();
            STANDARD
                .decode(body)
                .map_err(|error| failed(format!("its PEM is not valid base64: {error}")))?
        }
        _ => bytes,
    };
    Ed25519KeyPair::from_pkcs8(&der).map_err(|error| {
        failed(format!(
            "not an Ed25519 PKCS#8 private key ({error}); let `airlock audit checkpoint` create one"
        ))
    })
}

/// Reads the signing key in `path`, creating it first if there is no such
/// file; says whether it was created.
pub fn load_or_generate_signing_key(path: &Path) -> Result<(Ed25519KeyPair, bool), StoreError> {
    if path.exists() {
        Ok((load_signing_key(path)?, false))
    } else {
        Ok((generate_signing_key(path)?, true))
    }
}
