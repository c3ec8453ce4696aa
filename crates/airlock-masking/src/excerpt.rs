//! Size-capped, masked copies of bodies for the audit record.

use crate::media_type::{first_significant, is_json, is_text};
use crate::{MaskContext, Masker};

/// The default cap of an excerpt: 8 KiB.
pub const DEFAULT_EXCERPT_BYTES: usize = 8 * 1024;

/// `bytes` as text, cut at `cap` bytes (on a character boundary) with a note
/// of the full size. The bytes must already be masked.
pub(crate) fn excerpt(bytes: &[u8], cap: usize) -> String {
    if bytes.len() <= cap {
        return text(bytes);
    }
    let mut cut = cap;
    // Back up to the start of a UTF-8 sequence (at most 3 bytes).
    while cut > 0 && cap - cut < 3 && bytes.get(cut).is_some_and(|b| b & 0xC0 == 0x80) {
        cut -= 1;
    }
    format!("{}… [{} bytes in all]", text(&bytes[..cut]), bytes.len())
}

/// `bytes` as text, invalid UTF-8 replaced: checking first is several
/// times faster than `from_utf8_lossy` on the valid text answers are.
fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// The masked excerpt of a request body sent for `context`, at most `cap`
/// bytes. Bodies without
/// a telling content type are treated as JSON if they look like it, else as
/// text if they are UTF-8; binary bodies are described, not copied; a body
/// that cannot be masked is withheld, with the reason. The audit record and
/// approvers' previews use it.
///
/// ```
/// use airlock_core::{Operation, Plane, ResourceScope};
/// use airlock_masking::{JsonMasker, MaskContext, TokenKey, request_excerpt};
///
/// let masker = JsonMasker::builder(TokenKey::new([7u8; 32]).unwrap()).detectors(true).build();
/// let op = Operation::new("Microsoft.Web/sites/config/write", Plane::Management, ResourceScope::new("/"));
/// let body = br#"{"conn":"AccountName=a;AccountKey=c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}"#;
/// let context = MaskContext::new(&op).content_type(Some("application/json"));
/// let preview = request_excerpt(&masker, &context, body, 8192).unwrap();
/// assert!(preview.contains("AccountKey=***MASKED***") && !preview.contains("c2VjcmV0"));
/// ```
pub fn request_excerpt(
    masker: &dyn Masker,
    context: &MaskContext<'_>,
    body: &[u8],
    cap: usize,
) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    let content_type = context.content_type;
    let sniffed = if is_json(content_type) || is_text(content_type) {
        content_type
    } else if matches!(first_significant(body), Some(b'{' | b'[')) {
        Some("application/json")
    } else if std::str::from_utf8(body).is_ok() {
        Some("text/plain")
    } else {
        return Some(format!(
            "[{} bytes of binary content, not recorded]",
            body.len()
        ));
    };
    Some(
        match masker.mask(&context.content_type(sniffed).request_body(), body) {
            Ok(outcome) => excerpt(outcome.body.as_deref().unwrap_or(body), cap),
            Err(error) => format!("[request body withheld: {error}]"),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The second review's finding: a VM's `adminPassword` (and a
    /// certificate import's `pwd`) went into the audit trail and the
    /// approver's view as sent: no rule names those requests and no
    /// detector knows the shape. A member named like a secret is masked
    /// whole in a request body, detectors on or off.
    #[test]
    fn members_named_like_secrets_are_masked_in_request_bodies() {
        use airlock_core::{Operation, Plane, ResourceScope};
        let op = Operation::new(
            "Microsoft.Compute/virtualMachines/write",
            Plane::Management,
            ResourceScope::new("/subscriptions/s/resourceGroups/rg"),
        );
        let body = br#"{"properties":{"osProfile":{"adminUsername":"azureuser","adminPassword":"Sup3r-S3cret!","secrets":[]},"extensions":[{"settings":{"ClientSecret":"cs-1","pwd":"p-2","passwordProfile":{"x":"kept"}}}]}}"#;
        for detectors in [true, false] {
            let masker = crate::JsonMasker::builder(crate::TokenKey::new([7u8; 32]).unwrap())
                .detectors(detectors)
                .build();
            let context = MaskContext::new(&op).content_type(Some("application/json"));
            let excerpt = request_excerpt(&masker, &context, body, 8192).unwrap();
            for secret in ["Sup3r-S3cret!", "cs-1", "p-2"] {
                assert!(!excerpt.contains(secret), "{secret} in {excerpt}");
            }
            for kept in ["azureuser", "\"kept\"", "\"secrets\":[]"] {
                assert!(excerpt.contains(kept), "{kept} lost from {excerpt}");
            }
            // Answers are not requests: the same body answered is left.
            let answered = masker.mask(&context, body).unwrap();
            assert!(answered.body.is_none(), "detectors {detectors}");
        }
    }

    #[test]
    fn cuts_on_character_boundaries() {
        assert_eq!(excerpt(b"short", 10), "short");
        assert_eq!(excerpt("aéb".as_bytes(), 2), "a… [4 bytes in all]");
        assert_eq!(excerpt(b"abcdef", 3), "abc… [6 bytes in all]");
    }

    #[test]
    fn invalid_utf8_is_replaced_not_copied() {
        assert_eq!(excerpt(b"a\xffb", 10), "a\u{fffd}b");
        assert_eq!(excerpt(b"a\xffbcdef", 3), "a\u{fffd}b… [7 bytes in all]");
    }
}
