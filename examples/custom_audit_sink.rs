//! Write your own `AuditSink`: here, JSON lines on standard output (what a
//! log shipper or SIEM agent would tail), behind the same `Recorder` the
//! gateway uses, in front of a stand-in service.
//!
//! ```text
//! cargo run -p airlock-examples --example custom_audit_sink
//! ```
//!
//! A sink receives the events in chain order, from one writer task, in
//! batches; it stores each batch whole or fails it. `head()` lets the chain
//! continue after a restart; a sink that keeps nothing returns `None`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use airlock_core::{AirlockBody, BoxFuture, full};
use airlock_recorder::{AuditSink, ChainHead, ChainedEvent, Recorder, RecorderConfig, SinkError};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use tower::{ServiceBuilder, ServiceExt, service_fn};

/// Prints every event as one JSON line, and counts them.
#[derive(Default)]
struct JsonLines {
    written: AtomicUsize,
}

impl AuditSink for JsonLines {
    fn append<'a>(&'a self, events: &'a [ChainedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        let result = events.iter().try_for_each(|event| {
            let line = serde_json::to_string(event).map_err(|e| SinkError(e.to_string()))?;
            println!("{line}");
            self.written.fetch_add(1, Ordering::Relaxed);
            Ok(())
        });
        Box::pin(std::future::ready(result))
    }

    fn head(&self) -> BoxFuture<'_, Result<Option<ChainHead>, SinkError>> {
        Box::pin(std::future::ready(Ok(None)))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let sink = Arc::new(JsonLines::default());
    let recorder = Recorder::start(sink.clone(), RecorderConfig::default()).await?;
    let service = ServiceBuilder::new()
        .layer(recorder.layer())
        .service(service_fn(|request: Request<_>| async move {
            let status = if request.uri().path().starts_with("/subscriptions") {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            };
            let mut response = Response::new(full(r#"{"value":[]}"#));
            *response.status_mut() = status;
            Ok::<Response<AirlockBody>, Infallible>(response)
        }));

    for path in ["/subscriptions?api-version=2022-12-01", "/nowhere"] {
        let request = Request::get(path)
            .header("x-airlock-session", "example")
            .body(full(""))?;
        let response = service.clone().oneshot(request).await?;
        // Reading the body to its end is what lets the event be written.
        let status = response.status();
        response
            .into_body()
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        eprintln!("GET {path} -> {status}");
    }
    let stats = recorder.shutdown().await;
    let written = sink.written.load(Ordering::Relaxed);
    eprintln!(
        "recorded {} events, the sink wrote {written}",
        stats.recorded
    );
    anyhow::ensure!(written == 2 && stats.recorded == 2, "expected two events");
    Ok(())
}
