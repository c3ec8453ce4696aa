//! The recorder's crash guarantee, on a real process: with
//! `audit.fail_closed = true` (the default), a client that received a
//! complete response can rely on its event being in the SQLite file, even if
//! the gateway is killed (SIGKILL, no shutdown, no flush) a moment later.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use airlock_core::REQUEST_ID_HEADER;
use airlock_demo::AgentClient;
use airlock_sim::TokenSpec;
use http::StatusCode;

const UPSTREAM_TOKEN: &str = "crash-test-upstream-token";

use crate::support::{ALLOW_ALL, Stack, assert_each_recorded_once};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_completed_response_survives_a_sigkill_of_the_gateway() {
    let mut stack = Stack::start(UPSTREAM_TOKEN, ALLOW_ALL, |config| config).await;
    let (url, issuer) = (stack.url.clone(), &stack.issuer);
    let log_text = || std::fs::read_to_string(stack.file("airlock.log")).unwrap_or_default();

    // Eight agents keep sending; each response read to its end is noted.
    let agent = AgentClient::new(&url, None)
        .unwrap()
        .with_token(issuer.mint(&TokenSpec::agent()));
    let path = format!(
        "/subscriptions/{}/resourcegroups?api-version=2021-04-01",
        airlock_sim::SUBSCRIPTION_ID
    );
    let completed: Arc<Mutex<Vec<String>>> = Arc::default();
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (agent, path, completed) = (agent.clone(), path.clone(), completed.clone());
            tokio::spawn(async move {
                // Ends with the first request the killed gateway fails.
                while let Ok(answer) = agent.get(&path).await {
                    assert_eq!(answer.status, StatusCode::OK);
                    let id = answer.header(REQUEST_ID_HEADER).unwrap().to_owned();
                    completed.lock().unwrap().push(id);
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while completed.lock().unwrap().len() < 300 {
        assert!(Instant::now() < deadline, "too slow:\n{}", log_text());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // SIGKILL, mid-load: no drain, no flush, the WAL left as it is.
    stack.kill_gateway();
    for worker in workers {
        worker.await.unwrap();
    }
    let completed = completed.lock().unwrap().clone();

    assert_each_recorded_once(&stack.file("airlock.db"), &completed).await;
    stack.shutdown().await;
}
