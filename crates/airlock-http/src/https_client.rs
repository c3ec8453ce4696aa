//! [`HttpsClient`]: the pooled client behind `airlock_core`'s [`HttpClient`].

use std::time::Duration;

use airlock_core::{BoxFuture, HttpClient, HttpClientError, collect_limited};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;

use crate::PooledClient;

/// The default largest response read: 1 MiB (JWKS documents, Graph answers).
const DEFAULT_MAX_RESPONSE_BYTES: u64 = 1 << 20;

/// An [`HttpClient`] over a [`PooledClient`]: each exchange bounded by a
/// timeout (headers and body) and a response size.
#[derive(Clone, Debug)]
pub struct HttpsClient {
    client: PooledClient,
    timeout: Duration,
    max_response_bytes: u64,
}

impl HttpsClient {
    /// Sends with `client` (sharing its pool), giving each exchange `timeout`.
    pub fn new(client: PooledClient, timeout: Duration) -> Self {
        Self {
            client,
            timeout,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }

    /// The largest response read (default 1 MiB); a larger one is an error.
    #[must_use]
    pub fn max_response_bytes(mut self, limit: u64) -> Self {
        self.max_response_bytes = limit;
        self
    }
}

impl HttpClient for HttpsClient {
    fn send(
        &self,
        request: Request<Bytes>,
    ) -> BoxFuture<'_, Result<Response<Bytes>, HttpClientError>> {
        Box::pin(async move {
            let exchange = async {
                let response = self
                    .client
                    .request(request.map(Full::new))
                    .await
                    .map_err(|e| HttpClientError(format!("request failed: {}", innermost(&e))))?;
                let (parts, body) = response.into_parts();
                let body = collect_limited(body, &parts.headers, self.max_response_bytes)
                    .await
                    .map_err(|e| HttpClientError(format!("reading the response failed: {e}")))?;
                Ok(Response::from_parts(parts, body))
            };
            tokio::time::timeout(self.timeout, exchange)
                .await
                .map_err(|_| HttpClientError(format!("no answer within {:?}", self.timeout)))?
        })
    }
}

/// The innermost cause of an error, which is the one that explains
/// (`connection refused`, not `client error (Connect)`).
///
/// ```
/// let error = std::io::Error::other("connection refused");
/// assert_eq!(airlock_http::innermost(&error), "connection refused");
/// ```
pub fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        message = inner.to_string();
        cause = inner.source();
    }
    message
}
