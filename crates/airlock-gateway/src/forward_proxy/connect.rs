//! Which `CONNECT` targets the gateway serves, decided inside the stack so
//! that every `CONNECT`, served or refused, is recorded like any request.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use airlock_core::{AirlockBody, AirlockError, AuditDraft, BoxFuture};
use airlock_identity::TunnelToken;
use airlock_upstream::Routes;
use http::{Method, Request, Response, StatusCode};
use tower::{Layer, Service};

/// Put on the `200` answer to a `CONNECT` the gateway serves: what to do
/// with the tunnel once the client has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Tunnel {
    /// Terminate TLS with a certificate minted for `host` and serve the
    /// requests inside through the whole stack.
    Intercept {
        /// The Azure host (lower case).
        host: String,
        /// The `CONNECT`'s verified `Proxy-Authorization`: it identifies
        /// every request inside.
        token: Option<TunnelToken>,
    },
    /// Pass the bytes through, unread, to `address` (`host:443`, or where
    /// `forward_proxy.resolve` says).
    Blind {
        /// The host (lower case).
        host: String,
        /// Where to connect.
        address: String,
    },
}

/// Ends the body of a blind tunnel's `200` when the last clone is dropped.
#[derive(Clone, Debug)]
pub(crate) struct TunnelCloser(
    #[allow(dead_code, reason = "held, never read")] Arc<tokio::sync::oneshot::Sender<()>>,
);

/// An empty body that ends only when its [`TunnelCloser`] is dropped.
struct UntilClosed(tokio::sync::oneshot::Receiver<()>);

impl http_body::Body for UntilClosed {
    type Data = bytes::Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, Infallible>>> {
        std::pin::Pin::new(&mut self.0).poll(cx).map(|_| None)
    }
}

/// Marks a request that arrived inside a tunnel: it may not open another.
#[derive(Clone, Copy, Debug)]
pub(crate) struct InTunnel;

/// What may be tunnelled.
#[derive(Debug)]
pub(crate) struct Targets {
    /// Forward-proxy mode is on.
    pub(crate) enabled: bool,
    /// The Azure hosts intercepted are those this table routes.
    pub(crate) routes: Routes,
    /// Hosts passed through blind (lower case).
    pub(crate) tunnel_hosts: Vec<String>,
    /// Addresses for tunnel hosts, instead of DNS.
    pub(crate) resolve: BTreeMap<String, SocketAddr>,
}

impl Targets {
    /// The tunnel for `CONNECT host:port`, or why not.
    pub(crate) fn decide(&self, authority: &str) -> Result<Tunnel, AirlockError> {
        if !self.enabled {
            return Err(AirlockError::custom(
                StatusCode::METHOD_NOT_ALLOWED,
                "AirlockForwardProxyDisabled",
                "this gateway does not serve CONNECT; address it in base-URL mode, or enable [forward_proxy]",
            ));
        }
        let refused = || AirlockError::HostNotAllowed {
            host: format!("{authority} (CONNECT)"),
        };
        let parsed: http::uri::Authority = authority.parse().map_err(|_| refused())?;
        let host = parsed.host().trim_end_matches('.').to_ascii_lowercase();
        if parsed.port_u16() != Some(443) {
            return Err(AirlockError::HostNotAllowed {
                host: format!("{authority} (CONNECT: only port 443 of Azure's hosts is tunnelled)"),
            });
        }
        if self.routes.azure_host(&host).is_some() {
            return Ok(Tunnel::Intercept { host, token: None });
        }
        if self.tunnel_hosts.contains(&host) {
            let address = self
                .resolve
                .get(&host)
                .map_or_else(|| format!("{host}:443"), ToString::to_string);
            return Ok(Tunnel::Blind { host, address });
        }
        Err(refused())
    }
}

/// Answers `CONNECT` (200 with a [`Tunnel`], or an ARM-shaped refusal);
/// passes everything else on.
#[derive(Clone, Debug)]
pub(crate) struct ConnectLayer {
    targets: Arc<Targets>,
}

impl ConnectLayer {
    pub(crate) fn new(targets: Targets) -> Self {
        Self {
            targets: Arc::new(targets),
        }
    }
}

impl<S> Layer<S> for ConnectLayer {
    type Service = ConnectService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ConnectService {
            inner,
            targets: self.targets.clone(),
        }
    }
}

/// See [`ConnectLayer`].
#[derive(Clone, Debug)]
pub(crate) struct ConnectService<S> {
    inner: S,
    targets: Arc<Targets>,
}

impl<S, B, ResBody> Service<Request<B>> for ConnectService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>, Error = Infallible>,
    S::Future: Send + 'static,
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<airlock_core::BoxError>,
{
    type Response = Response<AirlockBody>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<AirlockBody>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if request.method() != Method::CONNECT {
            let answer = self.inner.call(request);
            return Box::pin(async move { Ok(answer.await?.map(AirlockBody::new)) });
        }
        let authority = request
            .uri()
            .authority()
            .map(ToString::to_string)
            .unwrap_or_default();
        let decided = if request.extensions().get::<InTunnel>().is_some() {
            Err(AirlockError::HostNotAllowed {
                host: format!("{authority} (CONNECT inside a tunnel)"),
            })
        } else {
            self.targets.decide(&authority)
        };
        let response = match decided {
            Ok(mut tunnel) => {
                if let Tunnel::Intercept { token, .. } = &mut tunnel {
                    *token = request.extensions().get::<TunnelToken>().cloned();
                }
                tracing::info!(target = %authority, ?tunnel, "CONNECT served");
                let mut response = Response::new(airlock_core::empty());
                // A blind tunnel is recorded when it closes, with the bytes
                // it carried: its answer's body lasts until then.
                if matches!(tunnel, Tunnel::Blind { .. })
                    && let Some(draft) = request.extensions().get::<AuditDraft>()
                {
                    let (closer, closed) = tokio::sync::oneshot::channel();
                    *response.body_mut() = AirlockBody::new(UntilClosed(closed));
                    response.extensions_mut().insert(draft.clone());
                    response
                        .extensions_mut()
                        .insert(TunnelCloser(Arc::new(closer)));
                }
                response.extensions_mut().insert(tunnel);
                response
            }
            Err(error) => {
                tracing::info!(target = %authority, %error, "CONNECT refused");
                error.into_response_for(&request)
            }
        };
        Box::pin(async move { Ok(response) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(enabled: bool) -> Targets {
        let config: airlock_upstream::UpstreamConfig = toml::from_str(
            "arm_url = \"http://127.0.0.1:9\"\nallow_insecure_http = true\nkey_vault.vaults = [\"kv1\"]\ncredential = { kind = \"static\", token = \"t\" }",
        )
        .unwrap();
        let gateway = airlock_upstream::GatewayHosts::new(
            airlock_upstream::Endpoint::parse("https://localhost:8443").unwrap(),
        )
        .listen_ip(std::net::Ipv4Addr::LOCALHOST.into());
        Targets {
            enabled,
            routes: Routes::new(&config, &gateway).unwrap(),
            tunnel_hosts: vec!["login.microsoftonline.com".into()],
            resolve: BTreeMap::from([(
                "login.microsoftonline.com".into(),
                "127.0.0.1:4443".parse().unwrap(),
            )]),
        }
    }

    #[test]
    fn azure_hosts_are_intercepted_sign_in_tunnelled_and_the_rest_refused() {
        let t = targets(true);
        assert_eq!(
            t.decide("management.azure.com:443").unwrap(),
            Tunnel::Intercept {
                host: "management.azure.com".into(),
                token: None
            }
        );
        assert_eq!(
            t.decide("KV1.vault.azure.net:443").unwrap(),
            Tunnel::Intercept {
                host: "kv1.vault.azure.net".into(),
                token: None
            }
        );
        assert_eq!(
            t.decide("login.microsoftonline.com:443").unwrap(),
            Tunnel::Blind {
                host: "login.microsoftonline.com".into(),
                address: "127.0.0.1:4443".into()
            }
        );
        for refused in [
            "evil.example:443",
            "management.azure.com:22",
            "management.azure.com",
            "127.0.0.1:443",
            "[::1]:443",
            "localhost:443",
            "kv2.vault.azure.net:443",
            "169.254.169.254:80",
        ] {
            let error = t.decide(refused).unwrap_err();
            assert!(
                matches!(error, AirlockError::HostNotAllowed { .. }),
                "{refused}: {error}"
            );
        }
        assert!(targets(false).decide("management.azure.com:443").is_err());
    }
}
