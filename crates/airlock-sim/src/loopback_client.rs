//! A plain-HTTP [`HttpClient`] for talking to local test doubles: the
//! simulated Azure, the development issuer, a stub Microsoft Graph.

use std::time::Duration;

use airlock_core::{BoxFuture, HttpClient, HttpClientError, collect_limited};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// The largest response body read (4 MiB).
const MAX_BODY: u64 = 4 << 20;

/// Sends `http://` requests only (no TLS), with a 10 s timeout per request.
///
/// ```no_run
/// use std::sync::Arc;
/// use airlock_core::HttpClient;
/// use airlock_sim::LoopbackClient;
///
/// let client: Arc<dyn HttpClient> = Arc::new(LoopbackClient::new());
/// # let _ = client;
/// ```
#[derive(Clone, Debug)]
pub struct LoopbackClient {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for LoopbackClient {
    fn default() -> Self {
        Self::new()
    }
}

impl LoopbackClient {
    /// A pooled HTTP/1.1 client.
    pub fn new() -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }
}

impl HttpClient for LoopbackClient {
    fn send(
        &self,
        request: Request<Bytes>,
    ) -> BoxFuture<'_, Result<Response<Bytes>, HttpClientError>> {
        Box::pin(async move {
            let request = request.map(Full::new);
            let exchange = async {
                let response = self
                    .client
                    .request(request)
                    .await
                    .map_err(|e| HttpClientError(format!("request failed: {e}")))?;
                let (parts, body) = response.into_parts();
                let body = collect_limited(body, &parts.headers, MAX_BODY)
                    .await
                    .map_err(|e| HttpClientError(format!("reading the response failed: {e}")))?;
                Ok(Response::from_parts(parts, body))
            };
            tokio::time::timeout(Duration::from_secs(10), exchange)
                .await
                .map_err(|_| HttpClientError("no answer within 10s".into()))?
        })
    }
}
