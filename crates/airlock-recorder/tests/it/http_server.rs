//! Over a real HTTP/1.1 connection (hyper, TCP): however the response ends
//! (at its `Content-Length`, or with the last chunk), a client that has read
//! it all finds its event stored, even when the sink is slow.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use airlock_core::{BoxFuture, boxed, full};
use airlock_recorder::{Outcome, RecorderConfig};
use bytes::Bytes;
use http::Response;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

use crate::support::*;

/// Serves `gateway` on a local port.
async fn serve(gateway: Gateway) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let gateway = gateway.clone();
            let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
                let responded: BoxFuture<'static, _> =
                    Box::pin(gateway.clone().oneshot(request.map(boxed)));
                async move { responded.await.map(|response| response.map(boxed)) }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    address
}

/// Sends a GET on `connection` and reads exactly its response; returns the body.
async fn get_over(connection: &mut TcpStream, path: &str) -> Vec<u8> {
    let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n");
    connection.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let read = connection.read(&mut buffer).await.unwrap();
        assert!(read > 0, "the server closed the connection");
        received.extend_from_slice(&buffer[..read]);
        let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&received[..end]).to_ascii_lowercase();
        let body = &received[end + 4..];
        if let Some(length) = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length: "))
        {
            if body.len() >= length.trim().parse::<usize>().unwrap() {
                return body.to_vec();
            }
        } else if head.contains("transfer-encoding: chunked") && body.ends_with(b"0\r\n\r\n") {
            return body.to_vec();
        }
    }
}

#[tokio::test]
async fn over_http1_a_complete_response_means_a_stored_event() {
    let (sink, recorder) = start(RecorderConfig::default()).await;
    sink.set_delay(Duration::from_millis(200));
    let gateway = gateway(&recorder, |request: InnerRequest| async move {
        let (feeder, body) = fed();
        feeder.send(Ok(Bytes::from_static(b"first,"))).unwrap();
        feeder.send(Ok(Bytes::from_static(b"second"))).unwrap();
        drop(feeder);
        let response = match request.uri().path() {
            "/full" => Response::new(full("first,second")),
            // hyper ends this message once 12 bytes are written, without
            // asking the body for its end.
            "/length" => Response::builder()
                .header("content-length", "12")
                .body(body)
                .unwrap(),
            _ => Response::new(body),
        };
        Ok(response)
    });
    let address = serve(gateway).await;
    let mut connection = TcpStream::connect(address).await.unwrap();
    for (i, path) in ["/full", "/length", "/chunked"].into_iter().enumerate() {
        let body = get_over(&mut connection, path).await;
        assert!(String::from_utf8_lossy(&body).contains("second"), "{path}");
        let events = sink.events();
        assert_eq!(
            events.len(),
            i + 1,
            "{path}: stored before the client had it all"
        );
        assert_eq!(events[i].event.path, path);
        assert_eq!(events[i].event.outcome, Outcome::Completed);
        assert_eq!(events[i].event.bytes_out, 12);
    }
}
