//! The client Airlock's layers use for their own calls: OIDC discovery, JWKS,
//! Microsoft Graph, token endpoints.
//!
//! Layer crates ask for an `Arc<dyn HttpClient>` instead of building their
//! own, so a deployment has one HTTP stack (one TLS configuration, one trust
//! store, one connection pool). The gateway implements it over its pooled
//! hyper-util client; tests use the simulated Azure's loopback client.

use bytes::Bytes;
use http::{Request, Response};

use crate::BoxFuture;

/// Sends one buffered request and returns the buffered response.
///
/// Implementations bound the response size and time, follow no redirects,
/// and answer non-2xx statuses as responses, not errors.
///
/// ```
/// use airlock_core::{BoxFuture, HttpClient, HttpClientError};
/// use bytes::Bytes;
/// use http::{Request, Response};
///
/// /// Answers every request with the same JSON document.
/// struct Canned(&'static str);
///
/// impl HttpClient for Canned {
///     fn send(&self, _request: Request<Bytes>) -> BoxFuture<'_, Result<Response<Bytes>, HttpClientError>> {
///         Box::pin(async move { Ok(Response::new(Bytes::from_static(self.0.as_bytes()))) })
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let client: std::sync::Arc<dyn HttpClient> = std::sync::Arc::new(Canned(r#"{"keys":[]}"#));
/// let response = client.send(Request::new(Bytes::new())).await.unwrap();
/// assert_eq!(response.body().as_ref(), br#"{"keys":[]}"#);
/// # });
/// ```
pub trait HttpClient: Send + Sync + 'static {
    /// Sends `request` (absolute URI) and reads the whole response.
    fn send(
        &self,
        request: Request<Bytes>,
    ) -> BoxFuture<'_, Result<Response<Bytes>, HttpClientError>>;
}

/// Why a request could not be sent or its response read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpClientError(pub String);
