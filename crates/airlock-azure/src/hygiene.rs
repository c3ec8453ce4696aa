//! Request hygiene: what a request must look like before Airlock names the
//! operation it performs.
//!
//! A gateway that authorizes one reading of a request while Azure executes
//! another is bypassed. So anything two parsers could read differently is
//! refused (`400`), never normalised silently: method overrides, encoded
//! separators, double encoding, dot segments, `//`, `;` parameters,
//! backslashes, control characters, a missing or repeated `api-version`.
//! Only what ARM itself treats as equivalent is normalised: letter case
//! (compared case-insensitively later) and one trailing `/`.

use std::borrow::Cow;

use http::{HeaderMap, HeaderName};

use crate::ClassifyError;

/// Headers that ask a server to treat a request as another method.
const METHOD_OVERRIDE_HEADERS: [HeaderName; 3] = [
    HeaderName::from_static("x-http-method-override"),
    HeaderName::from_static("x-http-method"),
    HeaderName::from_static("x-method-override"),
];

/// One decoded path segment: borrowed from the raw path unless it had to be
/// percent-decoded.
pub(crate) type Segment<'a> = Cow<'a, str>;

/// Refuses method-override headers, whatever their value.
pub(crate) fn check_headers(headers: &HeaderMap) -> Result<(), ClassifyError> {
    if headers.is_empty() {
        return Ok(());
    }
    match METHOD_OVERRIDE_HEADERS
        .iter()
        .find(|name| headers.contains_key(*name))
    {
        Some(header) => Err(ClassifyError::MethodOverride {
            header: display_name(header.as_str()),
        }),
        None => Ok(()),
    }
}

fn display_name(header: &str) -> &'static str {
    match header {
        "x-http-method-override" => "X-HTTP-Method-Override",
        "x-http-method" => "X-HTTP-Method",
        _ => "X-Method-Override",
    }
}

/// The path bytes [`path_segments`] must look at: separators, escapes,
/// dots, and what it refuses (`\\`, `;`, control characters).
const SPECIAL: [bool; 256] = {
    let mut special = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        special[byte] = matches!(b, b'/' | b'%' | b'.' | b'\\' | b';') || b.is_ascii_control();
        byte += 1;
    }
    special
};

/// Splits a raw (percent-encoded) path into decoded segments.
///
/// `""` and `"/"` are the root (no segments); one trailing `/` is dropped.
///
/// ```text
/// /subscriptions/s1/resourceGroups/my%20rg  ->  ["subscriptions", "s1", "resourceGroups", "my rg"]
/// ```
pub(crate) fn path_segments(raw: &str) -> Result<Vec<Segment<'_>>, ClassifyError> {
    if raw.is_empty() || raw == "/" {
        return Ok(Vec::new());
    }
    let Some(body) = raw.strip_prefix('/') else {
        return Err(ClassifyError::RelativePath);
    };
    // One pass over the bytes: refuse what no segment may hold and split on
    // `/`. A raw byte refused here wins over any segment's own error, so the
    // segments that need a closer look (empty, dotted, escaped) are only
    // decoded once the whole path has passed.
    let mut segments = Vec::with_capacity(8);
    let mut start = 0;
    let mut suspect = false;
    for (index, byte) in body.bytes().enumerate() {
        if !SPECIAL[usize::from(byte)] {
            continue;
        }
        match byte {
            b'/' => {
                suspect |= index == start;
                segments.push(Cow::Borrowed(&body[start..index]));
                start = index + 1;
            }
            b'%' => suspect = true,
            b'.' if index == start => suspect = true,
            b'\\' => return Err(ClassifyError::Backslash),
            b';' => return Err(ClassifyError::PathParameter),
            byte if byte.is_ascii_control() => return Err(ClassifyError::ControlCharacter),
            _ => {}
        }
    }
    // One trailing `/` is dropped: it leaves nothing after it.
    if start < body.len() {
        segments.push(Cow::Borrowed(&body[start..]));
    }
    if suspect {
        for segment in &mut segments {
            if let Cow::Borrowed(raw) = *segment {
                *segment = decode_segment(raw)?;
            }
        }
    }
    Ok(segments)
}

/// Decodes one raw segment, refusing whatever could be read two ways.
fn decode_segment(raw: &str) -> Result<Segment<'_>, ClassifyError> {
    if raw.is_empty() {
        return Err(ClassifyError::EmptySegment);
    }
    if raw == "." || raw == ".." {
        return Err(ClassifyError::DotSegment {
            segment: raw.to_owned(),
        });
    }
    // Most segments have no escapes: `path_segments` has already refused
    // separators, `;` and control characters in the raw path.
    if !raw.contains('%') {
        return Ok(Cow::Borrowed(raw));
    }
    let decoded = percent_decode(raw)?;
    for (index, byte) in decoded.iter().enumerate() {
        match byte {
            b'/' | b'\\' => {
                return Err(ClassifyError::EncodedSeparator {
                    escape: escape_for(raw, *byte),
                });
            }
            b';' => return Err(ClassifyError::PathParameter),
            byte if byte.is_ascii_control() => return Err(ClassifyError::ControlCharacter),
            b'%' if hex_pair(&decoded[index + 1..]).is_some() => {
                return Err(ClassifyError::DoubleEncoded {
                    escape: double_escape(raw),
                });
            }
            _ => {}
        }
    }
    let decoded = String::from_utf8(decoded).map_err(|_| ClassifyError::NotUtf8)?;
    if decoded == "." || decoded == ".." {
        return Err(ClassifyError::DotSegment {
            segment: raw.into(),
        });
    }
    Ok(Cow::Owned(decoded))
}

/// Percent-decodes once; `%` must be followed by two hex digits.
fn percent_decode(raw: &str) -> Result<Vec<u8>, ClassifyError> {
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte == b'%' {
            let value = hex_pair(&bytes[index + 1..]).ok_or(ClassifyError::BadEscape)?;
            decoded.push(value);
            index += 3;
        } else {
            decoded.push(byte);
            index += 1;
        }
    }
    Ok(decoded)
}

/// The byte two leading hex digits spell, if they do.
fn hex_pair(bytes: &[u8]) -> Option<u8> {
    let high = char::from(*bytes.first()?).to_digit(16)?;
    let low = char::from(*bytes.get(1)?).to_digit(16)?;
    u8::try_from(high * 16 + low).ok()
}

/// The escape in `raw` that decodes to `byte`, as the client spelled it.
fn escape_for(raw: &str, byte: u8) -> String {
    raw.as_bytes()
        .windows(3)
        .find(|w| w[0] == b'%' && hex_pair(&w[1..]) == Some(byte))
        .map_or_else(
            || format!("%{byte:02X}"),
            |w| String::from_utf8_lossy(w).into_owned(),
        )
}

/// The first `%25XX` in `raw`, as the client spelled it.
fn double_escape(raw: &str) -> String {
    raw.as_bytes()
        .windows(5)
        .find(|w| w[0] == b'%' && hex_pair(&w[1..]) == Some(b'%') && hex_pair(&w[3..]).is_some())
        .map_or_else(
            || "%25".to_owned(),
            |w| String::from_utf8_lossy(w).into_owned(),
        )
}

/// The request's one `api-version`, required by ARM and Key Vault alike.
///
/// Parameter names are compared case-insensitively after decoding, so
/// `API-Version` and `api%2Dversion` count as the same parameter.
pub(crate) fn api_version(query: Option<&str>) -> Result<Cow<'_, str>, ClassifyError> {
    const NAME: &str = "api-version";
    let mut found: Option<Cow<'_, str>> = None;
    let mut count = 0;
    for pair in split_ascii(query.unwrap_or(""), b'&') {
        let (key, value) = match pair.bytes().position(|byte| byte == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, ""),
        };
        // Decoding never lengthens a name that could spell `api-version`
        // (every escape is three bytes for one), and leaves an 11-byte name
        // spelling it unchanged: only longer names need decoding.
        let named = match key.len() {
            11 => key.eq_ignore_ascii_case(NAME),
            len if len > 11 => form_decode(key).eq_ignore_ascii_case(NAME),
            _ => false,
        };
        if !named {
            continue;
        }
        count += 1;
        found = Some(form_decode(value));
    }
    match (count, found) {
        (0, _) | (_, None) => Err(ClassifyError::MissingApiVersion),
        (1, Some(version)) => {
            if version.is_empty() || version.chars().any(char::is_control) {
                Err(ClassifyError::InvalidApiVersion)
            } else {
                Ok(version)
            }
        }
        (count, Some(_)) => Err(ClassifyError::DuplicateApiVersion { count }),
    }
}

/// The value of query parameter `name` (compared case-insensitively, names
/// and values form-decoded), if present.
///
/// # Errors
///
/// It appears more than once: Azure and Airlock might read different ones.
pub(crate) fn unique_param<'q>(
    query: Option<&'q str>,
    name: &'static str,
) -> Result<Option<Cow<'q, str>>, ClassifyError> {
    let mut found = None;
    for (key, value) in params(query) {
        if key.eq_ignore_ascii_case(name) {
            if found.is_some() {
                return Err(ClassifyError::DuplicateParameter { name });
            }
            found = Some(value);
        }
    }
    Ok(found)
}

/// Every query parameter, name and value form-decoded, in order.
pub(crate) fn params(query: Option<&str>) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    split_ascii(query.unwrap_or(""), b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(key), form_decode(value))
        })
}

/// `text` split on an ASCII `separator`, like `str::split`.
fn split_ascii(text: &str, separator: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.bytes().position(|byte| byte == separator) {
            Some(at) => {
                rest = Some(&current[at + 1..]);
                Some(&current[..at])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

/// Decodes a query component the way form parsers do (`+` is a space);
/// malformed escapes are kept literally.
fn form_decode(raw: &str) -> Cow<'_, str> {
    let bytes = raw.as_bytes();
    if !bytes.iter().any(|&byte| byte == b'%' || byte == b'+') {
        return Cow::Borrowed(raw);
    }
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        match byte {
            b'%' => match hex_pair(&bytes[index + 1..]) {
                Some(value) => {
                    decoded.push(value);
                    index += 3;
                    continue;
                }
                None => decoded.push(b'%'),
            },
            b'+' => decoded.push(b' '),
            byte => decoded.push(byte),
        }
        index += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&decoded).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(raw: &str) -> Vec<Segment<'_>> {
        path_segments(raw).unwrap()
    }

    #[test]
    fn decodes_once_and_drops_one_trailing_slash() {
        assert_eq!(segments("/a/my%20rg/"), ["a", "my rg"]);
        assert_eq!(segments("/"), Vec::<String>::new());
        assert_eq!(segments(""), Vec::<String>::new());
        assert_eq!(segments("/caf%C3%A9"), ["café"]);
        // `%25` followed by non-hex is a literal percent sign.
        assert_eq!(segments("/100%25"), ["100%"]);
    }

    #[test]
    fn refuses_what_two_parsers_could_read_differently() {
        let cases: [(&str, ClassifyError); 14] = [
            (
                "/a/%2f/b",
                ClassifyError::EncodedSeparator {
                    escape: "%2f".into(),
                },
            ),
            (
                "/a%5Cb",
                ClassifyError::EncodedSeparator {
                    escape: "%5C".into(),
                },
            ),
            (
                "/a%252fb",
                ClassifyError::DoubleEncoded {
                    escape: "%252f".into(),
                },
            ),
            (
                "/a/../b",
                ClassifyError::DotSegment {
                    segment: "..".into(),
                },
            ),
            (
                "/a/./b",
                ClassifyError::DotSegment {
                    segment: ".".into(),
                },
            ),
            (
                "/a/%2e%2E/b",
                ClassifyError::DotSegment {
                    segment: "%2e%2E".into(),
                },
            ),
            ("/a//b", ClassifyError::EmptySegment),
            ("//a", ClassifyError::EmptySegment),
            ("/a//", ClassifyError::EmptySegment),
            ("/a;b=c", ClassifyError::PathParameter),
            ("/a\\b", ClassifyError::Backslash),
            ("/a%00b", ClassifyError::ControlCharacter),
            ("/a%zz", ClassifyError::BadEscape),
            ("a/b", ClassifyError::RelativePath),
        ];
        for (path, expected) in cases {
            assert_eq!(path_segments(path), Err(expected), "{path}");
        }
        assert_eq!(path_segments("/%ff"), Err(ClassifyError::NotUtf8));
    }

    #[test]
    fn api_version_must_appear_once() {
        assert_eq!(
            api_version(Some("api-version=2024-01-01")).unwrap(),
            "2024-01-01"
        );
        assert_eq!(api_version(Some("$top=5&API-Version=7.4")).unwrap(), "7.4");
        assert_eq!(api_version(None), Err(ClassifyError::MissingApiVersion));
        assert_eq!(
            api_version(Some("apiversion=1")),
            Err(ClassifyError::MissingApiVersion)
        );
        assert_eq!(
            api_version(Some("api-version=1&api%2Dversion=2")),
            Err(ClassifyError::DuplicateApiVersion { count: 2 })
        );
        assert_eq!(
            api_version(Some("api-version=")),
            Err(ClassifyError::InvalidApiVersion)
        );
    }
}
