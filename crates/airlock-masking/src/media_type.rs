//! Which bodies are JSON, which are text, and what a body looks like.

/// The media type (`type/subtype`) of a `Content-Type`, lower-cased.
fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// `application/json`, `text/json` and every `…+json`.
pub(crate) fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        let essence = essence(ct);
        essence == "application/json" || essence == "text/json" || essence.ends_with("+json")
    })
}

/// `text/*`.
pub(crate) fn is_text(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| essence(ct).starts_with("text/"))
}

/// The first byte that is not JSON whitespace.
pub(crate) fn first_significant(body: &[u8]) -> Option<u8> {
    body.iter()
        .copied()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_json_and_text() {
        for json in [
            "application/json",
            "application/json; charset=utf-8",
            " Application/JSON ",
            "text/json",
            "application/problem+json",
        ] {
            assert!(is_json(Some(json)), "{json}");
        }
        assert!(!is_json(Some("application/jsonx")));
        assert!(!is_json(None));
        assert!(is_text(Some("text/plain; charset=utf-8")));
        assert!(!is_text(Some("application/octet-stream")));
        assert_eq!(first_significant(b" \r\n{"), Some(b'{'));
        assert_eq!(first_significant(b"  "), None);
    }
}
