//! [`TokenKey`], [`TokenScope`] and what masked values become.

use std::fmt;

use airlock_core::Principal;
use aws_lc_rs::hmac;

use crate::MaskError;

/// What every linkable token starts with.
pub const TOKEN_PREFIX: &str = "***MASKED:";
/// What every masked value ends with.
const TOKEN_SUFFIX: &str = "***";
/// The length of a token: prefix, 8 hex digits, suffix.
pub(crate) const TOKEN_LEN: usize = TOKEN_PREFIX.len() + 8 + TOKEN_SUFFIX.len();
/// What a secret found by a detector (in free text, where the agent may
/// have put text of its own) becomes: the same for every value, so it can
/// never confirm a guess.
pub const REDACTED: &str = "***MASKED***";
/// What both forms start with.
pub(crate) const MARKER_START: &str = "***MASKED";
/// Domain separation of the per-scope keys (bump on any change of scheme).
const SCOPE_PURPOSE: &[u8] = b"airlock/masking/token-scope/v2";

/// The per-deployment key behind masked tokens.
///
/// A value a masking rule selects becomes `***MASKED:<8 hex>***`: the first
/// 4 bytes of an HMAC-SHA256 keyed, through [`scope`](Self::scope), by who
/// read it and which resource it came from, over the field it sat in and the
/// value. Equal tokens therefore mean *the same principal read the same
/// value in the same field of the same resource* (a key not rotated since
/// the last read); nothing else can produce them: not another principal,
/// not an echo of the value elsewhere, not the same value in another field.
/// Without the key a token says nothing about the value.
///
/// The gateway generates one key and keeps it (in hex) so tokens stay stable
/// across restarts and replicas:
///
/// ```
/// use airlock_masking::TokenKey;
///
/// let key = TokenKey::generate().unwrap();
/// let again = TokenKey::from_hex(&key.to_hex()).unwrap();
/// let account = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st";
/// let token = |key: &TokenKey| key.scope(None, account).token("$.keys[0].value", b"secret");
/// assert_eq!(token(&key), token(&again));
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

    /// The tokens of the values `principal` reads at the resource `scope`
    /// (compared case-insensitively, as ARM does). `None` for a request
    /// nobody was identified for.
    ///
    /// ```
    /// use airlock_core::{Principal, PrincipalKind};
    /// use airlock_masking::TokenKey;
    ///
    /// let key = TokenKey::new([7u8; 32]).unwrap();
    /// let alice = Principal::builder("oid-alice", PrincipalKind::User).build();
    /// let bob = Principal::builder("oid-bob", PrincipalKind::User).build();
    /// let vault = "/providers/Microsoft.KeyVault/vaults/kv/secrets/db";
    /// let token = |who, scope: &str, field| key.scope(Some(who), scope).token(field, b"hunter2");
    /// // Stable for one reader, one resource, one field…
    /// assert_eq!(token(&alice, vault, "$.value"), token(&alice, &vault.to_uppercase(), "$.value"));
    /// // …and comparable with nothing else.
    /// assert_ne!(token(&alice, vault, "$.value"), token(&bob, vault, "$.value"));
    /// assert_ne!(token(&alice, vault, "$.value"), token(&alice, "/providers/Microsoft.KeyVault/vaults/kv/secrets/tag", "$.value"));
    /// assert_ne!(token(&alice, vault, "$.value"), token(&alice, vault, "$.tags.note"));
    /// ```
    pub fn scope(&self, principal: Option<&Principal>, scope: &str) -> TokenScope {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(SCOPE_PURPOSE);
        let (tenant, id) = principal.map_or(("", ""), |p| (p.tenant_id(), p.id()));
        for part in [tenant, id, &scope.to_lowercase()] {
            update_framed(&mut context, part.as_bytes());
        }
        TokenScope {
            key: hmac::Key::new(hmac::HMAC_SHA256, context.sign().as_ref()),
        }
    }
}

/// The tokens of one principal's reads of one resource; see
/// [`TokenKey::scope`].
#[derive(Clone)]
pub struct TokenScope {
    key: hmac::Key,
}

impl fmt::Debug for TokenScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenScope(<redacted>)")
    }
}

impl TokenScope {
    /// The token `value` becomes in `field` (a JSON path such as
    /// `$.keys[0].value`).
    pub fn token(&self, field: &str, value: &[u8]) -> String {
        let mut context = hmac::Context::with_key(&self.key);
        update_framed(&mut context, field.as_bytes());
        context.update(value);
        let tag = context.sign();
        let mut token = String::with_capacity(TOKEN_LEN);
        token.push_str(TOKEN_PREFIX);
        token.push_str(&hex::encode(tag.as_ref().get(..4).unwrap_or_default()));
        token.push_str(TOKEN_SUFFIX);
        token
    }
}

/// Feeds `part` with its length first, so no two sequences of parts feed
/// the same bytes.
fn update_framed(context: &mut hmac::Context, part: &[u8]) {
    context.update(&(part.len() as u64).to_be_bytes());
    context.update(part);
}

/// Whether `text` is exactly one masked value (a token,
/// `***MASKED:<8 hex>***`, or [`REDACTED`]): such a value is never masked
/// again.
///
/// ```
/// assert!(airlock_masking::is_masked_token("***MASKED:0a1b2c3d***"));
/// assert!(airlock_masking::is_masked_token("***MASKED***"));
/// assert!(!airlock_masking::is_masked_token("***MASKED:0a1b2c3d*** and more"));
/// ```
pub fn is_masked_token(text: &str) -> bool {
    marker_len(text.as_bytes()) == Some(text.len())
}

/// The length of the masked value `text` starts with, if it starts with one.
pub(crate) fn marker_len(text: &[u8]) -> Option<usize> {
    if text.starts_with(REDACTED.as_bytes()) {
        return Some(REDACTED.len());
    }
    let token = text.get(..TOKEN_LEN)?;
    (token.starts_with(TOKEN_PREFIX.as_bytes())
        && token.ends_with(TOKEN_SUFFIX.as_bytes())
        && token[TOKEN_PREFIX.len()..TOKEN_PREFIX.len() + 8]
            .iter()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
    .then_some(TOKEN_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_the_truncated_hmac_under_the_scope_key() {
        let key = TokenKey::new([1u8; 32]).unwrap();
        let token = key.scope(None, "/S").token("$.value", b"value");
        assert!(is_masked_token(&token), "{token}");
        let framed = |parts: &[&[u8]]| {
            parts
                .iter()
                .flat_map(|p| [&(p.len() as u64).to_be_bytes()[..], p].concat())
                .collect::<Vec<u8>>()
        };
        let scope_key = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &[1u8; 32]),
            &[SCOPE_PURPOSE, &framed(&[b"", b"", b"/s"])].concat(),
        );
        let tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, scope_key.as_ref()),
            &[framed(&[b"$.value"]).as_slice(), b"value"].concat(),
        );
        assert_eq!(
            token,
            format!("***MASKED:{}***", hex::encode(&tag.as_ref()[..4]))
        );
    }

    #[test]
    fn framing_keeps_parts_apart() {
        let key = TokenKey::new([1u8; 32]).unwrap();
        let scope = key.scope(None, "/s");
        assert_ne!(scope.token("$.a", b"bc"), scope.token("$.ab", b"c"));
    }

    #[test]
    fn markers_are_recognised_at_the_start_only() {
        assert_eq!(marker_len(b"***MASKED*** tail"), Some(12));
        assert_eq!(marker_len(b"***MASKED:0a1b2c3d***x"), Some(TOKEN_LEN));
        assert_eq!(marker_len(b"***MASKED:0A1B2C3D***"), None);
        assert_eq!(marker_len(b"x***MASKED***"), None);
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
