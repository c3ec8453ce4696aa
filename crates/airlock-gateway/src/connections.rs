//! What a client connection may cost: how many at once (in all, and per
//! client address), how long its TLS handshake and its first bytes may take,
//! and how long a request head (or an idle keep-alive connection) may wait.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::Watcher;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::config::LimitsConfig;
use crate::forward_proxy::{Admission, ProxyContext, ProxyService};
use crate::sni::SniGuard;

/// The connection limits of one listener, from `[limits]`.
#[derive(Clone, Debug)]
pub(crate) struct ConnectionLimits {
    handshake_timeout: Duration,
    header_read_timeout: Duration,
    total: Arc<Semaphore>,
    per_client: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl ConnectionLimits {
    pub(crate) fn new(limits: &LimitsConfig) -> Self {
        Self {
            handshake_timeout: limits.tls_handshake_timeout,
            header_read_timeout: limits.header_read_timeout,
            total: Arc::new(Semaphore::new(limits.max_connections)),
            per_client: limits.max_connections_per_client,
            open: Arc::default(),
        }
    }

    /// A place for a connection from `peer`, or `None` when the listener or
    /// that client is at its limit (the connection is then closed unread).
    fn admit(&self, peer: IpAddr) -> Option<Admitted> {
        let permit = self.total.clone().try_acquire_owned().ok()?;
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(peer).or_default();
        if *count >= self.per_client {
            return None;
        }
        *count += 1;
        Some(Admitted {
            _permit: permit,
            peer,
            open: self.open.clone(),
        })
    }

    /// A hyper builder with the head timeout armed (HTTP/1.1: a request head
    /// must arrive whole within it, and an idle keep-alive connection is
    /// closed after it; HTTP/2: pings every interval find dead peers).
    pub(crate) fn builder(&self) -> auto::Builder<TokioExecutor> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(self.header_read_timeout)
            .keep_alive_timeout(self.header_read_timeout);
        builder
    }

    /// Serves one accepted connection within the limits.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn serve<A: Listened>(
        self,
        stream: TcpStream,
        peer: SocketAddr,
        tls: Option<TlsAcceptor>,
        app: A,
        proxy: Option<Arc<ProxyContext>>,
        builder: auto::Builder<TokioExecutor>,
        [watcher, tunnel_watcher]: [Watcher; 2],
        stopped: tokio::sync::watch::Receiver<bool>,
    ) {
        let Some(admitted) = self.admit(peer.ip()) else {
            tracing::warn!(%peer, "connection refused: too many open connections (limits.max_connections, limits.max_connections_per_client)");
            return;
        };
        // Held by this connection and by any tunnel it becomes.
        let admission: Admission = Arc::new(admitted);
        let tunnel_watcher = Arc::new(Mutex::new(Some(tunnel_watcher)));
        let _ = stream.set_nodelay(true);
        let result = match tls {
            Some(acceptor) => {
                match tokio::time::timeout(self.handshake_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        // Every request on it must be for the host it was opened for.
                        let guarded = SniGuard::new(app, stream.get_ref().1.server_name());
                        let service = TowerToHyperService::new(ProxyService {
                            inner: guarded,
                            context: proxy,
                            admission,
                            watcher: tunnel_watcher,
                        });
                        self.serve_io(stream, peer, service, builder, watcher, stopped)
                            .await
                    }
                    Ok(Err(error)) => {
                        return tracing::debug!(%peer, %error, "TLS handshake failed");
                    }
                    Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
                }
            }
            None => {
                let service = TowerToHyperService::new(ProxyService {
                    inner: app,
                    context: proxy,
                    admission,
                    watcher: tunnel_watcher,
                });
                self.serve_io(stream, peer, service, builder, watcher, stopped)
                    .await
            }
        };
        if let Err(error) = result {
            tracing::debug!(%peer, %error, "connection ended with an error");
        }
    }

    /// Waits (up to the head timeout) for the client's first bytes, which
    /// also tell HTTP/1.1 from HTTP/2, then serves the connection. A
    /// connection that has sent nothing when the gateway stops (a browser's
    /// preconnect) is closed then, not waited for.
    async fn serve_io<IO, S>(
        &self,
        io: IO,
        peer: SocketAddr,
        service: TowerToHyperService<S>,
        builder: auto::Builder<TokioExecutor>,
        watcher: Watcher,
        mut stopped: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        S: tower::Service<
                http::Request<hyper::body::Incoming>,
                Response = http::Response<axum::body::Body>,
                Error = std::convert::Infallible,
            > + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
    {
        let mut io = BufReader::new(io);
        let first_bytes = tokio::select! {
            read = tokio::time::timeout(self.header_read_timeout, io.fill_buf()) => read,
            _ = stopped.wait_for(|stopped| *stopped) => {
                tracing::debug!(%peer, "connection closed: the gateway is stopping and it had sent nothing");
                return Ok(());
            }
        };
        match first_bytes {
            Ok(Ok(bytes)) if !bytes.is_empty() => {}
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(error)) => return Err(error.into()),
            Err(_) => {
                tracing::debug!(%peer, "connection closed: nothing sent within limits.header_read_timeout");
                return Ok(());
            }
        }
        watcher
            .watch(
                builder
                    .serve_connection_with_upgrades(TokioIo::new(io), service)
                    .into_owned(),
            )
            .await
    }
}

/// One open connection, counted until dropped.
struct Admitted {
    _permit: OwnedSemaphorePermit,
    peer: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.peer) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.peer);
            }
        }
    }
}

/// What a listener serves: the agents' listener its [`App`](crate::stack::App),
/// the admin listener its router.
pub(crate) trait Listened:
    tower::Service<
        http::Request<hyper::body::Incoming>,
        Response = http::Response<axum::body::Body>,
        Error = std::convert::Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + Sync
    + 'static
{
}

impl<A> Listened for A where
    A: tower::Service<
            http::Request<hyper::body::Incoming>,
            Response = http::Response<axum::body::Body>,
            Error = std::convert::Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + Sync
        + 'static
{
}
