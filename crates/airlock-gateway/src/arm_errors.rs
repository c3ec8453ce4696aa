//! Gives the responses of generic middleware (tower-http's timeout and body
//! limit) the ARM error shape every Airlock error has.

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Duration;

use airlock_core::{AirlockBody, AirlockError, BoxError, BoxFuture, ErrorContext, boxed};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::Body;

use airlock_upstream::FromUpstream;

/// Wraps a service so that its bare 408/413/504 answers become ARM-shaped errors.
#[derive(Clone, Debug)]
pub(crate) struct ArmErrorsLayer {
    request_timeout: Duration,
    body_timeout: Duration,
    max_body_bytes: u64,
}

impl ArmErrorsLayer {
    /// The values are only used to explain the error to the client.
    pub(crate) fn new(
        request_timeout: Duration,
        body_timeout: Duration,
        max_body_bytes: u64,
    ) -> Self {
        Self {
            request_timeout,
            body_timeout,
            max_body_bytes,
        }
    }
}

impl<S> tower::Layer<S> for ArmErrorsLayer {
    type Service = ArmErrors<S>;
    fn layer(&self, inner: S) -> ArmErrors<S> {
        ArmErrors {
            inner,
            layer: self.clone(),
        }
    }
}

/// See [`ArmErrorsLayer`].
#[derive(Clone, Debug)]
pub(crate) struct ArmErrors<S> {
    inner: S,
    layer: ArmErrorsLayer,
}

impl<S, ReqB, ResB> tower::Service<Request<ReqB>> for ArmErrors<S>
where
    S: tower::Service<Request<ReqB>, Response = Response<ResB>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqB: Send + 'static,
    ResB: Body<Data = Bytes> + Send + 'static,
    ResB::Error: Into<BoxError>,
{
    type Response = Response<AirlockBody>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<AirlockBody>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        let ctx = ErrorContext::from_request(&request);
        // Called now (the inner service is ready): no clone of the stack below.
        let responded = self.inner.call(request);
        let layer = self.layer.clone();
        Box::pin(async move {
            let response = responded.await?;
            let generic = response.extensions().get::<FromUpstream>().is_none()
                && !response.headers().contains_key(airlock_core::ERROR_CODE);
            let error = match response.status() {
                StatusCode::GATEWAY_TIMEOUT if generic => {
                    AirlockError::UpstreamTimeout(layer.request_timeout)
                }
                StatusCode::REQUEST_TIMEOUT if generic => {
                    AirlockError::RequestTimeout(layer.body_timeout)
                }
                StatusCode::PAYLOAD_TOO_LARGE if generic => AirlockError::PayloadTooLarge {
                    limit: layer.max_body_bytes,
                },
                _ => return Ok(response.map(boxed)),
            };
            Ok(error.into_response(&ctx))
        })
    }
}
