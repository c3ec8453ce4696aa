//! Slow, silent and idle clients are cut off, and no client holds more
//! connections than `[limits]` allows, while other clients are served.
//! (The review found 200 slowloris and 100 idle TLS connections all still
//! open after 70 s: hyper's head timeout never fired without a timer, and
//! there was no connection cap.)

use std::time::Duration;

use airlock_tests::{Harness, Options, raw, rg_path};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// How long a test waits for the gateway to close a connection: far past
/// the 1 s head timeout these tests configure, far below the 30 s default.
const CLOSE_DEADLINE: Duration = Duration::from_secs(10);

async fn harness(limits: &str) -> Harness {
    Harness::start_with(Options {
        extra_toml: format!("[limits]\n{limits}"),
        ..Options::default()
    })
    .await
}

/// Reads until the gateway closes the connection (EOF or reset); panics if
/// it is still open at the deadline. Returns what was read.
async fn closed_by_gateway(stream: &mut TcpStream, what: &str) -> Vec<u8> {
    let deadline = Instant::now() + CLOSE_DEADLINE;
    let mut read = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return read,
            Ok(Ok(n)) => read.extend_from_slice(&buf[..n]),
            Err(_) => panic!("{what}: still open after {CLOSE_DEADLINE:?}"),
        }
    }
}

fn list_groups(h: &Harness, connection: &str) -> String {
    format!(
        "GET {}?api-version=2021-04-01 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nConnection: {connection}\r\n\r\n",
        rg_path(),
        h.agent_token
    )
}

#[tokio::test]
async fn silent_slow_and_idle_connections_are_closed_while_others_are_served() {
    let h = harness("header_read_timeout = \"1s\"\n").await;
    let address = h.gateway.local_addr();

    // Connects and sends nothing.
    let mut silent = TcpStream::connect(address).await.unwrap();
    // Slowloris: a request head that never ends, a byte at a time.
    let mut slow = TcpStream::connect(address).await.unwrap();
    slow.write_all(b"GET /subscriptions?api-version=1 HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let dripping = tokio::spawn(async move {
        for _ in 0..100 {
            if slow.write_all(b"x").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        slow
    });
    // A complete request on a keep-alive connection, then nothing.
    let mut idle = TcpStream::connect(address).await.unwrap();
    idle.write_all(list_groups(&h, "keep-alive").as_bytes())
        .await
        .unwrap();

    // Meanwhile, a normal client is served.
    let served = raw(&h, &list_groups(&h, "close")).await;
    assert!(served.starts_with("HTTP/1.1 200"), "{served}");

    assert!(
        closed_by_gateway(&mut silent, "a silent connection")
            .await
            .is_empty()
    );
    let answered = closed_by_gateway(&mut idle, "an idle keep-alive connection").await;
    assert!(
        String::from_utf8_lossy(&answered).starts_with("HTTP/1.1 200"),
        "the idle connection's request was answered before it was closed"
    );
    let mut slow = dripping.await.unwrap();
    let answer = closed_by_gateway(&mut slow, "a slowloris connection").await;
    assert!(
        !String::from_utf8_lossy(&answer).contains("200 OK"),
        "an unfinished head was answered"
    );
    assert!(
        h.sim.requests().len() <= 2,
        "only the complete requests reached Azure"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn connections_past_the_per_client_cap_are_closed_unread() {
    let h = harness("max_connections_per_client = 3\n").await;
    let address = h.gateway.local_addr();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(address).await.unwrap());
    }
    // The fourth from the same address is closed at once (the head timeout
    // is the default 30 s: it is the cap that closes it).
    let mut fourth = TcpStream::connect(address).await.unwrap();
    let _ = fourth.write_all(list_groups(&h, "close").as_bytes()).await;
    assert!(
        closed_by_gateway(&mut fourth, "a fourth connection")
            .await
            .is_empty()
    );

    // One of the three goes away: its place is free again.
    drop(held.pop());
    let deadline = Instant::now() + CLOSE_DEADLINE;
    loop {
        let answer = raw(&h, &list_groups(&h, "close")).await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no place freed after a connection closed: {answer:?}"
        );
        tokio::task::yield_now().await;
    }
    drop(held);
    h.shutdown().await;
}

/// Sends `head` on a TLS connection opened for `server_name` (its SNI), and
/// returns the answer.
async fn over_tls(h: &Harness, server_name: &str, head: String) -> String {
    use rustls_pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        rustls_pki_types::CertificateDer::pem_slice_iter(h.ca_pem.as_deref().unwrap().as_bytes())
    {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = TcpStream::connect(h.gateway.local_addr()).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from(server_name.to_owned()).unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// One authority per request, TLS included (issue 24, finding 5): a
/// connection opened for one name (here the vault's) cannot carry requests
/// for another (ARM's).
#[tokio::test]
async fn a_request_for_another_host_than_the_connections_tls_name_is_421() {
    let h = Harness::start_with(Options {
        tls: true,
        ..Options::default()
    })
    .await;
    let port = h.gateway.local_addr().port();
    let request = |host: &str| {
        format!(
            "GET {}?api-version=2021-04-01 HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            rg_path(),
            h.agent_token
        )
    };
    let vault_host = format!("{}.localhost", airlock_sim::VAULT);
    let answer = over_tls(&h, &vault_host, request("localhost")).await;
    assert!(answer.starts_with("HTTP/1.1 421"), "{answer}");
    assert!(answer.contains("x-ms-error-code: InvalidHost"), "{answer}");
    assert!(
        answer.contains(&format!("opened for {vault_host}")),
        "{answer}"
    );
    assert!(h.sim.requests().is_empty(), "nothing reached Azure");
    // The same request on a connection for its own name is served.
    let answer = over_tls(&h, "localhost", request("localhost")).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    h.shutdown().await;
}

/// A connection that has sent nothing (a browser's preconnect) does not
/// hold up a shutdown: it is closed at once, not after the head timeout.
/// (It used to keep the approval page's tests waiting 30 s to stop.)
#[tokio::test]
async fn a_silent_connection_is_closed_when_the_gateway_stops() {
    let h = harness("header_read_timeout = \"1h\"\n").await;
    let mut agents = TcpStream::connect(h.gateway.local_addr()).await.unwrap();
    let admin = h
        .gateway
        .admin_url()
        .trim_start_matches("http://")
        .replace("localhost", "127.0.0.1");
    let mut approvers = TcpStream::connect(admin).await.unwrap();
    // Both are accepted and waiting for a first byte.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopping = tokio::spawn(h.shutdown());
    closed_by_gateway(&mut agents, "the agents' silent connection").await;
    closed_by_gateway(&mut approvers, "the approvers' silent connection").await;
    stopping.await.unwrap();
}
