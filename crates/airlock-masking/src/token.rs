//! [`TokenKey`] and the stable tokens masked values become.

use std::fmt;

use aws_lc_rs::hmac;

use crate::MaskError;

/// What every masked value starts with.
pub const TOKEN_PREFIX: &str = "***MASKED:";
/// What every masked value ends with.
const TOKEN_SUFFIX: &str = "***";
/// The length of a token: prefix, 8 hex digits, suffix.
pub(crate) const TOKEN_LEN: usize = TOKEN_PREFIX.len() + 8 + TOKEN_SUFFIX.len();

/// The per-deployment key of the stable tokens: a masked value becomes
/// `***MASKED:<8 hex>***`, the hex being the first 4 bytes of
/// HMAC-SHA256(key, value). The same secret gives the same token under one
/// key, so an agent can tell two secrets apart (or see that a key was
/// rotated) without seeing either; without the key, a token says nothing
/// about the secret.
///
/// The gateway generates one key and keeps it (in hex) so tokens stay stable
/// across restarts and replicas:
///
/// ```
/// use airlock_masking::TokenKey;
///
/// let key = TokenKey::generate().unwrap();
/// let again = TokenKey::from_hex(&key.to_hex()).unwrap();
/// assert_eq!(key.token(b"secret"), again.token(b"secret"));
/// assert_ne!(key.token(b"secret"), key.token(b"other secret"));
/// assert!(TokenKey::new([7u8; 16]).is_err()); // too short
/// ```
#[derive(Clone)]
pub struct TokenKey {
    bytes: Box<[u8]>,
    key: hmac::Key,
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}

impl TokenKey {
    /// The shortest key accepted, in bytes (the HMAC-SHA256 output size).
    pub const MIN_LEN: usize = 32;

    /// A key from bytes.
    ///
    /// # Errors
    ///
    /// [`MaskError::KeyTooShort`] below [`MIN_LEN`](Self::MIN_LEN) bytes.
    pub fn new(bytes: impl AsRef<[u8]>) -> Result<Self, MaskError> {
        let bytes = bytes.as_ref();
        if bytes.len() < Self::MIN_LEN {
            return Err(MaskError::KeyTooShort {
                len: bytes.len(),
                min: Self::MIN_LEN,
            });
        }
        Ok(Self {
            bytes: bytes.into(),
            key: hmac::Key::new(hmac::HMAC_SHA256, bytes),
        })
    }

    /// A new random key of [`MIN_LEN`](Self::MIN_LEN) bytes from the system generator.
    ///
    /// # Errors
    ///
    /// [`MaskError::Random`] if the generator fails.
    pub fn generate() -> Result<Self, MaskError> {
        let mut bytes = [0u8; Self::MIN_LEN];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| MaskError::Random)?;
        Self::new(bytes)
    }

    /// A key from its hex form (surrounding whitespace ignored).
    ///
    /// # Errors
    ///
    /// [`MaskError::KeyNotHex`] or [`MaskError::KeyTooShort`].
    pub fn from_hex(text: &str) -> Result<Self, MaskError> {
        let bytes = hex::decode(text.trim()).map_err(|_| MaskError::KeyNotHex)?;
        Self::new(bytes)
    }

    /// The key in lower-case hex, to store it.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.bytes)
    }

    /// A 32-byte key for another purpose, derived from this one
    /// (HMAC-SHA256 of `purpose`): one deployment secret, independent keys.
    ///
    /// ```
    /// use airlock_masking::TokenKey;
    /// let key = TokenKey::new([7u8; 32]).unwrap();
    /// assert_eq!(key.derive(b"sealing"), key.derive(b"sealing"));
    /// assert_ne!(key.derive(b"sealing"), key.derive(b"other"));
    /// ```
    pub fn derive(&self, purpose: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(hmac::sign(&self.key, purpose).as_ref());
        out
    }

    /// The token `secret` becomes.
    pub fn token(&self, secret: &[u8]) -> String {
        let tag = hmac::sign(&self.key, secret);
        let mut token = String::with_capacity(TOKEN_LEN);
        token.push_str(TOKEN_PREFIX);
        token.push_str(&hex::encode(tag.as_ref().get(..4).unwrap_or_default()));
        token.push_str(TOKEN_SUFFIX);
        token
    }
}

/// Whether `text` is exactly one masked token (`***MASKED:<8 hex>***`):
/// such a value is never masked again.
///
/// ```
/// assert!(airlock_masking::is_masked_token("***MASKED:0a1b2c3d***"));
/// assert!(!airlock_masking::is_masked_token("***MASKED:0a1b2c3d*** and more"));
/// ```
pub fn is_masked_token(text: &str) -> bool {
    is_masked_token_bytes(text.as_bytes())
}

pub(crate) fn is_masked_token_bytes(text: &[u8]) -> bool {
    text.len() == TOKEN_LEN
        && text.starts_with(TOKEN_PREFIX.as_bytes())
        && text.ends_with(TOKEN_SUFFIX.as_bytes())
        && text[TOKEN_PREFIX.len()..TOKEN_PREFIX.len() + 8]
            .iter()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_the_truncated_hmac() {
        let key = TokenKey::new([1u8; 32]).unwrap();
        let token = key.token(b"value");
        assert!(is_masked_token(&token), "{token}");
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &[1u8; 32]), b"value");
        assert_eq!(
            token,
            format!("***MASKED:{}***", hex::encode(&tag.as_ref()[..4]))
        );
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = TokenKey::new([0xabu8; 32]).unwrap();
        assert_eq!(format!("{key:?}"), "TokenKey(<redacted>)");
    }

    #[test]
    fn hex_round_trip_and_errors() {
        let key = TokenKey::new([9u8; 40]).unwrap();
        assert_eq!(
            TokenKey::from_hex(&format!(" {}\n", key.to_hex()))
                .unwrap()
                .to_hex(),
            key.to_hex()
        );
        assert_eq!(TokenKey::from_hex("zz").unwrap_err(), MaskError::KeyNotHex);
        assert!(matches!(
            TokenKey::from_hex("00ff").unwrap_err(),
            MaskError::KeyTooShort { len: 2, min: 32 }
        ));
    }
}
