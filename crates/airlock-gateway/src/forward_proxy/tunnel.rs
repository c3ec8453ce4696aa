//! The tunnels themselves: once the stack has answered a `CONNECT` with a
//! [`Tunnel`], the connection is taken over here.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use airlock_core::{AuditDraft, BoxFuture};
use airlock_identity::TunnelToken;
use axum::body::Body;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::Watcher;
use hyper_util::service::TowerToHyperService;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::TlsAcceptor;
use tower::Service;

use super::connect::{InTunnel, Tunnel, TunnelCloser};
use super::mint::Minter;
use crate::sni::SniGuard;

/// What serving tunnels needs; shared by every connection of the listener.
pub(crate) struct ProxyContext {
    pub(crate) minter: Minter,
    pub(crate) app: crate::stack::App,
    pub(crate) builder: auto::Builder<TokioExecutor>,
    pub(crate) handshake_timeout: Duration,
    pub(crate) connect_timeout: Duration,
}

impl std::fmt::Debug for ProxyContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyContext").finish_non_exhaustive()
    }
}

/// A connection's place in the listener's limits (`limits.max_connections`,
/// `max_connections_per_client`): freed when the last holder drops it.
pub(crate) type Admission = Arc<dyn std::any::Any + Send + Sync>;

/// The listener's service in forward-proxy mode: everything goes to the
/// inner service (the stack decides `CONNECT` too); a `CONNECT` it answered
/// with a [`Tunnel`] is then carried out.
#[derive(Clone)]
pub(crate) struct ProxyService<S> {
    pub(crate) inner: S,
    /// `None` when forward-proxy mode is off: nothing is tunnelled.
    pub(crate) context: Option<Arc<ProxyContext>>,
    /// The connection's place: a tunnel keeps it until the tunnel closes,
    /// so tunnels count against the limits like the connection they took over.
    pub(crate) admission: Admission,
    /// Lets the listener's graceful shutdown wait for the requests inside
    /// the tunnel this connection becomes (taken by the one `CONNECT`
    /// served; dropped with the connection otherwise).
    pub(crate) watcher: Arc<Mutex<Option<Watcher>>>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for ProxyService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> Service<Request<Incoming>> for ProxyService<S>
where
    S: Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Incoming>) -> Self::Future {
        let Some(context) = self
            .context
            .clone()
            .filter(|_| request.method() == Method::CONNECT)
        else {
            return Box::pin(self.inner.call(request));
        };
        let upgrade = hyper::upgrade::on(&mut request);
        let answer = self.inner.call(request);
        let admission = self.admission.clone();
        let watcher = self.watcher.clone();
        Box::pin(async move {
            let response = answer.await?;
            let Some(tunnel) = response
                .extensions()
                .get::<Tunnel>()
                .filter(|_| response.status() == StatusCode::OK)
                .cloned()
            else {
                return Ok(response);
            };
            // The CONNECT's audit event ends with its (empty) body: a blind
            // tunnel keeps it until the tunnel closes, to record the bytes.
            let draft = response.extensions().get::<AuditDraft>().cloned();
            let (mut parts, body) = response.into_parts();
            let closer = parts.extensions.remove::<TunnelCloser>();
            let watcher = watcher
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            tokio::spawn(async move {
                let _admission = admission;
                let record = Record {
                    draft,
                    closer,
                    body,
                };
                match upgrade.await {
                    Ok(upgraded) => {
                        run(tunnel, TokioIo::new(upgraded), &context, record, watcher).await;
                    }
                    Err(error) => {
                        tracing::debug!(%error, "CONNECT: the client did not take the tunnel");
                        record.end(None).await;
                    }
                }
            });
            Ok(Response::from_parts(parts, Body::empty()))
        })
    }
}

/// The `CONNECT`'s audit event, ended when the tunnel no longer needs it.
struct Record {
    draft: Option<AuditDraft>,
    /// A blind tunnel's: the body ends when it is dropped.
    closer: Option<TunnelCloser>,
    body: Body,
}

impl Record {
    /// Ends the event, with the bytes a blind tunnel carried.
    async fn end(self, bytes: Option<(u64, u64)>) {
        if let (Some(draft), Some(bytes)) = (&self.draft, bytes) {
            draft.update(|record| record.tunnel_bytes = Some(bytes));
        }
        drop(self.closer);
        // The body is empty: reading it to its end finishes the event.
        let _ = http_body_util::BodyExt::collect(self.body).await;
    }
}

/// Carries out `tunnel`; with `watcher`, the listener's graceful shutdown
/// waits for it (an intercepted tunnel finishes the requests in it; a blind
/// one is waited for up to the drain timeout).
async fn run(
    tunnel: Tunnel,
    io: TokioIo<hyper::upgrade::Upgraded>,
    context: &ProxyContext,
    record: Record,
    watcher: Option<Watcher>,
) {
    match tunnel {
        Tunnel::Intercept { host, token } => {
            record.end(None).await;
            intercept(io, &host, token, context, watcher).await;
        }
        Tunnel::Blind { host, address } => {
            let bytes = blind(io, &host, &address, context).await;
            record.end(Some(bytes)).await;
            drop(watcher);
        }
    }
}

/// TLS with a certificate minted for `host`, then HTTP/1.1 or HTTP/2 through
/// the whole stack; every request must be for `host`, and runs as `token`'s
/// principal when the `CONNECT` carried one.
async fn intercept(
    io: TokioIo<hyper::upgrade::Upgraded>,
    host: &str,
    token: Option<TunnelToken>,
    context: &ProxyContext,
    watcher: Option<Watcher>,
) {
    let leaf = match context.minter.leaf(host) {
        Ok(leaf) => leaf,
        Err(error) => {
            return tracing::error!(%host, %error, "CONNECT: cannot mint a certificate; tunnel closed");
        }
    };
    let config = match tls_config(host, leaf) {
        Ok(config) => config,
        Err(error) => return tracing::error!(%host, %error, "CONNECT: TLS set-up failed"),
    };
    let accepted = tokio::time::timeout(
        context.handshake_timeout,
        TlsAcceptor::from(config).accept(io),
    )
    .await;
    let stream = match accepted {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            return tracing::info!(%host, %error, "CONNECT: TLS inside the tunnel refused (a server name other than the CONNECT target?)");
        }
        Err(_) => return tracing::debug!(%host, "CONNECT: TLS handshake timed out"),
    };
    let origin = airlock_core::ClientOrigin::https(host);
    let app = tower::ServiceBuilder::new()
        .map_request(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(InTunnel);
            // URLs the client is to follow name the host it tunnelled to.
            request.extensions_mut().insert(origin.clone());
            if let Some(token) = &token {
                request.extensions_mut().insert(token.clone());
            }
            request
        })
        .service(context.app.clone());
    let service = TowerToHyperService::new(SniGuard::new(app, Some(host)));
    let connection = context
        .builder
        .serve_connection(TokioIo::new(stream), service);
    let served = match watcher {
        Some(watcher) => watcher.watch(connection).await,
        None => connection.await,
    };
    if let Err(error) = served {
        tracing::debug!(%host, %error, "CONNECT: tunnel ended with an error");
    }
}

/// The bytes, both ways, unread; how many went each way.
async fn blind(
    io: TokioIo<hyper::upgrade::Upgraded>,
    host: &str,
    address: &str,
    context: &ProxyContext,
) -> (u64, u64) {
    let connected = tokio::time::timeout(
        context.connect_timeout,
        tokio::net::TcpStream::connect(address),
    )
    .await;
    let mut upstream = match connected {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::warn!(%host, %address, %error, "CONNECT: cannot reach the tunnel host");
            return (0, 0);
        }
        Err(_) => {
            tracing::warn!(%host, %address, "CONNECT: connecting to the tunnel host timed out");
            return (0, 0);
        }
    };
    // Counted as they pass, so a tunnel that ends in an error still says
    // how much it carried.
    let mut io = Counted::new(io);
    if let Err(error) = tokio::io::copy_bidirectional(&mut io, &mut upstream).await {
        tracing::debug!(%host, %error, "CONNECT: blind tunnel ended with an error");
    }
    let (sent, received) = (io.read, io.written);
    tracing::info!(%host, bytes_sent = sent, bytes_received = received, "CONNECT: blind tunnel closed");
    (sent, received)
}

/// A stream that counts the bytes read from and written to it.
struct Counted<T> {
    inner: T,
    read: u64,
    written: u64,
}

impl<T> Counted<T> {
    fn new(inner: T) -> Self {
        Self {
            inner,
            read: 0,
            written: 0,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.read += (buf.filled().len() - before) as u64;
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = polled {
            self.written += n as u64;
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// One tunnel's TLS: the minted certificate, offered only for `host` (or a
/// client that names no server); HTTP/2 and HTTP/1.1 by ALPN.
fn tls_config(
    host: &str,
    leaf: Arc<CertifiedKey>,
) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_cert_resolver(Arc::new(OneHost {
        host: host.to_owned(),
        leaf,
    }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[derive(Debug)]
struct OneHost {
    host: String,
    leaf: Arc<CertifiedKey>,
}

impl ResolvesServerCert for OneHost {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match hello.server_name() {
            Some(name) if !name.trim_end_matches('.').eq_ignore_ascii_case(&self.host) => {
                tracing::info!(sni = %name, connect = %self.host, "CONNECT: TLS server name is not the CONNECT target; refused");
                None
            }
            _ => Some(self.leaf.clone()),
        }
    }
}
