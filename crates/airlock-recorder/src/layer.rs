//! [`RecorderLayer`]: records one audit event per request.

use std::sync::Arc;

use tower::Layer;

use crate::queue::Queue;
use crate::service::RecorderService;

/// Records one audit event for every request through it, denials and
/// errors included. Made by [`Recorder::layer`](crate::Recorder::layer);
/// the outermost Airlock layer (only request id and tracing sit outside it).
///
/// Per request it puts an [`AuditDraft`](airlock_core::AuditDraft) in the
/// extensions for later layers to fill in, counts the request and response
/// body bytes, and when the response ends builds the event: completed,
/// failed (the body failed, or the inner service returned an error: status
/// 500), or client gone (the response or its body was dropped before the
/// end; status 499 when no response existed yet).
///
/// # Durability (fail-closed, the default)
///
/// **A client that received a complete response can rely on its event being
/// stored.** The layer holds back the end of every response (the last data
/// frame, or the end of the body) until the sink has acknowledged the
/// append holding its event; if that append fails, the body ends with an
/// error instead, so the client sees a broken response, never a complete
/// one. A response without a body (`HEAD`, 1xx, 204, 304, an empty body),
/// or whose body is already whole in memory (a buffered
/// [`AirlockBody`](airlock_core::AirlockBody): every answer the masking
/// layer read, Airlock's own errors), is held before its head is sent and
/// becomes `503 AirlockAuditUnavailable` if its event cannot be stored; its
/// head and body then leave in one write.
///
/// While the sink is failing (or the queue is full, or the recorder has shut
/// down), new requests are refused with `503 AirlockAuditUnavailable`
/// (retryable, without calling the inner service); such refusals are not
/// recorded. What is not guaranteed: an action already forwarded when the
/// sink failed cannot be undone (its event is lost and counted as dropped),
/// and a client that goes away while the end is held back still has its
/// event stored as completed.
///
/// Fail-open (`fail_closed: false`), nothing waits for the sink: events are
/// queued if there is room and dropped (counted, warned about at most once a
/// second) if not.
///
/// ```
/// use std::convert::Infallible;
/// use std::sync::Arc;
///
/// use airlock_core::{AuditDraft, full};
/// use airlock_recorder::{MemorySink, Recorder, RecorderConfig};
/// use http::{Request, Response};
/// use http_body_util::BodyExt;
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let sink = Arc::new(MemorySink::new());
/// let recorder = Recorder::start(sink.clone(), RecorderConfig::default()).await.unwrap();
/// let service = ServiceBuilder::new()
///     .layer(recorder.layer())
///     .service(service_fn(|request: Request<_>| async move {
///         // Later layers write what they learn into the draft.
///         let draft = request.extensions().get::<AuditDraft>().unwrap();
///         draft.update(|record| record.upstream_status = Some(200));
///         Ok::<_, Infallible>(Response::new(full("{}")))
///     }));
///
/// let response = service.oneshot(Request::get("/subscriptions").body(full("")).unwrap()).await.unwrap();
/// let body = response.into_body().collect().await.unwrap().to_bytes();
/// assert_eq!(body, "{}");
/// // The client has the whole response: its event is already stored.
/// let events = sink.events();
/// assert_eq!(events.len(), 1);
/// assert_eq!(events[0].event.path, "/subscriptions");
/// assert_eq!(events[0].event.upstream_status, Some(200));
/// # });
/// ```
#[derive(Clone)]
pub struct RecorderLayer {
    pub(crate) queue: Arc<Queue>,
}

impl std::fmt::Debug for RecorderLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecorderLayer")
            .field("config", &self.queue.config)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for RecorderLayer {
    type Service = RecorderService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RecorderService {
            inner,
            queue: Arc::clone(&self.queue),
        }
    }
}
