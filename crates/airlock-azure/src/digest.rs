//! [`BodyDigest`]: the SHA-256 of a request body, as a request extension.

use std::fmt;

use sha2::{Digest as _, Sha256};

/// The SHA-256 of the request body, computed once by the classify layer.
///
/// Approval fingerprints (principal + operation + scope + body) and the audit
/// record use it, so no later layer needs to read the body again.
///
/// ```
/// use airlock_azure::BodyDigest;
///
/// let digest = BodyDigest::of(b"");
/// assert_eq!(
///     digest.to_string(),
///     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/// );
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BodyDigest(pub [u8; 32]);

impl BodyDigest {
    /// The digest of `body`.
    pub fn of(body: &[u8]) -> Self {
        Self(Sha256::digest(body).into())
    }
}

/// Lower-case hex, as `sha256sum` prints it.
impl fmt::Display for BodyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for BodyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BodyDigest({self})")
    }
}
