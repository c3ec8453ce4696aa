//! The gateway on one CPU runs tokio's current-thread scheduler
//! (`airlock_gateway::runtime`): it serves agents concurrently, records
//! every request, and on SIGTERM drains, stores what it holds and exits
//! cleanly, as the multi-thread runtime every other test runs does.

use std::time::{Duration, Instant};

use airlock_core::REQUEST_ID_HEADER;
use airlock_demo::AgentClient;
use airlock_sim::TokenSpec;
use http::StatusCode;

use crate::support::{ALLOW_ALL, Launch, Stack, assert_each_recorded_once};

const UPSTREAM_TOKEN: &str = "one-cpu-upstream-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_to_one_cpu_the_gateway_serves_records_and_stops_on_sigterm() {
    let mut stack = Stack::launch(UPSTREAM_TOKEN, ALLOW_ALL, |config| config, Launch::OneCpu).await;
    let log_path = stack.file("airlock.log");
    let log_text = || std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        log_text().contains("scheduler=CurrentThread"),
        "not the current-thread runtime:\n{}",
        log_text()
    );

    // Eight agents at once, 25 requests each.
    let agent = AgentClient::new(&stack.url, None)
        .unwrap()
        .with_token(stack.issuer.mint(&TokenSpec::agent()));
    let path = format!(
        "/subscriptions/{}/resourcegroups?api-version=2021-04-01",
        airlock_sim::SUBSCRIPTION_ID
    );
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (agent, path) = (agent.clone(), path.clone());
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for _ in 0..25 {
                    let answer = agent.get(&path).await.unwrap();
                    assert_eq!(answer.status, StatusCode::OK);
                    ids.push(answer.header(REQUEST_ID_HEADER).unwrap().to_owned());
                }
                ids
            })
        })
        .collect();
    let mut completed = Vec::new();
    for worker in workers {
        completed.extend(worker.await.unwrap());
    }
    assert_eq!(completed.len(), 200);

    // SIGTERM: the gateway drains, the recorder stores what it holds, exit 0.
    let pid = stack.gateway.0.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = stack.gateway.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running:\n{}", log_text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status}:\n{}", log_text());
    assert!(
        log_text().contains("audit recorder stopped"),
        "{}",
        log_text()
    );

    assert_each_recorded_once(&stack.file("airlock.db"), &completed).await;
    stack.shutdown().await;
}
