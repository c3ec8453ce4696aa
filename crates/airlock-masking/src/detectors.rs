//! Detectors: secret shapes found in any text, wherever they sit.
//!
//! - connection-string and `name=value` secrets: a name ending in `key`,
//!   `password`, `pwd` or `secret` (`AccountKey=`, `SharedAccessKey=`,
//!   `Password=`, `Pwd=`, `userPWD="…"`), case-insensitive: the value up to
//!   `;` (or the closing quote of a quoted value);
//! - SAS signatures: the value of `sig=`;
//! - JWTs: `eyJ….….…` (and longer JWE forms), whole;
//! - PEM private keys: `-----BEGIN … PRIVATE KEY-----` to the matching
//!   `-----END …-----` (to the end of the text when that is missing);
//! - storage-key shapes: 88-character base64 ending `==` (64-byte keys:
//!   storage, Cosmos DB), and 44-character base64 ending `=` (32-byte keys:
//!   Service Bus, Event Hubs, Redis) where the JSON member (in text: the
//!   name before it, `primaryKey: …`) is named like a key.
//!
//! They work on bytes (every shape is ASCII), and only the secret part of a
//! hit is replaced, so the text around it stays readable. Overlapping hits
//! merge (nothing of either stays readable); a hit stops at a token already
//! in the text, and nothing next to a token counts as a boundary, so masking
//! masked text changes nothing. A `name=value` hit is reported by a
//! well-known name (`AccountKey`, `SharedAccessKey`, `Password`, …) or by
//! its kind (`Key`, `Password`, `Secret`), never by the text before the `=`,
//! which may be the tail of a key.

use std::ops::Range;
use std::sync::LazyLock;

use memchr::memmem::Finder;

use crate::token::{MARKER_START, marker_len};

static MARKER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(MARKER_START.as_bytes()));
static JWT_START: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"eyJ"));
static PEM_BEGIN: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"-----BEGIN "));
static PEM_END: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"-----END "));
static PEM_DASHES: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"-----"));

/// The shortest text a PEM private key fits in.
const PEM_MIN_LEN: usize = 40;
/// Name suffixes (lower case) whose `name=value` values are secrets.
const SECRET_NAMES: [&[u8]; 4] = [b"key", b"password", b"pwd", b"secret"];
/// The longest PEM label (`ENCRYPTED PRIVATE KEY` and the like).
const PEM_LABEL_MAX: usize = 40;
/// Secret names reported as themselves (in this spelling); any other is
/// reported by its kind (`Key`, `Password`, `Secret`), never spelled out:
/// what precedes an `=` may be the tail of a key.
const KNOWN_NAMES: [&str; 14] = [
    "AccountKey",
    "SharedAccessKey",
    "AccessKey",
    "Password",
    "Pwd",
    "userPWD",
    "PrimaryKey",
    "SecondaryKey",
    "ApiKey",
    "api-key",
    "ClientSecret",
    "client_secret",
    "InstrumentationKey",
    "Secret",
];

/// Where the text sits, which decides where an unquoted `name=value` ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Context {
    /// A JSON string value: the string is the boundary; values end at `;`
    /// or a line break.
    JsonString,
    /// A whole text body: values also end at quotes, `<` and `&`.
    Text,
}

/// One secret found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Hit {
    /// The bytes to replace.
    pub(crate) range: Range<usize>,
    /// What it is (`AccountKey`, `sig`, `JWT`, `PrivateKey`, `StorageKey`, `Key`…).
    pub(crate) label: &'static str,
}

/// A fast pre-scan: whether `text` can hold any detector's shape at all.
/// Every shape but the PEM key needs an `=` or the `J` of `eyJ`.
pub(crate) fn may_hold_secret(text: &[u8]) -> bool {
    memchr::memchr2(b'=', b'J', text).is_some()
        || (text.len() >= PEM_MIN_LEN && PEM_BEGIN.find(text).is_some())
}

/// [`may_hold_secret`] for a whole body whose strings may be JSON-escaped:
/// an escape (`\`) can spell any character, so a body with one may hold
/// any shape once its strings are decoded.
pub(crate) fn may_hold_secret_escaped(body: &[u8]) -> bool {
    memchr::memchr(b'\\', body).is_some() || may_hold_secret(body)
}

/// Every secret in `text`, ordered and non-overlapping (overlaps merged). `key_like` says
/// whether the field holding the text is named like a key (asked only when
/// a 44-character base64 value is found).
pub(crate) fn find(text: &[u8], context: Context, key_like: impl Fn() -> bool) -> Vec<Hit> {
    let mut hits = Vec::new();
    if !may_hold_secret(text) {
        return hits;
    }
    for eq in memchr::memchr_iter(b'=', text) {
        named_value(text, eq, context, &mut hits);
        sas_signature(text, eq, &mut hits);
        base64_key(text, eq, context, &key_like, &mut hits);
    }
    jwts(text, &mut hits);
    if text.len() >= PEM_MIN_LEN {
        pem_private_keys(text, &mut hits);
    }
    if hits.len() > 1 {
        // Earliest first, the longest of those first; the sort is stable,
        // so at equal ranges the first detector's label wins. Overlapping
        // hits merge into one, so no part of either stays readable (a PEM
        // block that starts inside a `Password=` value is masked whole).
        hits.sort_by(|a, b| {
            a.range
                .start
                .cmp(&b.range.start)
                .then(b.range.end.cmp(&a.range.end))
        });
        let mut merged: Vec<Hit> = Vec::with_capacity(hits.len());
        for hit in hits {
            match merged.last_mut() {
                Some(last) if hit.range.start < last.range.end => {
                    last.range.end = last.range.end.max(hit.range.end);
                }
                _ => merged.push(hit),
            }
        }
        return merged;
    }
    hits
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Records a hit, cut short at the first token inside it: what is already
/// masked is never masked again, nor swallowed into a new token with the
/// text after it. (On Azure's data there are no tokens; a crafted value
/// could only hide what its author already knows.)
fn push(hits: &mut Vec<Hit>, text: &[u8], mut range: Range<usize>, label: &'static str) {
    if let Some(at) = first_token(&text[range.clone()]) {
        range.end = range.start + at;
    }
    if range.is_empty() {
        return;
    }
    hits.push(Hit { range, label });
}

/// Where the first complete masked value (token or redaction) in `bytes` starts.
fn first_token(bytes: &[u8]) -> Option<usize> {
    MARKER
        .find_iter(bytes)
        .find(|&at| marker_len(&bytes[at..]).is_some())
}

/// How a `name=value` secret is reported.
fn label_for(name: &[u8]) -> &'static str {
    if let Some(known) = KNOWN_NAMES
        .iter()
        .find(|known| known.as_bytes().eq_ignore_ascii_case(name))
    {
        return known;
    }
    let name = name.to_ascii_lowercase();
    if name.ends_with(b"password") || name.ends_with(b"pwd") {
        "Password"
    } else if name.ends_with(b"secret") {
        "Secret"
    } else {
        "Key"
    }
}

/// `AccountKey=…`, `Password = "…"`, `userPWD="…"`: the `=` at `eq`.
fn named_value(text: &[u8], eq: usize, context: Context, hits: &mut Vec<Hit>) {
    let mut name_end = eq;
    while name_end > 0 && text[name_end - 1] == b' ' {
        name_end -= 1;
    }
    let mut name_start = name_end;
    while name_start > 0 && (is_word(text[name_start - 1]) || text[name_start - 1] == b'-') {
        name_start -= 1;
    }
    let name = &text[name_start..name_end];
    let secret_name = SECRET_NAMES.iter().any(|suffix| {
        name.len() >= suffix.len() && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
    });
    if !secret_name {
        return;
    }
    let mut start = eq + 1;
    while text.get(start) == Some(&b' ') {
        start += 1;
    }
    let range = match text.get(start) {
        None => return,
        Some(&quote @ (b'"' | b'\'')) => {
            let from = start + 1;
            let end = memchr::memchr(quote, &text[from..]).map_or(text.len(), |i| from + i);
            from..end
        }
        Some(_) => {
            let stops: &[u8] = match context {
                Context::JsonString => b";\r\n",
                Context::Text => b";\r\n\"'<&",
            };
            let mut end = text[start..]
                .iter()
                .position(|b| stops.contains(b))
                .map_or(text.len(), |i| start + i);
            while end > start && text[end - 1].is_ascii_whitespace() {
                end -= 1;
            }
            start..end
        }
    };
    push(hits, text, range, label_for(name));
}

/// A SAS `sig=`: the `=` at `eq`.
fn sas_signature(text: &[u8], eq: usize, hits: &mut Vec<Hit>) {
    if eq < 3 || !text[eq - 3..eq].eq_ignore_ascii_case(b"sig") || (eq > 3 && is_word(text[eq - 4]))
    {
        return;
    }
    let start = eq + 1;
    let end = text[start..]
        .iter()
        .position(|&b| !(is_base64url(b) || matches!(b, b'%' | b'+' | b'/' | b'=')))
        .map_or(text.len(), |i| start + i);
    push(hits, text, start..end, "sig");
}

/// A base64 key whose padding starts at `eq`.
fn base64_key(
    text: &[u8],
    eq: usize,
    context: Context,
    key_like: &impl Fn() -> bool,
    hits: &mut Vec<Hit>,
) {
    if eq == 0 || !is_base64(text[eq - 1]) {
        return;
    }
    let mut start = eq;
    while start > 0 && is_base64(text[start - 1]) {
        start -= 1;
    }
    let pad = if text.get(eq + 1) == Some(&b'=') {
        2
    } else {
        1
    };
    let end = eq + pad;
    // Next to a token ('*') is no boundary either: what masking leaves
    // beside a token must not turn into a new finding.
    if text
        .get(end)
        .is_some_and(|&b| is_base64(b) || b == b'=' || b == b'*')
        || (start > 0 && text[start - 1] == b'*')
    {
        return;
    }
    let len = end - start;
    if len == 88 && pad == 2 {
        push(hits, text, start..end, "StorageKey");
    } else if len == 44
        && match context {
            Context::JsonString => key_like(),
            Context::Text => named_like_a_key_before(text, start),
        }
    {
        push(hits, text, start..end, "Key");
    }
}

/// Whether the value at `start` of a text follows a name like a key:
/// `primaryKey: …`, `"adminPassword":"…`, `client_secret=…`.
fn named_like_a_key_before(text: &[u8], start: usize) -> bool {
    let mut end = start;
    while end > 0
        && start - end < 4
        && matches!(text[end - 1], b'"' | b'\'' | b' ' | b'\t' | b':' | b'=')
    {
        end -= 1;
    }
    if end == start {
        return false;
    }
    let mut name_start = end;
    while name_start > 0 && (is_word(text[name_start - 1]) || text[name_start - 1] == b'-') {
        name_start -= 1;
    }
    is_key_like_name(&text[name_start..end])
}

/// Whether a member name says its value is a secret whatever its shape
/// (request bodies: `password`, `adminPassword`, `clientSecret`, `pwd`,
/// `passphrase`, any case): [`SECRET_NAMES`] but `key`, which ends too many
/// names that hold no secret (`partitionKey`, `sshPublicKey`), plus
/// `passphrase`.
pub(crate) fn is_secret_name(name: &[u8]) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_NAMES
        .iter()
        .filter(|suffix| **suffix != b"key")
        .chain(&[b"passphrase".as_slice()])
        .any(|suffix| name.ends_with(suffix))
}

/// Whether a member or parameter name says it holds a key: it ends in
/// `key`, or mentions `password` or `secret` (any case).
pub(crate) fn is_key_like_name(name: &[u8]) -> bool {
    let name = name.to_ascii_lowercase();
    name.ends_with(b"key")
        || name.windows(8).any(|w| w == b"password")
        || name.windows(6).any(|w| w == b"secret")
}

/// Every `eyJ….….…` with a plausible header and payload.
fn jwts(text: &[u8], hits: &mut Vec<Hit>) {
    let run = |from: usize| {
        text[from.min(text.len())..]
            .iter()
            .position(|&b| !is_base64url(b))
            .map_or(text.len(), |i| from + i)
    };
    let mut covered = 0;
    for at in JWT_START.find_iter(text) {
        if at < covered || (at > 0 && (is_base64url(text[at - 1]) || text[at - 1] == b'*')) {
            continue;
        }
        let header_end = run(at);
        if header_end - at < 8 || text.get(header_end) != Some(&b'.') {
            continue;
        }
        let payload_end = run(header_end + 1);
        if payload_end - (header_end + 1) < 2 || text.get(payload_end) != Some(&b'.') {
            continue;
        }
        let mut end = run(payload_end + 1);
        // JWE: more segments.
        while text.get(end) == Some(&b'.') {
            let next = run(end + 1);
            if next == end + 1 {
                break;
            }
            end = next;
        }
        covered = end;
        push(hits, text, at..end, "JWT");
    }
}

/// Every PEM private key block.
fn pem_private_keys(text: &[u8], hits: &mut Vec<Hit>) {
    let mut covered = 0;
    for at in PEM_BEGIN.find_iter(text) {
        if at < covered {
            continue;
        }
        let label_start = at + b"-----BEGIN ".len();
        let Some(label) = pem_label(&text[label_start..]) else {
            continue;
        };
        if !label.ends_with(b"PRIVATE KEY") {
            continue;
        }
        let body_start = label_start + label.len() + 5;
        let end = PEM_END.find(&text[body_start..]).map_or(text.len(), |i| {
            let end_label = body_start + i + b"-----END ".len();
            pem_label(&text[end_label..]).map_or(end_label, |label| end_label + label.len() + 5)
        });
        covered = end;
        push(hits, text, at..end, "PrivateKey");
    }
}

/// The label of a PEM boundary (`RSA PRIVATE KEY`) at the start of `text`,
/// up to its closing `-----`: upper-case letters, digits and spaces, at most
/// 40 of them.
fn pem_label(text: &[u8]) -> Option<&[u8]> {
    let window = &text[..text.len().min(PEM_LABEL_MAX + 5)];
    let len = PEM_DASHES.find(window)?;
    let label = &window[..len];
    (!label.is_empty()
        && label
            .iter()
            .all(|&b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' '))
    .then_some(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(text: &str, context: Context) -> Vec<(String, String)> {
        find(text.as_bytes(), context, || false)
            .into_iter()
            .map(|hit| (text[hit.range].to_owned(), hit.label.to_owned()))
            .collect()
    }

    #[test]
    fn names_are_reported_by_kind_unless_well_known() {
        assert_eq!(label_for(b"accountkey"), "AccountKey");
        assert_eq!(label_for(b"adminPassword"), "Password");
        assert_eq!(label_for(b"db-pwd"), "Password");
        assert_eq!(label_for(b"webhookSecret"), "Secret");
        // Perhaps the tail of a key: not spelled out.
        assert_eq!(label_for(b"x9QmZt3untKey"), "Key");
    }

    #[test]
    fn named_values_end_at_semicolons_or_quotes() {
        assert_eq!(
            labels(
                "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=abc+/=;EndpointSuffix=core.windows.net",
                Context::JsonString
            ),
            [("abc+/=".to_owned(), "AccountKey".to_owned())]
        );
        assert_eq!(
            labels(
                "Server=x;User Id=u;Password = \"a;b\";",
                Context::JsonString
            ),
            [("a;b".to_owned(), "Password".to_owned())]
        );
        assert_eq!(
            labels("<p userPWD=\"hunter2\" x=\"1\"/>", Context::Text),
            [("hunter2".to_owned(), "userPWD".to_owned())]
        );
        assert_eq!(labels("SharedAccessKeyName=Root;", Context::Text), []);
        assert_eq!(
            labels("AccountKey=***MASKED:0a1b2c3d***;", Context::Text),
            []
        );
        assert_eq!(labels("AccountKey=;", Context::Text), []);
    }

    #[test]
    fn sas_jwt_and_pem() {
        assert_eq!(
            labels(
                "https://a.blob.core.windows.net/c?sv=2022&sig=ab%2Bc%3D&se=1",
                Context::Text
            ),
            [("ab%2Bc%3D".to_owned(), "sig".to_owned())]
        );
        assert_eq!(
            labels(
                "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln ok",
                Context::Text
            ),
            [(
                "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln".to_owned(),
                "JWT".to_owned()
            )]
        );
        assert_eq!(
            labels("eyJhbGciOiJSUzI1NiJ9 without dots", Context::Text),
            []
        );
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAK\n-----END RSA PRIVATE KEY-----";
        assert_eq!(
            labels(&format!("key: {pem}\nrest"), Context::Text),
            [(pem.to_owned(), "PrivateKey".to_owned())]
        );
        assert_eq!(
            labels(
                "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
                Context::Text
            ),
            []
        );
    }

    #[test]
    fn overlapping_hits_merge() {
        let text =
            "Password=-----BEGIN RSA PRIVATE KEY-----\nMIIBOg\n-----END RSA PRIVATE KEY-----;x=1";
        assert_eq!(
            labels(text, Context::JsonString),
            [(
                "-----BEGIN RSA PRIVATE KEY-----\nMIIBOg\n-----END RSA PRIVATE KEY-----".to_owned(),
                "PrivateKey".to_owned()
            )]
        );
    }

    #[test]
    fn base64_keys_by_length() {
        let long = format!("{}==", "A1b/".repeat(21) + "xy");
        assert_eq!(long.len(), 88);
        assert_eq!(
            labels(&format!("key {long} end"), Context::Text),
            [(long.clone(), "StorageKey".to_owned())]
        );
        assert_eq!(labels(&format!("x{long}"), Context::Text), []);
        let short = format!("{}=", "Ab1+".repeat(10) + "xyz");
        assert_eq!(short.len(), 44);
        assert_eq!(labels(&short, Context::JsonString), []);
        let hits = find(short.as_bytes(), Context::JsonString, || true);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].range, 0..44);
        for named in [
            format!("primaryKey: {short}"),
            format!("{{\"client_secret\":\"{short}\"}}"),
        ] {
            assert_eq!(
                labels(&named, Context::Text),
                [(short.clone(), "Key".to_owned())],
                "{named}"
            );
        }
        assert_eq!(labels(&format!("etag: {short}"), Context::Text), []);
    }
}
