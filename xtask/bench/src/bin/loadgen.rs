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
//!
//! With `--rate R` the load is open-loop instead: R requests a second in
//! all, each connection sending on its own fixed schedule (staggered across
//! connections), whether or not its previous answer came back in time. A
//! request's latency is measured from when it was *scheduled*, so a server
//! that stalls is charged for the requests that queued behind the stall
//! (no coordinated omission, as in wrk2).
//!
//! `https://` URLs are spoken over TLS trusting `--ca`; with `--proxy`, each
//! connection is a `CONNECT` tunnel through that forward proxy first (the
//! way `HTTPS_PROXY` clients reach Airlock's forward-proxy mode). With
//! `--connection-per-request`, every request opens its own connection (and
//! tunnel, and TLS session), and `{n}` in the URL's host is replaced by a
//! per-request counter: each request then goes to a host never seen before
//! (what a forward proxy must mint a certificate for).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use clap::Parser;
use http::header::{AUTHORIZATION, HOST, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::TlsConnector;

/// Command line of the load generator.
#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    about = "Closed-loop HTTP/1.1 keep-alive load; prints one JSON line."
)]
struct Args {
    /// The URL to GET, `http://host:port/path?query` or `https://…`.
    #[arg(long)]
    url: String,
    /// Concurrent connections, one request in flight on each.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// How long to send for: `10s`, `500ms`, `1m`, or plain seconds.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// A request header, `Name: value`; repeatable.
    #[arg(long = "header", value_parser = parse_header)]
    headers: Vec<(HeaderName, HeaderValue)>,
    /// The CA (PEM) `https://` URLs are verified against.
    #[arg(long)]
    ca: Option<std::path::PathBuf>,
    /// A forward proxy (`http://host:port`) every connection tunnels through
    /// with `CONNECT`.
    #[arg(long)]
    proxy: Option<Uri>,
    /// A new connection for every request, instead of keep-alive.
    #[arg(long)]
    connection_per_request: bool,
    /// A file of `Authorization` values, one per line: request `n` sends
    /// line `n` modulo their count (many identities, round robin).
    #[arg(long)]
    authorization_file: Option<std::path::PathBuf>,
    /// Open-loop: this many requests a second in all, on a fixed schedule.
    #[arg(long, conflicts_with = "connection_per_request")]
    rate: Option<f64>,
}

/// The request every connection sends, prepared once.
#[derive(Clone)]
struct Target {
    /// Where TCP connects: the origin, or the proxy.
    address: String,
    /// The origin's `host:port` (with `{n}` when hosts vary).
    authority: String,
    /// `Some` for `https://`: how TLS to the origin is verified.
    tls: Option<TlsConnector>,
    /// Tunnel with `CONNECT` first.
    proxied: bool,
    connection_per_request: bool,
    uri: Uri,
    headers: HeaderMap,
    /// `--authorization-file`'s values, taken in turn.
    authorizations: std::sync::Arc<[HeaderValue]>,
}

impl Target {
    /// The origin for request `n`: `{n}` in its host replaced.
    fn authority(&self, n: u64) -> String {
        self.authority.replace("{n}", &n.to_string())
    }
}

/// A per-request counter shared by every connection task.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Which of `--authorization-file`'s values the next request sends.
static NEXT_AUTHORIZATION: AtomicU64 = AtomicU64::new(0);

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
    let schedule = match args.rate {
        Some(rate) if rate > 0.0 && rate.is_finite() => {
            // Each connection sends every `interval`; they are staggered.
            #[allow(clippy::cast_precision_loss, reason = "connection counts are small")]
            let interval = Duration::from_secs_f64(args.connections as f64 / rate);
            Some(interval)
        }
        Some(_) => bail!("--rate must be a positive number of requests a second"),
        None => None,
    };
    let connections = args.connections;
    let tasks: Vec<_> = (0..connections)
        .map(|i| {
            let schedule = schedule.map(|interval| Schedule {
                #[allow(
                    clippy::cast_possible_truncation,
                    reason = "connection counts are small"
                )]
                next: start + interval.mul_f64(i as f64 / connections as f64),
                interval,
            });
            tokio::spawn(run_connection(target.clone(), deadline, schedule))
        })
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
    let (scheme, rest) = args
        .url
        .split_once("://")
        .ok_or_else(|| anyhow::anyhow!("--url must be an http:// or https:// URL"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, port.parse::<u16>().context("--url's port")?),
        None if scheme == "https" => (authority, 443),
        None => (authority, 80),
    };
    let tls = match scheme {
        "http" => None,
        "https" => Some(tls_connector(args.ca.as_deref())?),
        _ => bail!("--url must be an http:// or https:// URL"),
    };
    let address = match &args.proxy {
        Some(proxy) => {
            let proxy = proxy
                .authority()
                .ok_or_else(|| anyhow::anyhow!("--proxy must be http://host:port"))?;
            format!("{}:{}", proxy.host(), proxy.port_u16().unwrap_or(80))
        }
        None if host.contains("{n}") => bail!("{{n}} in the host needs --proxy"),
        None => format!("{host}:{port}"),
    };
    let mut headers = HeaderMap::new();
    for (name, value) in &args.headers {
        headers.append(name.clone(), value.clone());
    }
    let authorizations = match &args.authorization_file {
        Some(file) => std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| HeaderValue::try_from(line.trim()))
            .collect::<Result<Vec<_>, _>>()
            .context("--authorization-file holds a line that is no header value")?,
        None => Vec::new(),
    };
    let path = if path.is_empty() { "/" } else { path };
    Ok(Target {
        authorizations: authorizations.into(),
        address,
        authority: format!("{host}:{port}"),
        tls,
        proxied: args.proxy.is_some(),
        connection_per_request: args.connection_per_request,
        uri: path.parse()?,
        headers,
    })
}

/// TLS trusting `ca` (PEM), HTTP/1.1 by ALPN.
fn tls_connector(ca: Option<&std::path::Path>) -> anyhow::Result<TlsConnector> {
    use rustls_pki_types::pem::PemObject as _;
    let ca = ca.ok_or_else(|| anyhow::anyhow!("https:// URLs need --ca"))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(ca)
        .with_context(|| format!("reading {}", ca.display()))?
    {
        roots.add(cert?)?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// When an open-loop connection sends its next request.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    next: Instant,
    interval: Duration,
}

/// Sends requests on one keep-alive connection until `deadline`: back to
/// back, or on `schedule` (open-loop).
async fn run_connection(
    target: Target,
    deadline: Instant,
    mut schedule: Option<Schedule>,
) -> ConnectionTally {
    let mut tally = ConnectionTally::default();
    while Instant::now() < deadline {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let authority = target.authority(n);
        // With a connection per request, its set-up is part of the latency.
        let connecting = Instant::now();
        let Ok(connected) = timeout_at(deadline, connect(&target, &authority)).await else {
            break;
        };
        let Ok(mut sender) = connected else {
            tally.errors += 1;
            // Back off a little rather than spin on a refused connection.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let mut first = true;
        while Instant::now() < deadline {
            if !first && target.connection_per_request {
                break;
            }
            let sent = if let Some(schedule) = &mut schedule {
                // Charged from when it should have gone, not when it went.
                let scheduled = schedule.next;
                schedule.next += schedule.interval;
                if scheduled >= deadline {
                    break;
                }
                tokio::time::sleep_until(scheduled).await;
                scheduled
            } else if target.connection_per_request {
                connecting
            } else {
                Instant::now()
            };
            first = false;
            let Ok(outcome) =
                timeout_at(deadline, send_one(&mut sender, &target, &authority)).await
            else {
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

/// A byte stream: TCP, or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A connection to `authority`: TCP (to the proxy, then `CONNECT`), TLS
/// for `https://`, then an HTTP/1.1 handshake.
async fn connect(
    target: &Target,
    authority: &str,
) -> anyhow::Result<http1::SendRequest<Empty<Bytes>>> {
    let mut stream = TcpStream::connect(&target.address).await?;
    stream.set_nodelay(true)?;
    if target.proxied {
        tunnel(&mut stream, authority).await?;
    }
    let io: Box<dyn Io> = match &target.tls {
        Some(tls) => {
            let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
            let name = rustls_pki_types::ServerName::try_from(host.to_owned())?;
            Box::new(tls.connect(name, stream).await?)
        }
        None => Box::new(stream),
    };
    let (sender, connection) = http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        // Ends when the sender is dropped or the peer closes; either way
        // the next `send_one` on this connection reports the failure.
        let _ = connection.await;
    });
    Ok(sender)
}

/// `CONNECT authority`, and its `200`.
async fn tunnel(stream: &mut TcpStream, authority: &str) -> anyhow::Result<()> {
    stream
        .write_all(format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n").as_bytes())
        .await?;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await?);
        if head.len() > 16 * 1024 {
            bail!("the proxy's answer to CONNECT has no end");
        }
    }
    let status = String::from_utf8_lossy(&head);
    if !status.starts_with("HTTP/1.1 200") {
        bail!(
            "CONNECT {authority}: {}",
            status.lines().next().unwrap_or_default()
        );
    }
    Ok(())
}

/// Sends one request and reads its body to the end. `Ok(true)` for a 2xx.
async fn send_one(
    sender: &mut http1::SendRequest<Empty<Bytes>>,
    target: &Target,
    authority: &str,
) -> anyhow::Result<bool> {
    sender.ready().await?;
    let mut request = Request::new(Empty::new());
    *request.method_mut() = Method::GET;
    *request.uri_mut() = target.uri.clone();
    *request.headers_mut() = target.headers.clone();
    if !target.authorizations.is_empty() {
        let n = NEXT_AUTHORIZATION.fetch_add(1, Ordering::Relaxed);
        #[allow(
            clippy::cast_possible_truncation,
            reason = "the remainder is below the count, a usize"
        )]
        let value = &target.authorizations[(n % target.authorizations.len() as u64) as usize];
        request.headers_mut().insert(AUTHORIZATION, value.clone());
    }
    let host = match &target.tls {
        Some(_) => authority.strip_suffix(":443").unwrap_or(authority),
        None => authority.strip_suffix(":80").unwrap_or(authority),
    };
    request
        .headers_mut()
        .insert(HOST, HeaderValue::try_from(host)?);
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
