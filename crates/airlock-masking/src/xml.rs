//! Secrets in XML answers (Azure Storage's data plane): the text of named
//! elements, such as the `<Value>` of a user delegation key.
//!
//! Not an XML parser: it finds `<Name>` or `<Name …>` start tags and masks
//! the text up to the matching `</Name>`, which is all the flat documents
//! Storage sends need. An element whose end tag is missing is masked to the
//! end of the body: a secret is never left half-shown.

use crate::json_scan::Masked;
use crate::token::TokenScope;

/// Masks the text of every `elements` element in `text` with tokens of `tokens`.
pub(crate) fn mask_elements(text: &str, elements: &[&str], tokens: &TokenScope) -> Masked {
    let mut masked = Masked::default();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((name, content_at)) = next_start(rest, elements) {
        out.push_str(&rest[..content_at]);
        let after = &rest[content_at..];
        let end = after.find(&format!("</{name}>")).unwrap_or(after.len());
        let value = &after[..end];
        if value.is_empty() || value.starts_with(crate::TOKEN_PREFIX) {
            out.push_str(value);
        } else {
            out.push_str(&tokens.token(&format!("<{name}>"), value.as_bytes()));
            masked.record(format!("<{name}>"));
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    if masked.count > 0 {
        masked.body = Some(out.into_bytes());
    }
    masked
}

/// The first start tag of one of `elements`: its name and where its content starts.
fn next_start<'e>(text: &str, elements: &[&'e str]) -> Option<(&'e str, usize)> {
    let mut from = 0;
    while let Some(at) = text[from..].find('<').map(|i| from + i) {
        let tag = &text[at + 1..];
        for name in elements {
            if let Some(after) = tag.strip_prefix(name)
                && let Some(close) = after.find('>')
                && (after.starts_with('>') || after.starts_with([' ', '\t', '\n', '\r']))
                && !after[..close].ends_with('/')
            {
                return Some((name, at + 1 + name.len() + close + 1));
            }
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TokenKey;

    #[test]
    fn element_text_becomes_tokens_and_the_rest_is_kept() {
        let tokens = TokenKey::new([7u8; 32]).unwrap().scope(None, "/scope");
        let xml = "<?xml version=\"1.0\"?><UserDelegationKey><SignedTid>t</SignedTid><Value>c2VjcmV0</Value><ValueType>x</ValueType><Value a=\"1\">second</Value><Value/></UserDelegationKey>";
        let masked = mask_elements(xml, &["Value"], &tokens);
        let out = String::from_utf8(masked.body.unwrap()).unwrap();
        assert!(
            !out.contains("c2VjcmV0") && !out.contains("second"),
            "{out}"
        );
        assert!(
            out.contains("<SignedTid>t</SignedTid>") && out.contains("<ValueType>x</ValueType>")
        );
        assert!(out.contains("<Value>***MASKED:") && out.contains("<Value a=\"1\">***MASKED:"));
        assert_eq!(masked.count, 2);
        assert_eq!(masked.paths, ["<Value>", "<Value>"]);
        // A missing end tag masks to the end.
        let cut = mask_elements("<Value>c2VjcmV0", &["Value"], &tokens);
        assert!(
            !String::from_utf8(cut.body.unwrap())
                .unwrap()
                .contains("c2VjcmV0")
        );
    }
}
