//! What the gateway refuses, and how: ARM-shaped errors with a request id,
//! and nothing reaching Azure.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use airlock_tests::{Harness, Options, assert_airlock_error, raw, rg_path};
use bytes::Bytes;
use http::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const API: &str = "api-version=2023-05-01";

#[tokio::test]
async fn hosts_outside_the_allowlist_are_refused() {
    let h = Harness::start().await;
    let port = h.gateway.local_addr().port();
    let unknown_vault = h
        .agent
        .get(&format!(
            "http://other-vault.localhost:{port}/secrets/x?api-version=7.4"
        ))
        .await
        .unwrap();
    let json = assert_airlock_error(
        &unknown_vault,
        StatusCode::FORBIDDEN,
        "AirlockHostNotAllowed",
    );
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("other-vault.localhost")
    );

    // An absolute-form proxy request for another host: no open proxy.
    let answer = raw(
        &h,
        &format!("GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n", h.agent_token),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("AirlockHostNotAllowed"));
    // A foreign Host header.
    let answer = raw(&h, &format!("GET /subscriptions?api-version=1 HTTP/1.1\r\nHost: metadata.internal\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n", h.agent_token)).await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    // The review's finding: an absolute-form request to the vault with a
    // Host naming something else was served, and recorded with that Host.
    // One authority per request: the two must agree.
    let port = h.gateway.local_addr().port();
    let answer = raw(
        &h,
        &format!(
            "GET http://{}.localhost:{port}/secrets/{}?api-version=7.4 HTTP/1.1\r\nHost: audit-says-this-is-arm.example\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            airlock_sim::VAULT,
            airlock_sim::SECRET_NAME,
            h.agent_token
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("InvalidHost"), "{answer}");
    assert!(answer.contains("send one host"), "{answer}");
    assert!(h.sim.requests().is_empty(), "nothing may reach Azure");
    h.shutdown().await;
}

#[tokio::test]
async fn upstream_down_is_a_502() {
    // Bind and drop a listener: nothing answers on that port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let h = Harness::start_with(Options {
        arm_url: Some(format!("http://{closed}")),
        ..Options::default()
    })
    .await;
    let response = h.agent.get(&format!("{}?{API}", rg_path())).await.unwrap();
    let json = assert_airlock_error(
        &response,
        StatusCode::BAD_GATEWAY,
        "AirlockUpstreamUnavailable",
    );
    assert_eq!(json["error"]["airlock"]["retryable"], true);
    h.shutdown().await;
}

#[tokio::test]
async fn upstream_slow_is_a_504() {
    let h = Harness::start_with(Options {
        upstream_toml: "read_timeout = \"200ms\"".into(),
        ..Options::default()
    })
    .await;
    h.sim.set_response_delay(Duration::from_secs(5));
    let response = h.agent.get(&format!("{}?{API}", rg_path())).await.unwrap();
    let json = assert_airlock_error(
        &response,
        StatusCode::GATEWAY_TIMEOUT,
        "AirlockUpstreamTimeout",
    );
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("check its state before retrying")
    );
    h.sim.set_response_delay(Duration::ZERO);
    h.shutdown().await;
}

#[tokio::test]
async fn whole_request_timeout_is_an_arm_shaped_504() {
    let h = Harness::start_with(Options {
        extra_toml: "[limits]\nrequest_timeout = \"200ms\"\n".into(),
        ..Options::default()
    })
    .await;
    h.sim.set_response_delay(Duration::from_secs(5));
    let response = h.agent.get(&format!("{}?{API}", rg_path())).await.unwrap();
    assert_airlock_error(
        &response,
        StatusCode::GATEWAY_TIMEOUT,
        "AirlockUpstreamTimeout",
    );
    h.sim.set_response_delay(Duration::ZERO);
    h.shutdown().await;
}

#[tokio::test]
async fn oversized_bodies_are_a_413_whether_declared_or_streamed() {
    let h = Harness::start_with(Options {
        extra_toml: "[limits]\nmax_request_body_bytes = 1024\n".into(),
        ..Options::default()
    })
    .await;
    let big = Bytes::from(vec![b'x'; 4096]);
    let declared = h
        .agent
        .send(
            Method::PUT,
            &format!("{}?api-version=2021-04-01", rg_path()),
            &[],
            Some(big),
        )
        .await
        .unwrap();
    let json = assert_airlock_error(
        &declared,
        StatusCode::PAYLOAD_TOO_LARGE,
        "AirlockRequestTooLarge",
    );
    assert!(json["error"]["message"].as_str().unwrap().contains("1024"));

    // Chunked, no Content-Length: cut at the limit while reading.
    let chunk = "x".repeat(800);
    let request = format!(
        "PUT {}?api-version=2021-04-01 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{len:x}\r\n{chunk}\r\n{len:x}\r\n{chunk}\r\n0\r\n\r\n",
        rg_path(),
        h.agent_token,
        len = chunk.len()
    );
    let answer = raw(&h, &request).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("AirlockRequestTooLarge"));
    assert!(h.sim.requests().is_empty());

    // The review's finding: the 413 was recorded with no principal (the
    // size check ran before identity). Both refusals name the sender.
    let refused: Vec<_> = h
        .audit_trail()
        .await
        .into_iter()
        .filter(|e| e.event.status == 413)
        .collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    for chained in &refused {
        let principal = chained.event.principal.as_ref();
        assert_eq!(
            principal.map(|p| p.id.as_str()),
            Some("00000000-0000-0000-0000-0000000000a1"),
            "{:?}",
            chained.event
        );
    }
    h.shutdown().await;
}

#[tokio::test]
async fn slow_request_bodies_are_a_408() {
    let h = Harness::start_with(Options {
        extra_toml: "[limits]\nrequest_body_timeout = \"200ms\"\n".into(),
        ..Options::default()
    })
    .await;
    let mut stream = tokio::net::TcpStream::connect(h.gateway.local_addr())
        .await
        .unwrap();
    let head = format!(
        "PUT {}?api-version=2021-04-01 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{{",
        rg_path(),
        h.agent_token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // Never send the rest of the body.
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("AirlockRequestTimeout"));
    assert!(h.sim.requests().is_empty());
    h.shutdown().await;
}

#[tokio::test]
async fn azure_rejecting_the_gateway_credential_is_a_502_not_a_401() {
    // The simulator expects another token than the gateway has.
    let sim = airlock_sim::SimAzure::builder()
        .expected_token("the-right-token")
        .start()
        .await
        .unwrap();
    let h = Harness::start_with(Options {
        arm_url: Some(sim.arm_url()),
        ..Options::default()
    })
    .await;
    let response = h.agent.get(&format!("{}?{API}", rg_path())).await.unwrap();
    assert_airlock_error(
        &response,
        StatusCode::BAD_GATEWAY,
        "AirlockUpstreamCredentialFailed",
    );
    assert!(
        response.header("www-authenticate").is_none(),
        "Azure's challenge must not reach the agent"
    );
    h.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests() {
    let h = Harness::start().await;
    h.sim.set_response_delay(Duration::from_millis(500));
    let agent = h.agent.clone();
    let in_flight = tokio::spawn(async move { agent.get(&format!("{}?{API}", rg_path())).await });
    // Shut down once the request has reached Azure.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while h.sim.requests().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "request never reached the simulator"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let url = h.gateway.url().to_owned();
    h.gateway.shutdown().await;
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(
        response.status,
        StatusCode::OK,
        "the in-flight request must complete"
    );
    // The listener is gone.
    let after = airlock_demo::AgentClient::new(&url, None)
        .unwrap()
        .get("/healthz")
        .await;
    assert!(after.is_err());
    h.sim.shutdown().await;
}

#[tokio::test]
async fn health_endpoints_answer_without_reaching_azure() {
    let h = Harness::start().await;
    assert_eq!(
        h.agent.get("/healthz").await.unwrap().status,
        StatusCode::OK
    );
    assert_eq!(h.agent.get("/readyz").await.unwrap().status, StatusCode::OK);
    assert!(h.sim.requests().is_empty());
    h.shutdown().await;
}
