//! [`ClassifyService`]: the per-request work of the classify layer.

use sha2::{Digest as _, Sha256};
use std::sync::Arc;
use std::task::{Context, Poll};

use airlock_core::{
    AirlockBody, AirlockError, AuditDraft, BodyError, BoxError, BoxFuture, collect_limited, full,
};
use bytes::Bytes;
use http::request::Parts;
use http::{Request, Response};
use http_body::Body;
use tower::Service;

use crate::layer::Shared;
use crate::{AzureEndpoint, ClassifyError, ClassifyRequest, classify};

/// The classify middleware; see [`ClassifyLayer`](crate::ClassifyLayer).
///
/// It reads the request body once, within the configured bound, and hands
/// the inner service a `Request<AirlockBody>` holding the same bytes, with
/// the [`Operation`](airlock_core::Operation) and the resolved
/// [`AzureEndpoint`](crate::AzureEndpoint) in its extensions: no later layer
/// reads the body or resolves the host again.
#[derive(Clone)]
pub struct ClassifyService<S> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared>,
}

impl<S> std::fmt::Debug for ClassifyService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClassifyService").finish_non_exhaustive()
    }
}

impl<S, B, ResBody> Service<Request<B>> for ClassifyService<S>
where
    S: Service<Request<AirlockBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<AirlockBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (mut parts, body) = request.into_parts();
        let resolved = match parts.extensions.get::<AzureEndpoint>() {
            Some(endpoint) => Ok(endpoint.clone()),
            None => (self.shared.resolver)(&parts.uri, &parts.headers),
        };
        let max_body_bytes = self.shared.max_body_bytes;
        let body_error = self.shared.body_error.clone();
        Box::pin(async move {
            let endpoint = match resolved {
                Ok(endpoint) => endpoint,
                Err(error) => return Ok(refuse(parts, error)),
            };
            let bytes = match collect_limited(body, &parts.headers, max_body_bytes).await {
                Ok(bytes) => bytes,
                Err(BodyError::TooLarge { limit }) => {
                    return Ok(refuse(parts, AirlockError::PayloadTooLarge { limit }));
                }
                Err(BodyError::Read(error)) => {
                    let error = match &body_error {
                        Some(map) => map(&error),
                        None => ClassifyError::BodyUnreadable(error.to_string()).into(),
                    };
                    return Ok(refuse(parts, error));
                }
            };
            let classified = classify(&ClassifyRequest {
                method: &parts.method,
                endpoint: &endpoint,
                path: parts.uri.path(),
                query: parts.uri.query(),
                headers: &parts.headers,
                body: &bytes,
            });
            let operation = match classified {
                Ok(operation) => operation,
                Err(error) => {
                    tracing::info!(reason = %error, "request refused: it cannot be classified");
                    return Ok(refuse(parts, error.into()));
                }
            };
            airlock_core::record_in_current_span(
                "operation",
                &tracing::field::display(operation.name()),
            );
            tracing::debug!(%operation, children = operation.children().len(), "classified");
            if let Some(draft) = parts.extensions.get::<AuditDraft>() {
                // The body is read here once: its digest goes on the record.
                let digest = (!bytes.is_empty()).then(|| hex::encode(Sha256::digest(&bytes)));
                draft.update(|record| {
                    record.operation = Some(operation.clone());
                    record.request_body_sha256 = digest;
                });
            }
            parts.extensions.insert(endpoint);
            parts.extensions.insert(operation);
            // Boxed here so the future's `Send` is checked where it is made
            // (naming `S::Future` across the await trips a rustc limitation
            // with the boxed body's trait-object lifetime).
            let forwarded: BoxFuture<'static, Result<Response<ResBody>, S::Error>> =
                Box::pin(inner.call(Request::from_parts(parts, full(bytes))));
            let response = forwarded.await?;
            Ok(response.map(AirlockBody::new))
        })
    }
}

/// Answers `error` in the ARM shape.
fn refuse(parts: Parts, error: AirlockError) -> Response<AirlockBody> {
    error.into_response_for(&Request::from_parts(parts, ()))
}
