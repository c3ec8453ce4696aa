//! One authority per request, the TLS part: a request on a TLS connection
//! must be for the host the connection was opened for (its SNI). Otherwise
//! a client could open a connection for one name (one certificate, one
//! vault) and send requests for another through it.
//!
//! A mismatch is answered `421 Misdirected Request` (RFC 9110 §15.5.20), in
//! the ARM error shape with code `InvalidHost`: 421 rather than 400 because
//! it is the status HTTP/2 clients that coalesce connections across names
//! covered by one certificate (`{vault}.<gateway>` under a wildcard) know to
//! retry on a connection of their own. The target-versus-`Host` check is the
//! routing table's ([`airlock_upstream::Routes::resolve`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use airlock_core::AirlockError;
use axum::body::Body;
use http::header::HOST;
use http::{Request, Response, StatusCode};
use tower::Service;

/// Serves one TLS connection's requests, refusing those for another host
/// than `server_name`.
#[derive(Clone, Debug)]
pub(crate) struct SniGuard<S> {
    pub(crate) inner: S,
    /// The SNI, lower case without a trailing dot; `None` when the client
    /// sent none (connecting to an IP address): nothing to compare.
    pub(crate) server_name: Option<String>,
}

impl<S> SniGuard<S> {
    pub(crate) fn new(inner: S, server_name: Option<&str>) -> Self {
        Self {
            inner,
            server_name: server_name.map(normalize),
        }
    }
}

fn normalize(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// The host a request names: its target's authority (HTTP/2, absolute
/// form), else its `Host` header; without port, borrowed (this runs on
/// every request of a TLS connection).
fn requested_host<B>(request: &Request<B>) -> Option<&str> {
    if let Some(authority) = request.uri().authority() {
        return Some(authority.host());
    }
    let host = request.headers().get(HOST)?.to_str().ok()?;
    if host.starts_with('[') {
        // An IPv6 literal, brackets kept as `Authority::host` keeps them.
        return host.split_inclusive(']').next();
    }
    Some(match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    })
}

pin_project_lite::pin_project! {
    /// The inner service's future, or the refusal: no allocation per request.
    #[project = GuardedProjection]
    pub(crate) enum Guarded<F> {
        Refused { response: Option<Response<Body>> },
        Served { #[pin] future: F },
    }
}

impl<F, E> Future for Guarded<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            // Taken once; a future polled after it completed stays pending.
            GuardedProjection::Refused { response } => response
                .take()
                .map_or(Poll::Pending, |r| Poll::Ready(Ok(r))),
            GuardedProjection::Served { future } => future.poll(cx),
        }
    }
}

impl<S, B> Service<Request<B>> for SniGuard<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Guarded<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // A CONNECT names the host to tunnel to, not this one; the stack decides it.
        if request.method() != http::Method::CONNECT
            && let Some(server_name) = &self.server_name
            && let Some(host) = requested_host(&request)
            && !host.trim_end_matches('.').eq_ignore_ascii_case(server_name)
        {
            tracing::info!(%server_name, %host, "request refused: its host is not the connection's TLS server name");
            let refusal = AirlockError::custom(
                StatusCode::MISDIRECTED_REQUEST,
                "InvalidHost",
                format!(
                    "this TLS connection was opened for {server_name} but the request is for {host}; open a connection for {host} (TLS server name {host})"
                ),
            )
            .into_response_for(&request);
            return Guarded::Refused {
                response: Some(refusal.map(Body::new)),
            };
        }
        Guarded::Served {
            future: self.inner.call(request),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::ServiceExt;

    use super::*;

    fn guard(
        sni: Option<&str>,
    ) -> SniGuard<tower::util::BoxCloneService<Request<Body>, Response<Body>, Infallible>> {
        let ok =
            tower::service_fn(|_request: Request<Body>| async { Ok(Response::new(Body::empty())) });
        SniGuard::new(tower::util::BoxCloneService::new(ok), sni)
    }

    async fn status(sni: Option<&str>, request: Request<Body>) -> StatusCode {
        guard(sni).oneshot(request).await.unwrap().status()
    }

    #[tokio::test]
    async fn the_request_must_name_the_connections_host() {
        let host = |h: &str| {
            Request::get("/")
                .header(HOST, h)
                .body(Body::empty())
                .unwrap()
        };
        assert_eq!(
            status(Some("gw.example"), host("gw.example:8443")).await,
            StatusCode::OK
        );
        assert_eq!(
            status(Some("GW.example."), host("gw.EXAMPLE")).await,
            StatusCode::OK
        );
        assert_eq!(
            status(Some("gw.example"), host("kv1.gw.example")).await,
            StatusCode::MISDIRECTED_REQUEST
        );
        let h2 = Request::get("https://kv1.gw.example/secrets")
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            status(Some("gw.example"), h2).await,
            StatusCode::MISDIRECTED_REQUEST
        );
        assert_eq!(
            status(Some("gw.example"), host("[::1]:8443")).await,
            StatusCode::MISDIRECTED_REQUEST
        );
        // No SNI (an IP address), or no host at all (the routing table answers that): nothing to compare.
        assert_eq!(status(None, host("kv1.gw.example")).await, StatusCode::OK);
        let hostless = Request::get("/").body(Body::empty()).unwrap();
        assert_eq!(status(Some("gw.example"), hostless).await, StatusCode::OK);
    }

    #[tokio::test]
    async fn the_refusal_is_arm_shaped() {
        let request = Request::get("/")
            .header(HOST, "other.example")
            .body(Body::empty())
            .unwrap();
        let response = guard(Some("gw.example")).oneshot(request).await.unwrap();
        assert_eq!(response.headers()["x-ms-error-code"], "InvalidHost");
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"]["code"], "InvalidHost");
        assert!(
            json["error"]["message"]
                .as_str()
                .unwrap()
                .contains("opened for gw.example")
        );
    }
}
