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
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

/// Prepares the client's headers for Azure: hop-by-hop, the client's
/// credentials and Airlock's own `x-airlock-*` headers are removed.
pub(crate) fn sanitize_request(headers: &mut HeaderMap) {
    strip_hop_by_hop(headers);
    for name in &CLIENT_ONLY {
        headers.remove(name);
    }
    let airlock: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("x-airlock-"))
        .cloned()
        .collect();
    for name in airlock {
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
