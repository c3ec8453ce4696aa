//! What the recorder's tests share: a gateway around a `service_fn`, bodies
//! the test drives frame by frame, and waiting for conditions with a deadline.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use airlock_core::{AirlockBody, AuditDraft, BoxError, BoxFuture, boxed, full};
use airlock_recorder::{
    AuditEvent, MemorySink, Recorder, RecorderConfig, RecorderService, RequestBody,
};
use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tokio::sync::mpsc;
use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceExt};

/// The request inner services get.
pub type InnerRequest = Request<RequestBody<AirlockBody>>;

/// The recorder around a boxed inner service.
pub type Gateway =
    RecorderService<BoxCloneSyncService<InnerRequest, Response<AirlockBody>, BoxError>>;

/// How long any condition may take before a test fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A recorder over a fresh memory sink.
pub async fn start(config: RecorderConfig) -> (Arc<MemorySink>, Recorder) {
    let sink = Arc::new(MemorySink::new());
    let recorder = Recorder::start(sink.clone(), config).await.unwrap();
    (sink, recorder)
}

/// The recorder's layer around `inner`.
pub fn gateway<F, Fut>(recorder: &Recorder, inner: F) -> Gateway
where
    F: Fn(InnerRequest) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<AirlockBody>, BoxError>> + Send + 'static,
{
    recorder
        .layer()
        .layer(BoxCloneSyncService::new(tower::service_fn(inner)))
}

/// An inner service answering 200 with `body`.
pub fn ok(body: &'static str) -> impl Fn(InnerRequest) -> Ready + Clone + Send + 'static {
    move |_| std::future::ready(Ok(Response::new(full(body))))
}

/// An inner service answering 200 with `body` streamed: one frame, not
/// buffered, so the recorder holds back its end rather than its head.
pub fn streamed(body: &'static str) -> impl Fn(InnerRequest) -> Ready + Clone + Send + 'static {
    move |_| {
        let (feeder, streamed) = fed();
        feeder
            .send(Ok(Bytes::from_static(body.as_bytes())))
            .unwrap();
        std::future::ready(Ok(Response::new(streamed)))
    }
}

pub type Ready = std::future::Ready<Result<Response<AirlockBody>, BoxError>>;

/// A GET of `path`.
pub fn get(path: &str) -> Request<AirlockBody> {
    Request::get(path).body(full("")).unwrap()
}

/// Sends `request` through `gateway` and reads the whole response.
///
/// Boxed, so the future's `Send` is checked here, where its types are known.
pub fn send(
    gateway: &Gateway,
    request: Request<AirlockBody>,
) -> BoxFuture<'static, (u16, Result<Bytes, BoxError>)> {
    let responded: BoxFuture<'static, _> = Box::pin(gateway.clone().oneshot(request));
    Box::pin(async move {
        let response = responded.await.unwrap();
        let status = response.status().as_u16();
        let body = boxed(response.into_body())
            .collect()
            .await
            .map(http_body_util::Collected::to_bytes);
        (status, body)
    })
}

/// The draft later layers fill in.
pub fn draft(request: &InnerRequest) -> AuditDraft {
    request.extensions().get::<AuditDraft>().unwrap().clone()
}

/// Waits until `condition` holds, failing the test after [`DEADLINE`].
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the sink holds `n` events and returns them.
pub async fn events(sink: &MemorySink, n: usize) -> Vec<AuditEvent> {
    wait_until(&format!("{n} events are stored"), || sink.len() >= n).await;
    sink.events().into_iter().map(|c| c.event).collect()
}

/// A body the test feeds frame by frame.
pub struct Fed {
    frames: mpsc::UnboundedReceiver<Result<Bytes, std::io::Error>>,
}

/// Feeds a [`Fed`] body.
pub type Feeder = mpsc::UnboundedSender<Result<Bytes, std::io::Error>>;

/// A fed body, boxed, and what feeds it (dropping the feeder ends it).
pub fn fed() -> (Feeder, AirlockBody) {
    let (feeder, frames) = mpsc::unbounded_channel();
    (feeder, boxed(Fed { frames }))
}

impl Body for Fed {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.frames
            .poll_recv(cx)
            .map(|frame| frame.map(|frame| frame.map(Frame::data)))
    }
}
