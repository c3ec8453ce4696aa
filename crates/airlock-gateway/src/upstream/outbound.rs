//! The gateway's client for its own calls (OIDC discovery, JWKS, Microsoft
//! Graph): the same pooled hyper-util client and trust store as the upstream
//! service, behind `airlock_core`'s [`HttpClient`] trait.

use std::time::Duration;

use airlock_core::{BoxFuture, HttpClient, HttpClientError, collect_limited};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;

use super::client::{self, ClientError, UpstreamClient};
use crate::Config;

/// The largest response read on the gateway's own calls (JWKS documents,
/// Graph answers): 1 MiB.
const MAX_RESPONSE_BYTES: u64 = 1 << 20;

/// An [`HttpClient`] over the gateway's pooled client: system roots plus
/// `upstream.ca_file`, plain `http://` only with `upstream.allow_insecure_http`,
/// `upstream.connect_timeout`, and `upstream.read_timeout` for the whole exchange.
#[derive(Clone, Debug)]
pub struct OutboundClient {
    client: UpstreamClient,
    timeout: Duration,
}

impl OutboundClient {
    /// Builds the client from validated configuration.
    ///
    /// # Errors
    ///
    /// When `upstream.ca_file` is unusable or there are no trust roots.
    pub fn from_config(config: &Config) -> Result<Self, ClientError> {
        Ok(Self {
            client: client::build(config)?,
            timeout: config.upstream.read_timeout,
        })
    }
}

impl HttpClient for OutboundClient {
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
                    .map_err(|e| HttpClientError(format!("request failed: {e}")))?;
                let (parts, body) = response.into_parts();
                let body = collect_limited(body, &parts.headers, MAX_RESPONSE_BYTES)
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
