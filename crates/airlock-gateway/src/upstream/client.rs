//! The pooled hyper-util client to Azure over rustls.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use hyper_util::rt::TokioExecutor;
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tower::Service;

use crate::Config;

/// The client type the upstream service sends with.
pub(crate) type UpstreamClient =
    Client<HttpsConnector<HttpConnector<LocalhostResolver>>, Full<Bytes>>;

/// Why the upstream client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The extra CA file could not be used.
    #[error("upstream.ca_file {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// No trust anchors at all.
    #[error(
        "no trusted root certificates: the system store is empty and no upstream.ca_file is set"
    )]
    NoRoots,
}

/// Builds the pooled client: system roots plus `upstream.ca_file`, HTTP/2
/// where the server offers it, plain HTTP only when explicitly allowed.
pub(crate) fn build(config: &Config) -> Result<UpstreamClient, ClientError> {
    let roots = trust_roots(config.upstream.ca_file.as_deref())?;
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| ClientError::CaFile {
        path: String::new(),
        reason: e.to_string(),
    })?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut http = HttpConnector::new_with_resolver(LocalhostResolver::default());
    http.enforce_http(false);
    http.set_connect_timeout(Some(config.upstream.connect_timeout));
    http.set_nodelay(true);
    let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls);
    let connector = if config.upstream.allow_insecure_http {
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
        .pool_idle_timeout(std::time::Duration::from_secs(90))
        .build(connector))
}

/// The system roots plus the certificates in `ca_file` (PEM).
pub(crate) fn trust_roots(ca_file: Option<&std::path::Path>) -> Result<RootCertStore, ClientError> {
    let mut roots = RootCertStore::empty();
    // Unreadable system certificates are skipped: the extra CA file may be all a deployment needs.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        let ca_error = |reason: String| ClientError::CaFile {
            path: path.display().to_string(),
            reason,
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| ca_error(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| ca_error(e.to_string()))?;
        if certs.is_empty() {
            return Err(ca_error("contains no PEM certificates".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
        }
    }
    if roots.is_empty() {
        return Err(ClientError::NoRoots);
    }
    Ok(roots)
}

/// The system resolver, except that `localhost` and every name under
/// `.localhost` resolve to the loopback address without asking DNS (RFC 6761
/// §6.3). Local Azure doubles serve vaults as `{vault}.vault.localhost`.
#[derive(Clone, Debug)]
pub struct LocalhostResolver {
    system: GaiResolver,
}

impl Default for LocalhostResolver {
    fn default() -> Self {
        Self {
            system: GaiResolver::new(),
        }
    }
}

type Addrs = std::vec::IntoIter<SocketAddr>;

impl Service<Name> for LocalhostResolver {
    type Response = Addrs;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Addrs, std::io::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.system.poll_ready(cx)
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        if host == "localhost" || host.ends_with(".localhost") {
            let loopback = vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 0))];
            return Box::pin(async move { Ok(loopback.into_iter()) });
        }
        let lookup = self.system.call(name);
        Box::pin(async move { Ok(lookup.await?.collect::<Vec<_>>().into_iter()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[tokio::test]
    async fn localhost_subdomains_resolve_to_loopback() {
        let mut resolver = LocalhostResolver::default();
        for name in ["localhost", "demo-vault.vault.localhost", "X.LOCALHOST."] {
            let addrs: Vec<_> = resolver
                .call(Name::from_str(name).unwrap())
                .await
                .unwrap()
                .collect();
            assert_eq!(
                addrs,
                [SocketAddr::from((Ipv4Addr::LOCALHOST, 0))],
                "{name}"
            );
        }
    }
}
