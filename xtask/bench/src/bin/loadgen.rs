//! `loadgen`: a small closed-loop HTTP/1.1 load generator, the fallback
//! `cargo xtask bench` uses when neither `wrk` nor `oha` is installed.
//!
//! One task per connection; each opens a keep-alive HTTP/1.1 connection
//! (hyper's `client::conn::http1`) and sends `GET URL` on it back to back
//! until the duration is over, reconnecting if the connection breaks. Every
//! completed request's latency (send to end of body) is recorded. At the end
//! it prints one JSON line:
//!
//! ```text
//! {"requests":N,"errors":N,"duration_s":f,"rps":f,"p50_ms":f,"p99_ms":f}
//! ```
//!
//! `requests` counts completed responses (whatever their status); `errors`
//! counts non-2xx responses plus connection and protocol failures. A request
//! still in flight when the duration ends is abandoned and counted as neither.

use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use clap::Parser;
use http::header::{HOST, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

/// Command line of the load generator.
#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    about = "Closed-loop HTTP/1.1 keep-alive load; prints one JSON line."
)]
struct Args {
    /// The URL to GET, `http://host:port/path?query`.
    #[arg(long)]
    url: Uri,
    /// Concurrent connections, one request in flight on each.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// How long to send for: `10s`, `500ms`, `1m`, or plain seconds.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// A request header, `Name: value`; repeatable.
    #[arg(long = "header", value_parser = parse_header)]
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// The request every connection sends, prepared once.
#[derive(Debug, Clone)]
struct Target {
    address: String,
    uri: Uri,
    headers: HeaderMap,
}

/// The one line printed at the end, fields in this order.
#[derive(Debug, Serialize)]
struct Report {
    requests: usize,
    errors: u64,
    duration_s: f64,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// What one connection task saw.
#[derive(Debug, Default)]
struct ConnectionTally {
    /// Latency of each completed request, in nanoseconds.
    latencies_ns: Vec<u64>,
    errors: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    let target = target_from_args(&args)?;

    let start = Instant::now();
    let deadline = start + args.duration;
    let tasks: Vec<_> = (0..args.connections)
        .map(|_| tokio::spawn(run_connection(target.clone(), deadline)))
        .collect();

    let mut latencies_ns = Vec::new();
    let mut errors = 0_u64;
    for task in tasks {
        let tally = task.await.context("a connection task panicked")?;
        latencies_ns.extend(tally.latencies_ns);
        errors += tally.errors;
    }
    let duration_s = deadline.duration_since(start).as_secs_f64();

    latencies_ns.sort_unstable();
    let requests = latencies_ns.len();
    #[allow(
        clippy::cast_precision_loss,
        reason = "request counts are far below 2^52"
    )]
    let rps = requests as f64 / duration_s;
    let report = Report {
        requests,
        errors,
        duration_s,
        rps,
        p50_ms: percentile_ms(&latencies_ns, 50.0),
        p99_ms: percentile_ms(&latencies_ns, 99.0),
    };
    let report = serde_json::to_string(&report)?;
    println!("{report}");
    Ok(())
}

fn target_from_args(args: &Args) -> anyhow::Result<Target> {
    let uri = &args.url;
    if uri.scheme_str() != Some("http") {
        bail!("--url must be an http:// URL");
    }
    let Some(authority) = uri.authority() else {
        bail!("--url must name a host, e.g. http://127.0.0.1:8080/");
    };
    let address = format!(
        "{}:{}",
        authority.host(),
        authority.port_u16().unwrap_or(80)
    );
    let mut headers = HeaderMap::new();
    headers.insert(HOST, HeaderValue::try_from(authority.as_str())?);
    for (name, value) in &args.headers {
        headers.append(name.clone(), value.clone());
    }
    let path = uri.path_and_query().map_or("/", |path| path.as_str());
    Ok(Target {
        address,
        uri: path.parse()?,
        headers,
    })
}

/// Sends requests back to back on one keep-alive connection until `deadline`.
async fn run_connection(target: Target, deadline: Instant) -> ConnectionTally {
    let mut tally = ConnectionTally::default();
    while Instant::now() < deadline {
        let Ok(connected) = timeout_at(deadline, connect(&target.address)).await else {
            break;
        };
        let Ok(mut sender) = connected else {
            tally.errors += 1;
            // Back off a little rather than spin on a refused connection.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        while Instant::now() < deadline {
            let sent = Instant::now();
            let Ok(outcome) = timeout_at(deadline, send_one(&mut sender, &target)).await else {
                break;
            };
            match outcome {
                Ok(success) => {
                    let elapsed = u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    tally.latencies_ns.push(elapsed);
                    if !success {
                        tally.errors += 1;
                    }
                }
                Err(_) => {
                    // The connection is broken: count it and reconnect.
                    tally.errors += 1;
                    break;
                }
            }
        }
    }
    tally
}

async fn connect(address: &str) -> anyhow::Result<http1::SendRequest<Empty<Bytes>>> {
    let stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // Ends when the sender is dropped or the peer closes; either way
        // the next `send_one` on this connection reports the failure.
        let _ = connection.await;
    });
    Ok(sender)
}

/// Sends one request and reads its body to the end. `Ok(true)` for a 2xx.
async fn send_one(
    sender: &mut http1::SendRequest<Empty<Bytes>>,
    target: &Target,
) -> anyhow::Result<bool> {
    sender.ready().await?;
    let mut request = Request::new(Empty::new());
    *request.method_mut() = Method::GET;
    *request.uri_mut() = target.uri.clone();
    *request.headers_mut() = target.headers.clone();
    let response = sender.send_request(request).await?;
    let success = response.status().is_success();
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        frame?;
    }
    Ok(success)
}

/// Nearest-rank percentile of sorted nanosecond samples, in milliseconds.
#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "sample counts and nanosecond latencies are far below 2^52"
)]
fn percentile_ms(sorted_ns: &[u64], percentile: f64) -> f64 {
    if sorted_ns.is_empty() {
        return 0.0;
    }
    let rank = (percentile / 100.0 * sorted_ns.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted_ns.len()) - 1;
    sorted_ns[index] as f64 / 1e6
}

/// `10s`, `500ms`, `1m` (humantime's forms; xtask passes `Nms`); zero is refused.
fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("`{text}` is not a duration like 10s, 500ms or 1m: {e}"))
        .and_then(|d| {
            if d.is_zero() {
                Err(format!("`{text}` must be a positive duration"))
            } else {
                Ok(d)
            }
        })
}

fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), String> {
    let Some((name, value)) = text.split_once(':') else {
        return Err(format!("`{text}` is not a header like `Name: value`"));
    };
    let name =
        HeaderName::try_from(name.trim()).map_err(|error| format!("header name: {error}"))?;
    let value =
        HeaderValue::try_from(value.trim()).map_err(|error| format!("header value: {error}"))?;
    Ok((name, value))
}
