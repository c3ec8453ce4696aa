//! [`ResponseFuture`]: the inner service's answer, or the policy's refusal.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use airlock_core::{AirlockBody, BoxError};
use bytes::Bytes;
use http::Response;
use http_body::Body;
use pin_project_lite::pin_project;

pin_project! {
    /// The response of [`PolicyService`](crate::PolicyService).
    #[project = Projected]
    #[derive(Debug)]
    pub enum ResponseFuture<F> {
        /// Forwarded to the inner service.
        Inner { #[pin] future: F },
        /// Refused here.
        Refused { response: Option<Response<AirlockBody>> },
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn inner(future: F) -> Self {
        Self::Inner { future }
    }
    pub(crate) fn refused(response: Response<AirlockBody>) -> Self {
        Self::Refused {
            response: Some(response),
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<AirlockBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Projected::Inner { future } => future.poll(cx).map_ok(|r| r.map(AirlockBody::new)),
            Projected::Refused { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => Poll::Pending,
            },
        }
    }
}
