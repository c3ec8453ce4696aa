//! What a client can rely on: fail-closed, a complete response means a
//! stored event, and a failing sink stops service until it recovers;
//! fail-open, service never waits for the sink.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use airlock_core::full;
use airlock_recorder::{Outcome, Recorder, RecorderConfig, RecorderError, RecorderStats, chain};
use bytes::Bytes;
use http::Response;
use http_body::Body as _;
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::support::*;

fn fail_open() -> RecorderConfig {
    RecorderConfig {
        fail_closed: false,
        ..RecorderConfig::default()
    }
}

/// An inner service that counts its calls and answers "served", streamed.
fn counting(calls: &Arc<AtomicUsize>) -> impl Fn(InnerRequest) -> Ready + Clone + Send + 'static {
    let calls = Arc::clone(calls);
    let served = streamed("served");
    move |request| {
        calls.fetch_add(1, Ordering::SeqCst);
        served(request)
    }
}

/// Reads a `503 AirlockAuditUnavailable` and returns its message.
async fn audit_unavailable(gateway: &Gateway) -> String {
    let response = gateway.clone().oneshot(get("/refused")).await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.headers()["x-ms-error-code"],
        "AirlockAuditUnavailable"
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "AirlockAuditUnavailable");
    assert_eq!(body["error"]["airlock"]["retryable"], true);
    body["error"]["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_client_that_read_the_whole_body_finds_its_event_stored() {
    let (sink, recorder) = start(RecorderConfig::default()).await;
    // A slow sink: without the hold-back the client would finish first.
    sink.set_delay(Duration::from_millis(100));
    let gateway = gateway(&recorder, |request: InnerRequest| async move {
        let response = match request.uri().path() {
            // One frame, known length.
            "/full" => Response::new(full("one frame")),
            // Known length, several frames: ends when the length is reached.
            "/declared" => {
                let (feeder, body) = fed();
                feeder.send(Ok(Bytes::from_static(b"abc"))).unwrap();
                feeder.send(Ok(Bytes::from_static(b"def"))).unwrap();
                drop(feeder);
                Response::builder()
                    .header("content-length", "6")
                    .body(body)
                    .unwrap()
            }
            // Unknown length: ends with the end of the body.
            _ => {
                let (feeder, body) = fed();
                feeder.send(Ok(Bytes::from_static(b"chunk-1"))).unwrap();
                feeder.send(Ok(Bytes::from_static(b"chunk-2"))).unwrap();
                drop(feeder);
                Response::new(body)
            }
        };
        Ok(response)
    });
    for (i, path) in ["/full", "/declared", "/chunked"].into_iter().enumerate() {
        let (status, body) = send(&gateway, get(path)).await;
        assert_eq!(status, 200);
        assert!(body.is_ok());
        // No waiting: stored before the client saw the end.
        let events = sink.events();
        assert_eq!(events.len(), i + 1, "{path}");
        assert_eq!(events[i].event.path, path);
        assert_eq!(events[i].event.outcome, Outcome::Completed);
    }
}

#[tokio::test]
async fn fail_closed_a_failing_sink_breaks_the_response_then_refuses_until_it_recovers() {
    let (sink, recorder) = start(RecorderConfig::default()).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let gateway = gateway(&recorder, counting(&calls));

    sink.set_failing(true);
    let (status, body) = send(&gateway, get("/first")).await;
    assert_eq!(status, 200);
    let error = body.unwrap_err();
    assert_eq!(
        error.to_string(),
        "the audit sink is failing to store events"
    );
    assert_eq!(recorder.health(), Err(RecorderError::SinkFailing));
    // What a readiness probe reports: fail-closed, this replica refuses.
    let monitor = recorder.monitor();
    assert!(monitor.fail_closed());
    assert_eq!(monitor.admits(), Err(RecorderError::SinkFailing));

    let message = audit_unavailable(&gateway).await;
    assert_eq!(
        message,
        "Airlock cannot record requests right now (the audit sink is failing to store events), so it refuses them rather than act unaudited; retry later. The Airlock operator must fix the audit sink"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "a refused request is not served"
    );

    sink.set_failing(false);
    wait_until("the recorder is healthy again", || {
        recorder.health().is_ok()
    })
    .await;
    let (status, body) = send(&gateway, get("/after")).await;
    assert_eq!(status, 200);
    assert_eq!(body.unwrap(), "served");

    // Only the request served after recovery is stored; the refusal is not
    // recorded and the failed event is lost, without a hole in the chain.
    let events = sink.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event.path, "/after");
    assert!(chain::verify(&Default::default(), &events).is_ok());
    let stats = recorder.shutdown().await;
    assert_eq!(stats.recorded, 1);
    assert_eq!(stats.dropped, 1);
    assert!(stats.failed_batches >= 1);
}

#[tokio::test]
async fn fail_open_a_failing_sink_never_stops_service_and_drops_are_counted() {
    let (sink, recorder) = start(fail_open()).await;
    let gateway = gateway(&recorder, ok("served"));
    sink.set_failing(true);
    for _ in 0..5 {
        let (status, body) = send(&gateway, get("/x")).await;
        assert_eq!(status, 200);
        assert_eq!(body.unwrap(), "served");
    }
    wait_until("5 events are dropped", || recorder.stats().dropped == 5).await;
    assert_eq!(recorder.stats().recorded, 0);
    // Unhealthy, yet still serving: a readiness probe keeps it in rotation.
    let monitor = recorder.monitor();
    assert!(!monitor.fail_closed());
    assert_eq!(monitor.health(), Err(RecorderError::SinkFailing));
    assert_eq!(monitor.admits(), Ok(()));
    assert_eq!(monitor.stats(), recorder.stats());
    assert!(sink.is_empty());

    sink.set_failing(false);
    let served = send(&gateway, get("/y")).await;
    assert_eq!(served.0, 200);
    wait_until("the next event is stored", || sink.len() == 1).await;
    let stats = recorder.shutdown().await;
    assert_eq!(
        stats,
        RecorderStats {
            recorded: 1,
            dropped: 5,
            ..stats
        }
    );
}

#[tokio::test]
async fn fail_open_a_slow_sink_never_holds_a_response() {
    let (sink, recorder) = start(fail_open()).await;
    // Slower than the test's deadline: a response waiting for it would fail the test.
    sink.set_delay(Duration::from_secs(60));
    let gateway = gateway(&recorder, ok("served"));
    let responses = async {
        for _ in 0..3 {
            let (status, body) = send(&gateway, get("/x")).await;
            assert_eq!(status, 200);
            assert_eq!(body.unwrap(), "served");
        }
    };
    tokio::time::timeout(DEADLINE, responses)
        .await
        .expect("responses do not wait for the sink");
    assert!(sink.is_empty());
}

#[tokio::test]
async fn fail_closed_a_full_queue_refuses_new_requests_and_serves_admitted_ones() {
    // One event per batch: otherwise the writer would gather the queued
    // events into its batch as fast as they are admitted.
    let config = RecorderConfig {
        queue_capacity: 1,
        max_batch: 1,
        ..RecorderConfig::default()
    };
    let (sink, recorder) = start(config).await;
    sink.set_delay(Duration::from_millis(300));
    let calls = Arc::new(AtomicUsize::new(0));
    let (release, released) = tokio::sync::watch::channel(false);
    let in_service = Arc::clone(&calls);
    let gateway = gateway(&recorder, move |_request: InnerRequest| {
        in_service.fetch_add(1, Ordering::SeqCst);
        let mut released = released.clone();
        async move {
            released.wait_for(|go| *go).await?;
            Ok(Response::new(full("served")))
        }
    });

    // Four requests admitted while the queue is empty, then all finishing
    // at once: one event is being written, one fills the queue, two wait.
    let admitted: Vec<_> = (0..4)
        .map(|i| tokio::spawn(send(&gateway, get(&format!("/admitted/{i}")))))
        .collect();
    wait_until("4 requests are admitted", || {
        calls.load(Ordering::SeqCst) == 4
    })
    .await;
    release.send(true).unwrap();
    wait_until("the queue is full", || {
        recorder.health() == Err(RecorderError::QueueFull)
    })
    .await;
    let message = audit_unavailable(&gateway).await;
    assert!(message.contains("the audit queue is full"), "{message}");
    let monitor = recorder.monitor();
    assert_eq!((monitor.queued(), monitor.capacity()), (1, 1));
    assert_eq!(monitor.admits(), Err(RecorderError::QueueFull));

    for request in admitted {
        let (status, body) = request.await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(body.unwrap(), "served");
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        4,
        "the refused request was not served"
    );
    wait_until("the queue has room", || recorder.health().is_ok()).await;
    assert_eq!(monitor.queued(), 0);
    let (status, _) = send(&gateway, get("/later")).await;
    assert_eq!(status, 200);
    let stats = recorder.shutdown().await;
    assert_eq!(
        stats,
        RecorderStats {
            recorded: 5,
            dropped: 0,
            failed_batches: 0,
            ..stats
        }
    );
    assert!(chain::verify(&Default::default(), &sink.events()).is_ok());
}

#[tokio::test]
async fn fail_open_a_full_queue_drops_events_and_counts_them() {
    let config = RecorderConfig {
        queue_capacity: 1,
        ..fail_open()
    };
    let (sink, recorder) = start(config).await;
    sink.set_delay(Duration::from_millis(300));
    let gateway = gateway(&recorder, ok("served"));
    let requests: Vec<_> = (0..10)
        .map(|i| tokio::spawn(send(&gateway, get(&format!("/{i}")))))
        .collect();
    for request in requests {
        let (status, body) = request.await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(body.unwrap(), "served");
    }
    let stats = recorder.shutdown().await;
    assert_eq!(stats.recorded + stats.dropped, 10, "{stats:?}");
    assert!(stats.dropped >= 1, "{stats:?}");
    assert_eq!(sink.len() as u64, stats.recorded);
}

#[tokio::test]
async fn shutdown_stores_everything_queued_and_then_refuses() {
    // Fail-open, so responses finish while their events are still queued.
    let (sink, recorder) = start(fail_open()).await;
    // Each batch takes longer than serving all the requests.
    sink.set_delay(Duration::from_millis(500));
    let gateway = gateway(&recorder, ok("served"));
    for i in 0..100 {
        let (status, _) = send(&gateway, get(&format!("/{i}"))).await;
        assert_eq!(status, 200);
    }
    assert!(sink.len() < 100, "some events are still queued");
    let stats = recorder.shutdown().await;
    assert_eq!(
        stats,
        RecorderStats {
            recorded: 100,
            dropped: 0,
            failed_batches: 0,
            ..stats
        }
    );
    let events = sink.events();
    assert_eq!(events.len(), 100);
    assert!(chain::verify(&Default::default(), &events).is_ok());
    // Calling it again only reports.
    assert_eq!(recorder.shutdown().await, stats);
    assert_eq!(recorder.health(), Err(RecorderError::ShutDown));

    // Fail-closed, a shut-down recorder refuses.
    let (_sink, closed) = start(RecorderConfig::default()).await;
    let refusing = crate::support::gateway(&closed, ok("served"));
    closed.shutdown().await;
    let message = audit_unavailable(&refusing).await;
    assert!(
        message.contains("the audit recorder has shut down"),
        "{message}"
    );
}

#[tokio::test]
async fn a_restarted_recorder_continues_the_chain() {
    let (sink, first) = start(RecorderConfig::default()).await;
    let gateway = gateway(&first, ok("served"));
    for _ in 0..3 {
        let _ = send(&gateway, get("/before")).await;
    }
    first.shutdown().await;
    drop(gateway);

    let second = Recorder::start(sink.clone(), RecorderConfig::default())
        .await
        .unwrap();
    let gateway = crate::support::gateway(&second, ok("served"));
    for _ in 0..2 {
        let _ = send(&gateway, get("/after")).await;
    }
    second.shutdown().await;
    let events = sink.events();
    assert_eq!(events.len(), 5);
    let head = chain::verify(&Default::default(), &events).unwrap();
    assert_eq!(head.seq, 5);
}

#[tokio::test]
async fn a_recorder_cannot_start_on_a_sink_that_cannot_say_where_its_chain_ends() {
    let sink = Arc::new(airlock_recorder::MemorySink::new());
    sink.set_failing(true);
    let error = Recorder::start(sink, RecorderConfig::default())
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "audit sink failed: the memory sink was told to fail"
    );
}

#[tokio::test]
async fn a_buffered_answer_is_stored_before_its_head_leaves() {
    let (sink, recorder) = start(RecorderConfig::default()).await;
    sink.set_delay(Duration::from_millis(50));
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let gateway = gateway(&recorder, move |_| {
        counted.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok::<_, airlock_core::BoxError>(Response::new(full(
            "whole",
        ))))
    });
    // The head arrives only once the event is stored: the sink holds it
    // before the body has been read at all.
    let response = gateway.clone().oneshot(get("/whole")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(sink.len(), 1);
    let event = &sink.events()[0].event;
    assert_eq!((event.outcome, event.bytes_out), (Outcome::Completed, 5));
    // Still in memory, whole: hyper writes head and body at once.
    assert_eq!(response.body().size_hint().exact(), Some(5));
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "whole"
    );

    // A failing sink: the client gets a clean 503, never a broken 200.
    sink.set_failing(true);
    let response = gateway.clone().oneshot(get("/lost")).await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.headers()["x-ms-error-code"],
        "AirlockAuditUnavailable"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let stats = recorder.shutdown().await;
    assert_eq!((stats.recorded, stats.dropped), (1, 1));
}

#[tokio::test]
async fn a_panicking_sink_counts_as_a_failing_one() {
    struct Panicking;
    impl airlock_recorder::AuditSink for Panicking {
        fn append<'a>(
            &'a self,
            _events: &'a [airlock_recorder::ChainedEvent],
        ) -> airlock_core::BoxFuture<'a, Result<(), airlock_recorder::SinkError>> {
            Box::pin(async { panic!("sink bug") })
        }
        fn head(
            &self,
        ) -> airlock_core::BoxFuture<
            '_,
            Result<Option<airlock_recorder::ChainHead>, airlock_recorder::SinkError>,
        > {
            Box::pin(async { Ok(None) })
        }
    }
    let recorder = Recorder::start(Arc::new(Panicking), RecorderConfig::default())
        .await
        .unwrap();
    let gateway = gateway(&recorder, streamed("served"));
    let (_, body) = send(&gateway, get("/x")).await;
    assert!(body.is_err());
    let stats = recorder.shutdown().await;
    assert_eq!(stats.failed_batches, 1);
    assert_eq!(stats.dropped, 1);
}

#[tokio::test]
async fn a_client_gone_while_the_end_is_held_back_still_has_its_event_stored() {
    let (sink, recorder) = start(RecorderConfig::default()).await;
    sink.set_delay(Duration::from_millis(200));
    let gateway = gateway(&recorder, streamed("held"));
    let response = gateway.clone().oneshot(get("/held")).await.unwrap();
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert_eq!(first.into_data().unwrap(), "held");
    // Ask for the end once: the layer starts storing the event and holds
    // the end back.
    tokio::select! {
        biased;
        _ = body.frame() => panic!("the end is held back until the event is stored"),
        () = std::future::ready(()) => {}
    }
    drop(body);
    let events = events(&sink, 1).await;
    assert_eq!(events[0].path, "/held");
    assert_eq!(events[0].outcome, Outcome::Completed);
    let stats = recorder.shutdown().await;
    assert_eq!(
        stats,
        RecorderStats {
            recorded: 1,
            dropped: 0,
            failed_batches: 0,
            batches: 1
        }
    );
}
