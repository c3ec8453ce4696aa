//! [`ClientBuilder`]: the pooled hyper-util client over rustls.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::rt::TokioExecutor;

use crate::{ClientError, LocalhostResolver, TrustRoots};

/// The pooled client: cheap to clone, every clone shares one connection pool.
pub type PooledClient = Client<HttpsConnector<HttpConnector<LocalhostResolver>>, Full<Bytes>>;

/// The pooled client through a forward proxy: TLS to each host inside a
/// `CONNECT` tunnel (see [`ClientBuilder::build_through_proxy`]).
pub type ProxiedClient =
    Client<HttpsConnector<Tunnel<HttpsConnector<HttpConnector<LocalhostResolver>>>>, Full<Bytes>>;

/// Builds a [`PooledClient`]: `https://` only unless plain HTTP is allowed,
/// HTTP/1.1 and HTTP/2 (ALPN), TCP_NODELAY, idle connections kept 90 s.
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    roots: TrustRoots,
    allow_http: bool,
    connect_timeout: Option<Duration>,
}

impl ClientBuilder {
    /// A builder trusting `roots`.
    pub fn new(roots: TrustRoots) -> Self {
        Self {
            roots,
            allow_http: false,
            connect_timeout: None,
        }
    }

    /// Also speaks plain `http://` (local doubles, loopback admin listeners).
    #[must_use]
    pub fn allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// Time to establish a TCP connection (default: the system's).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// The client.
    ///
    /// # Errors
    ///
    /// When the trust roots are unusable (see [`TrustRoots::store`]).
    pub fn build(&self) -> Result<PooledClient, ClientError> {
        let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(self.tls()?);
        let connector = if self.allow_http {
            builder
                .https_or_http()
                .enable_all_versions()
                .wrap_connector(self.http())
        } else {
            builder
                .https_only()
                .enable_all_versions()
                .wrap_connector(self.http())
        };
        Ok(pooled(connector))
    }

    /// A client that reaches every `https://` host through the forward proxy
    /// at `proxy` (`http://` or `https://`; TLS to the proxy uses the same
    /// trust roots), with `authorization` as the `CONNECT`'s
    /// `Proxy-Authorization`.
    ///
    /// ```
    /// use airlock_http::{ClientBuilder, ClientError, ProxiedClient, TrustRoots};
    ///
    /// /// Through Airlock in forward-proxy mode, trusting its proxy CA;
    /// /// `authorization` is `Bearer <the agent's token>`.
    /// fn through_airlock(
    ///     proxy_ca_pem: &str,
    ///     authorization: http::HeaderValue,
    /// ) -> Result<ProxiedClient, ClientError> {
    ///     ClientBuilder::new(TrustRoots::none().with_ca_pem(proxy_ca_pem))
    ///         .build_through_proxy("http://127.0.0.1:8443".parse().unwrap(), Some(authorization))
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// When the trust roots are unusable (see [`TrustRoots::store`]).
    pub fn build_through_proxy(
        &self,
        proxy: http::Uri,
        authorization: Option<http::HeaderValue>,
    ) -> Result<ProxiedClient, ClientError> {
        let tls = self.tls()?;
        // CONNECT is HTTP/1.1: only that is offered to the proxy itself.
        let to_proxy = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls.clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(self.http());
        let mut tunnel = Tunnel::new(proxy, to_proxy);
        if let Some(authorization) = authorization {
            tunnel = tunnel.with_auth(authorization);
        }
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_all_versions()
            .wrap_connector(tunnel);
        Ok(pooled(connector))
    }

    fn tls(&self) -> Result<rustls::ClientConfig, ClientError> {
        Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .with_root_certificates(self.roots.store()?)
        .with_no_client_auth())
    }

    fn http(&self) -> HttpConnector<LocalhostResolver> {
        let mut http = HttpConnector::new_with_resolver(LocalhostResolver::default());
        http.enforce_http(false);
        http.set_connect_timeout(self.connect_timeout);
        http.set_nodelay(true);
        http
    }
}

fn pooled<C>(connector: C) -> Client<C, Full<Bytes>>
where
    C: hyper_util::client::legacy::connect::Connect + Clone,
{
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(connector)
}
