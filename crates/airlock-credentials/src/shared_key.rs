//! Azure Storage Shared Key: the gateway signs a request with an account key
//! it holds, so the agent never sees the key.
//!
//! The signature follows the Storage REST docs ("Authorize with Shared
//! Key", version 2009-09-19 and later): an HMAC-SHA256, keyed with the
//! decoded account key, of
//!
//! ```text
//! VERB \n Content-Encoding \n Content-Language \n Content-Length (empty when 0) \n
//! Content-MD5 \n Content-Type \n Date \n If-Modified-Since \n If-Match \n
//! If-None-Match \n If-Unmodified-Since \n Range \n
//! CanonicalizedHeaders (x-ms-*: lower-cased, sorted, "name:value\n")
//! CanonicalizedResource ("/account/path", then "\nname:value" per query
//!                        parameter, names lower-cased and sorted, values decoded,
//!                        repeated names' values sorted and comma-joined)
//! ```
//!
//! sent as `Authorization: SharedKey {account}:{base64 signature}`.

use std::collections::BTreeMap;
use std::fmt;

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderValue, Method, Uri};

/// An account key; its `Debug` never shows the key.
///
/// ```
/// use airlock_credentials::SharedKey;
/// use http::{HeaderMap, HeaderValue, Method};
///
/// let key = SharedKey::new("demostore", "c2VjcmV0LWtleQ==").unwrap();
/// let mut headers = HeaderMap::new();
/// headers.insert("x-ms-version", HeaderValue::from_static("2023-11-03"));
/// key.sign(&Method::GET, &"/logs?comp=list".parse().unwrap(), &mut headers, 0);
/// let authorization = headers["authorization"].to_str().unwrap();
/// assert!(authorization.starts_with("SharedKey demostore:"));
/// assert!(headers.contains_key("x-ms-date"));
/// assert!(!format!("{key:?}").contains("c2VjcmV0"));
/// ```
#[derive(Clone)]
pub struct SharedKey {
    account: String,
    key: hmac::Key,
}

/// Why a configured key cannot be used.
#[derive(Debug, thiserror::Error)]
#[error(
    "the account key of '{account}' is not base64 (copy key1 or key2 from the portal or `az storage account keys list`)"
)]
pub struct InvalidKey {
    /// The storage account.
    pub account: String,
}

impl SharedKey {
    /// `account`'s key, base64 as Azure shows it (surrounding whitespace ignored).
    ///
    /// # Errors
    ///
    /// The key is not base64, or empty.
    pub fn new(account: impl Into<String>, base64_key: &str) -> Result<Self, InvalidKey> {
        let account = account.into();
        let bytes = STANDARD
            .decode(base64_key.trim())
            .ok()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| InvalidKey {
                account: account.clone(),
            })?;
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &bytes),
            account,
        })
    }

    /// The storage account the key belongs to.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// Signs a request to `uri` (path and query as sent upstream) whose body
    /// is `content_length` bytes: sets `x-ms-date` to now (dropping any
    /// `Date`) and `Authorization`, replacing whatever the client sent.
    pub fn sign(&self, method: &Method, uri: &Uri, headers: &mut HeaderMap, content_length: u64) {
        headers.remove(http::header::DATE);
        let now = httpdate::fmt_http_date(std::time::SystemTime::now());
        if let Ok(date) = HeaderValue::from_str(&now) {
            headers.insert("x-ms-date", date);
        }
        let to_sign = string_to_sign(&self.account, method, uri, headers, content_length);
        let signature = STANDARD.encode(hmac::sign(&self.key, to_sign.as_bytes()).as_ref());
        if let Ok(value) = HeaderValue::from_str(&format!("SharedKey {}:{signature}", self.account))
        {
            headers.insert(http::header::AUTHORIZATION, value);
        }
    }
}

impl fmt::Debug for SharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedKey")
            .field("account", &self.account)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The string a Shared Key signature is computed over.
pub fn string_to_sign(
    account: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    content_length: u64,
) -> String {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let length = if content_length == 0 {
        String::new()
    } else {
        content_length.to_string()
    };
    let mut out = format!(
        "{method}\n{}\n{}\n{length}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n",
        header("content-encoding"),
        header("content-language"),
        header("content-md5"),
        header("content-type"),
        header("date"),
        header("if-modified-since"),
        header("if-match"),
        header("if-none-match"),
        header("if-unmodified-since"),
        header("range"),
    );
    let mut ms: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        if name.as_str().starts_with("x-ms-") {
            let value = value.to_str().unwrap_or("");
            let folded = value.split_whitespace().collect::<Vec<_>>().join(" ");
            ms.entry(name.as_str().to_owned())
                .and_modify(|v| {
                    v.push(',');
                    v.push_str(&folded);
                })
                .or_insert(folded);
        }
    }
    for (name, value) in &ms {
        out.push_str(name);
        out.push(':');
        out.push_str(value);
        out.push('\n');
    }
    out.push('/');
    out.push_str(account);
    out.push_str(if uri.path().is_empty() {
        "/"
    } else {
        uri.path()
    });
    let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        params
            .entry(decode(name).to_lowercase())
            .or_default()
            .push(decode(value));
    }
    for (name, mut values) in params {
        values.sort();
        out.push('\n');
        out.push_str(&name);
        out.push(':');
        out.push_str(&values.join(","));
    }
    out
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_string_to_sign_is_the_documented_canonical_form() {
        let mut headers = HeaderMap::new();
        headers.insert("x-ms-version", HeaderValue::from_static("2023-11-03"));
        headers.insert(
            "x-ms-date",
            HeaderValue::from_static("Fri, 26 Jun 2015 23:39:12 GMT"),
        );
        headers.insert(
            "X-MS-Meta-Owner",
            HeaderValue::from_static("  build   agent "),
        );
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        let uri: Uri = "/logs/day%201.txt?timeout=30&comp=Metadata&a=2&A=1"
            .parse()
            .unwrap();
        assert_eq!(
            string_to_sign("demostore", &Method::PUT, &uri, &headers, 11),
            "PUT\n\n\n11\n\ntext/plain\n\n\n\n\n\n\n\
             x-ms-date:Fri, 26 Jun 2015 23:39:12 GMT\nx-ms-meta-owner:build agent\nx-ms-version:2023-11-03\n\
             /demostore/logs/day%201.txt\na:1,2\ncomp:Metadata\ntimeout:30"
        );
        // Zero length is empty, as of version 2015-02-21.
        assert!(
            string_to_sign(
                "a",
                &Method::GET,
                &"/".parse().unwrap(),
                &HeaderMap::new(),
                0
            )
            .starts_with("GET\n\n\n\n")
        );
    }

    /// A known answer: HMAC-SHA256 under the decoded key, base64 (computed
    /// independently with Python's hmac module).
    #[test]
    fn the_signature_is_hmac_sha256_under_the_decoded_key() {
        let key = SharedKey::new("demostore", "c2VjcmV0LWtleQ==").unwrap();
        let signature = STANDARD.encode(hmac::sign(&key.key, b"GET\n").as_ref());
        assert_eq!(signature, "rVZ8CFV8Qs1VESy/+Ihd+qVfvZCfzge7mmVJqM2hWMM=");
        assert!(SharedKey::new("x", "not base64!").is_err());
    }
}
