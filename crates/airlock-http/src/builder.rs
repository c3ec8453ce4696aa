//! [`ClientBuilder`]: the pooled hyper-util client over rustls.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::{ClientError, LocalhostResolver, TrustRoots};

/// The pooled client: cheap to clone, every clone shares one connection pool.
pub type PooledClient = Client<HttpsConnector<HttpConnector<LocalhostResolver>>, Full<Bytes>>;

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
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .with_root_certificates(self.roots.store()?)
        .with_no_client_auth();
        let mut http = HttpConnector::new_with_resolver(LocalhostResolver::default());
        http.enforce_http(false);
        http.set_connect_timeout(self.connect_timeout);
        http.set_nodelay(true);
        let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls);
        let connector = if self.allow_http {
            builder
                .https_or_http()
                .enable_all_versions()
                .wrap_connector(http)
        } else {
            builder
                .https_only()
                .enable_all_versions()
                .wrap_connector(http)
        };
        Ok(Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector))
    }
}
