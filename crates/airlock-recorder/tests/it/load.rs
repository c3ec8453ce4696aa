//! Many concurrent requests: exactly one event each, one unbroken chain.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::Arc;

use airlock_core::{Principal, PrincipalKind, full};
use airlock_recorder::{RecorderConfig, RecorderStats, chain};
use http::{Request, Response};
use tokio::sync::Semaphore;

use crate::support::*;

const REQUESTS: usize = 2_000;
const CONCURRENCY: usize = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_concurrent_requests_leave_two_thousand_chained_events() {
    let (sink, recorder) = start(RecorderConfig::default()).await;
    let gateway = gateway(&recorder, |request: InnerRequest| async move {
        let agent = request.headers()["x-agent"].to_str().unwrap().to_owned();
        draft(&request).update(|r| {
            r.principal = Some(Principal::builder(agent, PrincipalKind::Application).build());
            r.upstream_status = Some(200);
        });
        Ok(Response::new(full(r#"{"value":[]}"#)))
    });
    let limit = Arc::new(Semaphore::new(CONCURRENCY));
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..REQUESTS {
        let permit = Arc::clone(&limit).acquire_owned().await.unwrap();
        let request = Request::get(format!("/subscriptions/s/resourceGroups/rg{i}"))
            .header("x-airlock-request-id", format!("req-{i}"))
            .header("x-agent", format!("agent-{}", i % 7))
            .body(full(""))
            .unwrap();
        let sent = send(&gateway, request);
        requests.spawn(async move {
            let (status, body) = sent.await;
            drop(permit);
            assert_eq!(status, 200);
            assert_eq!(body.unwrap(), r#"{"value":[]}"#);
        });
    }
    while let Some(done) = requests.join_next().await {
        done.unwrap();
    }
    // Fail-closed: every client has its whole response, so every event is stored.
    let events = sink.events();
    assert_eq!(events.len(), REQUESTS);
    let ids: HashSet<_> = events
        .iter()
        .map(|e| e.event.request_id.clone().unwrap())
        .collect();
    assert_eq!(ids.len(), REQUESTS, "one event per request");
    let head = chain::verify(&Default::default(), &events).unwrap();
    assert_eq!(head.seq, REQUESTS as u64);
    // Seven agents, seven sessions.
    let sessions: HashSet<_> = events.iter().map(|e| e.event.session_id.clone()).collect();
    assert_eq!(sessions.len(), 7);
    let stats = recorder.shutdown().await;
    assert_eq!(
        stats,
        RecorderStats {
            recorded: REQUESTS as u64,
            dropped: 0,
            failed_batches: 0,
            ..stats
        }
    );
    assert!(
        (1..=REQUESTS as u64).contains(&stats.batches),
        "{} batches for {REQUESTS} events",
        stats.batches
    );
}
