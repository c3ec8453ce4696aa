//! Which headers cross the gateway, in each direction.

use http::HeaderMap;
use http::header::{self, HeaderName};

/// Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Request headers that carry the client's credentials or address the
/// gateway itself; the gateway replaces or drops them.
const CLIENT_ONLY: [HeaderName; 4] = [
    header::AUTHORIZATION,
    header::HOST,
    // Extra bearer tokens ARM would honour for cross-tenant calls.
    HeaderName::from_static("x-ms-authorization-auxiliary"),
    HeaderName::from_static("proxy-connection"),
];

/// Removes hop-by-hop headers, including those the `Connection` header names.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named = connection_named(headers);
    remove_where(headers, |name| {
        HOP_BY_HOP.contains(name) || named.contains(name)
    });
}

/// Prepares the client's headers for Azure: hop-by-hop, the client's
/// credentials and Airlock's own `x-airlock-*` headers are removed.
pub(crate) fn sanitize_request(headers: &mut HeaderMap) {
    let named = connection_named(headers);
    remove_where(headers, |name| {
        HOP_BY_HOP.contains(name)
            || CLIENT_ONLY.contains(name)
            || named.contains(name)
            || name.as_str().starts_with("x-airlock-")
    });
}

/// The headers the `Connection` header names.
fn connection_named(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect()
}

/// Removes the headers `drop` picks, in one pass over the names present:
/// a request has a handful, where removing each listed name in turn hashed
/// a dozen names that were mostly absent.
fn remove_where(headers: &mut HeaderMap, drop: impl Fn(&HeaderName) -> bool) {
    let doomed: Vec<HeaderName> = headers.keys().filter(|name| drop(name)).cloned().collect();
    for name in doomed {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn connection_named_headers_and_credentials_are_removed() {
        let mut headers = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, X-Secret-Hop"),
            ("x-secret-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("authorization", "Bearer client"),
            ("x-ms-authorization-auxiliary", "Bearer other-tenant"),
            ("proxy-authorization", "Basic x"),
            ("transfer-encoding", "chunked"),
            ("host", "localhost"),
            ("x-airlock-session", "s1"),
            ("x-ms-client-request-id", "keep-me"),
            ("content-type", "application/json"),
        ] {
            headers.append(k, HeaderValue::from_static(v));
        }
        sanitize_request(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-type", "x-ms-client-request-id"]);
    }
}
