//! `bare-proxy`: the baseline `cargo xtask bench` compares the gateway with.
//!
//! A minimal, honest HTTP pass-through: a hyper 1 server (HTTP/1.1 and h2c,
//! via `hyper_util::server::conn::auto`) in front of a pooled
//! `hyper_util::client::legacy::Client`. For every request it does the work
//! any gateway must do and nothing more:
//!
//! - rewrites the URI to the upstream's scheme and authority (and lets the
//!   client set `Host` from it),
//! - strips hop-by-hop headers both ways,
//! - replaces the client's `Authorization` with `Bearer <token>` (or drops it
//!   when no `--token` is given: a client's credential never goes upstream),
//! - streams request and response bodies without buffering them,
//! - makes a real upstream request per request over pooled keep-alive
//!   connections.
//!
//! ```text
//! bare-proxy --listen 127.0.0.1:0 --upstream http://127.0.0.1:8080 --token T
//! ```
//! prints `bare-proxy listening on http://127.0.0.1:PORT` once it accepts
//! connections.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use clap::Parser;
use http::header::{self, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Request, Response, StatusCode, Uri, Version};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// Command line of the bare proxy.
#[derive(Debug, Parser)]
#[command(
    name = "bare-proxy",
    about = "A minimal pass-through HTTP proxy: the benchmark baseline."
)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Upstream base URL, `http://host:port`.
    #[arg(long)]
    upstream: Uri,
    /// Bearer token sent upstream in place of the client's `Authorization`.
    #[arg(long)]
    token: Option<String>,
}

/// Where requests go, and the credential they carry there. Built once.
#[derive(Debug)]
struct Upstream {
    scheme: Scheme,
    authority: Authority,
    authorization: Option<HeaderValue>,
}

type UpstreamClient = Client<HttpConnector, Incoming>;
type ProxyBody = Either<Incoming, Full<Bytes>>;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

/// On the runtime the `airlock` binary picks for the CPUs it may use
/// ([`airlock_gateway::runtime`]), so that it is compared on equal terms.
fn main() -> anyhow::Result<()> {
    airlock_gateway::runtime()?.block_on(serve())
}

async fn serve() -> anyhow::Result<()> {
    let args = Args::parse();
    let upstream = Arc::new(upstream_from_args(&args)?);

    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: UpstreamClient = Client::builder(TokioExecutor::new()).build(connector);

    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let local = listener.local_addr()?;
    println!("bare-proxy listening on http://{local}");

    let server = auto::Builder::new(TokioExecutor::new());
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                // Out of file descriptors and the like: back off briefly
                // instead of spinning on accept.
                eprintln!("bare-proxy: accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if let Err(error) = stream.set_nodelay(true) {
            eprintln!("bare-proxy: cannot set TCP_NODELAY: {error}");
        }
        let server = server.clone();
        let client = client.clone();
        let upstream = Arc::clone(&upstream);
        tokio::spawn(async move {
            let service =
                service_fn(move |request| forward(client.clone(), Arc::clone(&upstream), request));
            if let Err(error) = server.serve_connection(TokioIo::new(stream), service).await {
                eprintln!("bare-proxy: connection error: {error}");
            }
        });
    }
}

fn upstream_from_args(args: &Args) -> anyhow::Result<Upstream> {
    let scheme = args.upstream.scheme().cloned().unwrap_or(Scheme::HTTP);
    if scheme != Scheme::HTTP {
        bail!("--upstream must be an http:// URL (the bare proxy has no TLS client)");
    }
    let Some(authority) = args.upstream.authority().cloned() else {
        bail!("--upstream must name a host and port, e.g. http://127.0.0.1:8080");
    };
    let authorization = args
        .token
        .as_deref()
        .map(|token| {
            let mut value = HeaderValue::try_from(format!("Bearer {token}"))
                .context("--token must be a valid header value")?;
            value.set_sensitive(true);
            anyhow::Ok(value)
        })
        .transpose()?;
    Ok(Upstream {
        scheme,
        authority,
        authorization,
    })
}

async fn forward(
    client: UpstreamClient,
    upstream: Arc<Upstream>,
    mut request: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let path_and_query = request
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let uri = Uri::builder()
        .scheme(upstream.scheme.clone())
        .authority(upstream.authority.clone())
        .path_and_query(path_and_query)
        .build();
    let Ok(uri) = uri else {
        return Ok(plain_response(
            StatusCode::BAD_REQUEST,
            "bad request target",
        ));
    };
    *request.uri_mut() = uri;
    // The upstream pool speaks HTTP/1.1 whatever the client spoke to us.
    *request.version_mut() = Version::HTTP_11;

    let headers = request.headers_mut();
    strip_hop_by_hop(headers);
    // The client's Host names us; the client sets the upstream's from the URI.
    headers.remove(header::HOST);
    headers.remove(header::AUTHORIZATION);
    if let Some(authorization) = &upstream.authorization {
        headers.insert(header::AUTHORIZATION, authorization.clone());
    }

    match client.request(request).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Ok(Response::from_parts(parts, Either::Left(body)))
        }
        Err(error) => {
            eprintln!("bare-proxy: upstream request failed: {error}");
            Ok(plain_response(
                StatusCode::BAD_GATEWAY,
                "upstream request failed",
            ))
        }
    }
}

/// Removes the fixed hop-by-hop headers and any that `Connection` names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::try_from(name.trim()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

fn plain_response(status: StatusCode, message: &'static str) -> Response<ProxyBody> {
    let mut response = Response::new(Either::Right(Full::new(Bytes::from_static(
        message.as_bytes(),
    ))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
