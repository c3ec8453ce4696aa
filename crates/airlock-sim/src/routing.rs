//! Case-insensitive matching of request paths, as ARM compares them.
//!
//! Patterns are written the way Azure documents paths
//! (`subscriptions/{subscription}/resourceGroups/{group}`): literal segments
//! match ASCII-case-insensitively, `{…}` segments capture one segment.

/// A request path split into percent-decoded segments.
#[derive(Debug)]
pub(crate) struct PathSegments {
    segments: Vec<String>,
}

impl PathSegments {
    /// Splits `/a/b/c` (one leading and one trailing slash tolerated) and decodes each segment once.
    pub(crate) fn parse(path: &str) -> Self {
        let trimmed = path.strip_prefix('/').unwrap_or(path);
        let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
        let segments = if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed.split('/').map(percent_decode).collect()
        };
        Self { segments }
    }

    /// The decoded segments.
    pub(crate) fn as_slice(&self) -> &[String] {
        &self.segments
    }

    /// The captured segments if the path has exactly the pattern's shape.
    pub(crate) fn matches(&self, pattern: &str) -> Option<Vec<&str>> {
        let mut captures = Vec::new();
        let mut parts = pattern.split('/');
        let mut segments = self.segments.iter();
        loop {
            match (parts.next(), segments.next()) {
                (None, None) => return Some(captures),
                (Some(part), Some(segment)) => {
                    if part.starts_with('{') && part.ends_with('}') {
                        if segment.is_empty() {
                            return None;
                        }
                        captures.push(segment.as_str());
                    } else if !part.eq_ignore_ascii_case(segment) {
                        return None;
                    }
                }
                _ => return None,
            }
        }
    }
}

/// Decodes `%XX` escapes; malformed escapes are kept as written.
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(high), Some(low)) = (
                bytes.get(i + 1).and_then(hex_value),
                bytes.get(i + 2).and_then(hex_value),
            )
        {
            out.push(high << 4 | low);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(byte: &u8) -> Option<u8> {
    char::from(*byte)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// `a=1&b=two%20words` as decoded pairs (`+` is a space, as in forms).
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(&name.replace('+', " ")),
                percent_decode(&value.replace('+', " ")),
            )
        })
        .collect()
}

/// The first value of `name` (compared case-insensitively, as ARM does).
pub(crate) fn query_value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_match_ignoring_case_and_captures_keep_case() {
        let path = PathSegments::parse(
            "/subscriptions/S1/resourcegroups/Demo-RG/providers/microsoft.storage/storageAccounts",
        );
        let pattern =
            "subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts";
        assert_eq!(path.matches(pattern), Some(vec!["S1", "Demo-RG"]));
        assert_eq!(path.matches("subscriptions/{s}/resourceGroups/{rg}"), None);
        assert_eq!(path.matches(&format!("{pattern}/{{name}}")), None);
    }

    #[test]
    fn slashes_and_escapes() {
        assert!(PathSegments::parse("/").as_slice().is_empty());
        assert_eq!(
            PathSegments::parse("/subscriptions/").matches("subscriptions"),
            Some(vec![])
        );
        // An empty segment never satisfies a capture.
        assert_eq!(
            PathSegments::parse("/subscriptions//resourcegroups")
                .matches("subscriptions/{s}/resourcegroups"),
            None
        );
        assert_eq!(
            PathSegments::parse("/a%20b/%zz/%4").as_slice(),
            ["a b", "%zz", "%4"]
        );
    }

    #[test]
    fn query_parsing() {
        let pairs = query_pairs(Some("API-Version=2021-04-01&$skiptoken=2&flag&x=a+b%2Bc"));
        assert_eq!(query_value(&pairs, "api-version"), Some("2021-04-01"));
        assert_eq!(query_value(&pairs, "$skipToken"), Some("2"));
        assert_eq!(query_value(&pairs, "flag"), Some(""));
        assert_eq!(query_value(&pairs, "x"), Some("a b+c"));
        assert_eq!(query_value(&pairs, "missing"), None);
        assert!(query_pairs(None).is_empty());
    }
}
