//! Text into HTML, for the pages Airlock serves (approvals, sign-in).

use std::borrow::Cow;

/// `text` with `& < > " '` escaped: safe in element content and in quoted
/// attribute values.
///
/// ```
/// assert_eq!(airlock_core::escape_html("<b title=\"x\">&</b>"), "&lt;b title=&quot;x&quot;&gt;&amp;&lt;/b&gt;");
/// assert!(matches!(airlock_core::escape_html("plain"), std::borrow::Cow::Borrowed(_)));
/// ```
pub fn escape_html(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    Cow::Owned(escaped)
}
