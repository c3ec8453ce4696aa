//! Secrets in XML answers: the text of named elements, such as the
//! `<Value>` of a Storage user delegation key, and the values of named
//! attributes (`@userPWD`), such as the password in a Web App's publishing
//! profile (`publishxml`).
//!
//! Not an XML parser: it finds `<Name>` or `<Name …>` start tags and masks
//! the text up to the matching `</Name>`, and inside tags it masks the quoted
//! value of `name="…"` or `name='…'`, which is all the flat documents Azure
//! sends need. An element whose end tag, or a value whose closing quote, is
//! missing is masked to the end of the body: a secret is never left
//! half-shown.

use crate::json_scan::Masked;
use crate::token::TokenScope;

/// Masks the text of every named element, and the value of every attribute
/// named with a leading `@`, in `text` with tokens of `tokens`.
pub(crate) fn mask_elements(text: &str, names: &[&str], tokens: &TokenScope) -> Masked {
    let (attributes, elements): (Vec<&str>, Vec<&str>) =
        names.iter().partition(|name| name.starts_with('@'));
    let attributes: Vec<&str> = attributes.iter().map(|name| &name[1..]).collect();
    let mut masked = Masked::default();
    let mut out = mask_element_text(text, &elements, tokens, &mut masked);
    if !attributes.is_empty() {
        out = mask_attribute_values(&out, &attributes, tokens, &mut masked);
    }
    if masked.count > 0 {
        masked.body = Some(out.into_bytes());
    }
    masked
}

/// `text` with the text of every `elements` element replaced by a token,
/// recorded in `masked`.
fn mask_element_text(
    text: &str,
    elements: &[&str],
    tokens: &TokenScope,
    masked: &mut Masked,
) -> String {
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
    out
}

/// `text` with the value of every `attributes` attribute (inside a tag)
/// replaced by a token, recorded in `masked`.
fn mask_attribute_values(
    text: &str,
    attributes: &[&str],
    tokens: &TokenScope,
    masked: &mut Masked,
) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    let mut in_tag = false;
    while at < bytes.len() {
        match bytes[at] {
            b'<' if !in_tag && text[at..].starts_with("<!--") => {
                // A comment holds no attributes: passed over whole.
                at = text[at..].find("-->").map_or(text.len(), |i| at + i + 2);
            }
            b'<' => in_tag = true,
            b'>' => in_tag = false,
            quote @ (b'"' | b'\'') if in_tag => {
                let value_at = at + 1;
                let end = text[value_at..]
                    .find(char::from(quote))
                    .map_or(text.len(), |i| value_at + i);
                if let Some(name) = attribute_before(&text[..at])
                    && attributes.contains(&name)
                {
                    let value = &text[value_at..end];
                    if !value.is_empty() && !value.starts_with(crate::TOKEN_PREFIX) {
                        out.push_str(&text[copied..value_at]);
                        out.push_str(&tokens.token(&format!("@{name}"), value.as_bytes()));
                        masked.record(format!("@{name}"));
                        copied = end;
                    }
                }
                at = end;
            }
            _ => {}
        }
        at += 1;
    }
    out.push_str(&text[copied.min(text.len())..]);
    out
}

/// The attribute name of a value whose opening quote follows `before`:
/// `name` in `… name = ` (XML allows spaces around `=`).
fn attribute_before(before: &str) -> Option<&str> {
    let before = before.trim_end().strip_suffix('=')?.trim_end();
    let start = before
        .rfind(|c: char| c.is_whitespace() || c == '<')
        .map_or(0, |i| i + 1);
    Some(&before[start..]).filter(|name| !name.is_empty())
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
    fn attribute_values_become_tokens_and_the_rest_is_kept() {
        let tokens = TokenKey::new([7u8; 32]).unwrap().scope(None, "/scope");
        // A Web App's publishing profile, as `publishxml` answers it.
        let xml = "<publishData><publishProfile profileName=\"app1 - Web Deploy\" publishMethod=\"MSDeploy\" userName=\"$app1\" userPWD=\"pw-1&gt;\" destinationAppUrl=\"https://app1.azurewebsites.net\"/><publishProfile userName='$app1' userPWD = 'pw-2' SQLServerDBConnectionString=\"\"><!-- userPWD=\"comment\" --></publishProfile><userPWD>text is not an attribute</userPWD></publishData>";
        let masked = mask_elements(xml, &["@userPWD", "@SQLServerDBConnectionString"], &tokens);
        let out = String::from_utf8(masked.body.unwrap()).unwrap();
        assert!(!out.contains("pw-1") && !out.contains("pw-2"), "{out}");
        assert!(out.contains("userPWD=\"***MASKED:") && out.contains("userPWD = '***MASKED:"));
        for kept in [
            "profileName=\"app1 - Web Deploy\"",
            "userName=\"$app1\"",
            "destinationAppUrl=\"https://app1.azurewebsites.net\"",
            "SQLServerDBConnectionString=\"\"",
            "<!-- userPWD=\"comment\" -->",
            "<userPWD>text is not an attribute</userPWD>",
        ] {
            assert!(out.contains(kept), "{kept} lost from {out}");
        }
        assert_eq!(masked.count, 2);
        assert_eq!(masked.paths, ["@userPWD", "@userPWD"]);
        // Elements and attributes together; a value without its closing
        // quote is masked to the end.
        let both = mask_elements(
            "<K userPWD=\"a\"><Value>v</Value></K>",
            &["Value", "@userPWD"],
            &tokens,
        );
        assert_eq!(both.count, 2);
        let cut = mask_elements("<p userPWD=\"secret-to-the-end", &["@userPWD"], &tokens);
        let cut = String::from_utf8(cut.body.unwrap()).unwrap();
        assert!(!cut.contains("secret"), "{cut}");
    }

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
