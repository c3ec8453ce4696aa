//! [`RecorderService`]: the per-request work of the recorder layer.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::task::{Context, Poll};

use airlock_core::{AirlockBody, AuditDraft, BoxError, BoxFuture, ErrorContext, declared_length};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use tower::Service;

use crate::body::{RequestBody, ResponseBody};
use crate::exchange::Exchange;
use crate::facts::RequestFacts;
use crate::queue::Queue;
use crate::{Outcome, RecorderError};

/// The recorder middleware; see [`RecorderLayer`](crate::RecorderLayer).
#[derive(Clone)]
pub struct RecorderService<S> {
    pub(crate) inner: S,
    pub(crate) queue: Arc<Queue>,
}

impl<S> std::fmt::Debug for RecorderService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecorderService").finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RecorderService<S>
where
    S: Service<Request<RequestBody<ReqBody>>, Response = Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<AirlockBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if let Err(problem) = self.queue.admit() {
            // Not recorded: the recorder cannot take events now.
            let response = refuse(problem, &ErrorContext::from_headers(request.headers()));
            return Box::pin(async move { Ok(response) });
        }
        let facts = RequestFacts::of(&request);
        let context = ErrorContext::from_headers(request.headers());
        let head_request = request.method() == Method::HEAD;
        let draft = AuditDraft::default();
        let received = Arc::new(AtomicU64::new(0));
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(draft.clone());
        let request = Request::from_parts(parts, RequestBody::new(body, Arc::clone(&received)));
        // Dropped before it ends (the response future abandoned), the
        // exchange is recorded as `ClientGone`.
        let mut exchange = Exchange::new(Arc::clone(&self.queue), draft, facts, received);
        // Called now, not in the future: the inner service is ready (see
        // `poll_ready`), and a clone of the whole stack below per request
        // (an atomic count per layer's shared state) is not needed.
        // Boxed here so the future's `Send` is checked where it is made.
        let responded: BoxFuture<'static, Result<Response<ResBody>, S::Error>> =
            Box::pin(self.inner.call(request));

        Box::pin(async move {
            let response = match responded.await {
                Ok(response) => response,
                Err(error) => {
                    exchange.failed_without_response();
                    return Err(error);
                }
            };
            exchange.responded(response.status(), response.headers());
            if head_request || no_body(response.status()) || response.body().is_end_stream() {
                // Nothing to hold back but the head: hold that.
                if let Some(stored) = exchange.finish(Outcome::Completed)
                    && let Err(problem) = stored.await
                {
                    return Ok(refuse(problem, &context));
                }
                return Ok(response.map(|body| AirlockBody::new(ResponseBody::recorded(body))));
            }
            if let Some(length) = buffered_length(response.body()) {
                // Already whole in memory (every answer the masking layer
                // read, Airlock's own errors): stored before the head leaves,
                // so head and body go out in one write, not two.
                exchange.sent(length);
                if let Some(stored) = exchange.finish(Outcome::Completed)
                    && let Err(problem) = stored.await
                {
                    return Ok(refuse(problem, &context));
                }
                // As it is (an `AirlockBody` is not boxed again), with
                // whatever it holds until it is sent.
                return Ok(response.map(AirlockBody::new));
            }
            let declared =
                declared_length(response.headers()).or_else(|| response.body().size_hint().exact());
            Ok(response.map(|body| AirlockBody::new(ResponseBody::new(body, exchange, declared))))
        })
    }
}

/// The length of a body already whole in memory (a buffered [`AirlockBody`]).
fn buffered_length<B: 'static>(body: &B) -> Option<usize> {
    (body as &dyn Any)
        .downcast_ref::<AirlockBody>()
        .and_then(AirlockBody::buffered)
        .map(Bytes::len)
}

/// Statuses whose responses carry no body.
fn no_body(status: StatusCode) -> bool {
    status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
}

/// `503 AirlockAuditUnavailable`.
fn refuse(problem: RecorderError, context: &ErrorContext) -> Response<AirlockBody> {
    problem.into_airlock().into_response(context)
}
