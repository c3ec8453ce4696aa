//! What the simulated Azure received.

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, Method, Uri};

/// One request as it reached the simulated Azure, recorded before any check.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// The method.
    pub method: Method,
    /// The path and query, as received.
    pub uri: Uri,
    /// The `Host` header (or, over HTTP/2, the `:authority`), port included.
    pub host: Option<String>,
    /// Every header, as received.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl RecordedRequest {
    /// Records `request`'s head and `body`.
    pub(crate) fn new(head: &Parts, body: Bytes) -> Self {
        let uri = head
            .uri
            .path_and_query()
            .map_or_else(|| Uri::from_static("/"), |pq| Uri::from(pq.clone()));
        Self {
            method: head.method.clone(),
            uri,
            host: request_host(head),
            headers: head.headers.clone(),
            body,
        }
    }
}

/// The `Host` header, else the URI's authority (HTTP/2).
pub(crate) fn request_host(head: &Parts) -> Option<String> {
    head.headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| head.uri.authority().map(|a| a.as_str().to_owned()))
}
