//! The innermost service: forwards an allowed request to Azure and brings
//! the answer back through the gateway.
//!
//! Per request it: refuses anything without an allowing [`Decision`] (fail
//! closed); picks the upstream from configuration ([`Routes`]); reads the
//! body within the limit; strips hop-by-hop headers and the client's
//! credentials; injects the gateway's own token; sends with a pooled client
//! and a read timeout; and rewrites absolute Azure URLs (`Location`,
//! `Azure-AsyncOperation`, `nextLink`) so the client's next call comes back
//! through the gateway. Azure's 401 is never relayed: it means the gateway's
//! own credential is wrong, which is a 502 for the client.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use airlock_azure::AzureEndpoint;
use airlock_core::{
    AccessToken, AirlockBody, AirlockError, AuditDraft, BodyError, BoxError, BoxFuture, Decision,
    ErrorContext, MemoryBudget, REQUEST_ID_HEADER, TokenProvider, collect_limited,
};
use airlock_http::PooledClient;
use bytes::Bytes;
use http::header::{AUTHORIZATION, HeaderName};
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::Full;

use crate::UpstreamIdentities;
use crate::routing::Routes;
use crate::{headers, rewrite};
use airlock_credentials::SharedKey;

/// Marks a response that came from Azure (as opposed to one Airlock made).
#[derive(Clone, Copy, Debug)]
pub struct FromUpstream;

/// The upstream service; cheap to clone.
///
/// ```no_run
/// # fn build(routes: airlock_upstream::Routes, client: airlock_http::PooledClient) {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use airlock_core::StaticTokenProvider;
///
/// let upstream = airlock_upstream::Upstream::new(routes, client, Arc::new(StaticTokenProvider::new("dev")))
///     .read_timeout(Duration::from_secs(60))
///     .max_request_body_bytes(4 << 20);
/// # }
/// ```
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    client: PooledClient,
    routes: Routes,
    identities: UpstreamIdentities,
    /// Storage accounts signed for with their key, by account name.
    shared_keys: Arc<std::collections::HashMap<String, SharedKey>>,
    read_timeout: Duration,
    body_timeout: Duration,
    max_request_body: u64,
    max_response_rewrite: u64,
    /// What the JSON answers read whole may take at once; none by default.
    budget: Option<MemoryBudget>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("routes", &self.inner.routes)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// Forwards to the endpoints `routes` allows, with `client`, presenting
    /// the tokens `tokens` gives for each endpoint's audience.
    pub fn new(routes: Routes, client: PooledClient, tokens: Arc<dyn TokenProvider>) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                routes,
                identities: UpstreamIdentities::new(tokens),
                shared_keys: Arc::default(),
                read_timeout: Duration::from_secs(60),
                body_timeout: Duration::from_secs(30),
                max_request_body: 4 << 20,
                max_response_rewrite: 16 << 20,
                budget: None,
            }),
        }
    }

    /// Acts as these Azure identities, chosen per request (by default, the
    /// one `tokens` given to [`new`](Self::new) serves everyone).
    #[must_use]
    pub fn identities(self, identities: UpstreamIdentities) -> Self {
        self.with(|inner| inner.identities = identities)
    }

    /// Signs requests to these storage accounts with their account keys
    /// (Azure Storage Shared Key) instead of sending an Entra token.
    #[must_use]
    pub fn shared_keys(self, keys: impl IntoIterator<Item = SharedKey>) -> Self {
        let keys = keys
            .into_iter()
            .map(|key| (key.account().to_owned(), key))
            .collect();
        self.with(|inner| inner.shared_keys = Arc::new(keys))
    }

    /// Time for Azure to answer with response headers (default 60 s; 504 after).
    #[must_use]
    pub fn read_timeout(self, timeout: Duration) -> Self {
        self.with(|inner| inner.read_timeout = timeout)
    }

    /// The client's body timeout, named in the 408 a timed-out body gets (default 30 s).
    #[must_use]
    pub fn body_timeout(self, timeout: Duration) -> Self {
        self.with(|inner| inner.body_timeout = timeout)
    }

    /// The largest request body sent (default 4 MiB; 413 above).
    #[must_use]
    pub fn max_request_body_bytes(self, limit: u64) -> Self {
        self.with(|inner| inner.max_request_body = limit)
    }

    /// The largest JSON answer buffered to rewrite its `nextLink` (default 16 MiB; 502 above).
    #[must_use]
    pub fn max_response_rewrite_bytes(self, limit: u64) -> Self {
        self.with(|inner| inner.max_response_rewrite = limit)
    }

    /// Reads JSON answers (to rewrite their links) within `budget`, shared
    /// with the masking layer: one of known length waits for its share,
    /// one of unknown length is refused `503 AirlockMemoryBusy` when it is
    /// spent, and the share goes on with the answer until it is sent.
    #[must_use]
    pub fn memory_budget(self, budget: MemoryBudget) -> Self {
        self.with(|inner| inner.budget = Some(budget))
    }

    fn with(self, change: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Inner::clone(&self.inner);
        change(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }
}

impl<B> tower::Service<Request<B>> for Upstream
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<AirlockBody>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<AirlockBody>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The pooled client has no back-pressure of its own to report.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            let ctx = ErrorContext::from_request(&request);
            Ok(inner
                .forward(request)
                .await
                .unwrap_or_else(|error| error.into_response(&ctx)))
        })
    }
}

/// `Bearer <token>` as a header value.
fn authorization(token: &AccessToken) -> Result<http::HeaderValue, AirlockError> {
    token.authorization().cloned().ok_or_else(|| {
        AirlockError::UpstreamCredential(
            "the token provider returned a token that is not a valid header value".into(),
        )
    })
}

/// Azure refused the request's credential: `401`, or Storage's `403
/// AuthenticationFailed` for a bad signature or token.
fn refused_credential<B>(response: &Response<B>) -> bool {
    response.status() == StatusCode::UNAUTHORIZED
        || (response.status() == StatusCode::FORBIDDEN
            && response
                .headers()
                .get(airlock_core::ERROR_CODE)
                .is_some_and(|code| code == "AuthenticationFailed"))
}

impl Inner {
    /// Sends `request` upstream, bounded by the read timeout.
    async fn send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<hyper::body::Incoming>, AirlockError> {
        tokio::time::timeout(self.read_timeout, self.client.request(request))
            .await
            .map_err(|_| AirlockError::UpstreamTimeout(self.read_timeout))?
            .map_err(|e| AirlockError::UpstreamUnavailable(airlock_http::innermost(&e)))
    }

    async fn forward<B>(&self, request: Request<B>) -> Result<Response<AirlockBody>, AirlockError>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        match request.extensions().get::<Decision>() {
            Some(Decision::Allow { .. }) => {}
            // Approval is a layer of its own; without it, nothing waits.
            Some(Decision::RequireApproval { rule, .. }) => {
                return Err(AirlockError::ApprovalUnavailable {
                    operation: request
                        .extensions()
                        .get::<airlock_core::Operation>()
                        .map_or_else(|| "this request".to_owned(), ToString::to_string),
                    rule: rule.clone(),
                });
            }
            Some(Decision::Deny { .. }) | None => return Err(AirlockError::NotDecided),
        }
        // Resolved once, by the classify step, when it ran; else here. An
        // endpoint an earlier layer resolved must still be one this table
        // allows: the allowlist is enforced here whatever came before.
        let endpoint = match request.extensions().get::<AzureEndpoint>() {
            Some(endpoint) if self.routes.allows(endpoint) => endpoint.clone(),
            Some(AzureEndpoint::KeyVault { vault }) => {
                return Err(AirlockError::HostNotAllowed {
                    host: format!("{vault} (a vault not in upstream.key_vault.vaults)"),
                });
            }
            // Decided for that account: never sent to another one the host names.
            Some(AzureEndpoint::Blob { account }) => {
                return Err(AirlockError::HostNotAllowed {
                    host: format!("{account} (an account not in upstream.storage.accounts)"),
                });
            }
            _ => self.routes.resolve(request.uri(), request.headers())?,
        };
        // Answers name what the client addressed: the gateway, or Azure's
        // own hosts (forward-proxy mode).
        let face = self.routes.face(request.uri(), request.headers());
        let (mut parts, body) = request.into_parts();
        let root = http::uri::PathAndQuery::from_static("/");
        let path_and_query = parts.uri.path_and_query().unwrap_or(&root);
        let uri = self.routes.upstream_uri(&endpoint, path_and_query)?;
        let body = collect_limited(body, &parts.headers, self.max_request_body)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge { limit } => AirlockError::PayloadTooLarge { limit },
                BodyError::Read(source) => {
                    request_body_error(&source, self.max_request_body, self.body_timeout)
                }
            })?;
        let shared_key = match &endpoint {
            AzureEndpoint::Blob { account } => self.shared_keys.get(account),
            _ => None,
        };
        let audience = self.routes.audience(&endpoint);
        let (acted_as, elevated, bearer) = match shared_key {
            Some(key) => (format!("shared-key:{}", key.account()), false, None),
            None => {
                let identity = self.identities.select(&parts.extensions)?;
                let token = identity.token(&parts.extensions, audience).await?;
                (
                    identity.name().to_owned(),
                    identity.elevated(),
                    Some((identity, token)),
                )
            }
        };
        let audit = parts.extensions.remove::<AuditDraft>();
        if let Some(audit) = &audit {
            audit.update(|record| {
                record.upstream_identity = Some(acted_as);
                record.elevated = elevated;
            });
        }

        let request_id = parts.headers.get(REQUEST_ID_HEADER).cloned();
        headers::sanitize_request(&mut parts.headers);
        // Azure joins its Activity Log on the client request id: give every call one.
        if let Some(id) = request_id {
            parts.headers.entry(MS_CLIENT_REQUEST_ID).or_insert(id);
        }
        match (&bearer, shared_key) {
            (Some((_, token)), _) => {
                parts.headers.insert(AUTHORIZATION, authorization(token)?);
            }
            (None, Some(key)) => {
                key.sign(&parts.method, &uri, &mut parts.headers, body.len() as u64);
            }
            (None, None) => return Err(AirlockError::NotDecided),
        }
        if let Some(audit) = &audit {
            let sent = header_text(&parts.headers, &MS_CLIENT_REQUEST_ID);
            audit.update(|record| record.upstream_client_request_id = sent);
        }
        parts.uri = uri;
        parts.version = http::Version::HTTP_11;
        let extensions = std::mem::take(&mut parts.extensions);
        // A bearer request is sent once more, with a new token, when Azure
        // refuses its token and the identity can get another (AZURE.md §7).
        let again = bearer.as_ref().map(|_| {
            (
                parts.method.clone(),
                parts.uri.clone(),
                parts.headers.clone(),
            )
        });
        let started = Instant::now();
        let mut response = self
            .send(Request::from_parts(parts, Full::new(body.clone())))
            .await?;
        if refused_credential(&response)
            && let (Some((identity, token)), Some((method, uri, headers))) = (&bearer, again)
            && identity.rejected(&extensions, audience, token)
        {
            let token = identity.token(&extensions, audience).await?;
            let mut retry = Request::new(Full::new(body));
            *retry.method_mut() = method;
            *retry.uri_mut() = uri;
            *retry.version_mut() = http::Version::HTTP_11;
            *retry.headers_mut() = headers;
            retry
                .headers_mut()
                .insert(AUTHORIZATION, authorization(&token)?);
            response = self.send(retry).await?;
        }
        if let Some(audit) = &audit {
            audit.update(|record| {
                record.upstream_status = Some(response.status().as_u16());
                record.upstream_duration = Some(started.elapsed());
                record.upstream_request_id = header_text(response.headers(), &MS_REQUEST_ID);
                record.upstream_correlation_id =
                    header_text(response.headers(), &MS_CORRELATION_ID);
            });
        }
        if refused_credential(&response) {
            return Err(AirlockError::UpstreamCredential(format!(
                "Azure rejected the gateway's credential for {audience}"
            )));
        }
        let mut response = rewrite::response(
            response,
            &self.routes,
            face,
            self.max_response_rewrite,
            self.budget.as_ref(),
        )
        .await?;
        response.extensions_mut().insert(FromUpstream);
        Ok(response)
    }
}

// Azure's headers, as `HeaderName`s: a `&str` is parsed again on every lookup.
const MS_REQUEST_ID: HeaderName = HeaderName::from_static("x-ms-request-id");
const MS_CORRELATION_ID: HeaderName = HeaderName::from_static("x-ms-correlation-request-id");
const MS_CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("x-ms-client-request-id");

fn header_text(headers: &http::HeaderMap, name: &HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The answer to an error met reading the client's body: tower-http's body
/// timeout is a 408, its length limit a 413, anything else a 400.
pub fn request_body_error(source: &BoxError, limit: u64, body_timeout: Duration) -> AirlockError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(source.as_ref());
    while let Some(error) = cause {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return AirlockError::RequestTimeout(body_timeout);
        }
        if error.is::<http_body_util::LengthLimitError>() {
            return AirlockError::PayloadTooLarge { limit };
        }
        cause = error.source();
    }
    AirlockError::BadRequest {
        code: "InvalidRequestContent",
        message: format!("the request body could not be read: {source}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Endpoint, GatewayHosts, UpstreamConfig};
    use airlock_core::{StaticTokenProvider, empty};
    use tower::ServiceExt as _;

    /// A JSON answer of `len` bytes at `/big`: with its length, or chunked
    /// (in 1 KiB frames, no length) at `/chunked`. Returns the base URL.
    async fn json_server(len: usize) -> String {
        use http_body_util::{BodyExt as _, StreamBody};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let service = hyper::service::service_fn(move |request: Request<_>| async move {
                    let body = format!("{{\"pad\":\"{}\"}}", "x".repeat(len - 10));
                    let builder =
                        http::Response::builder().header("content-type", "application/json");
                    let response = if request.uri().path().starts_with("/chunked") {
                        let frames: Vec<Result<_, std::convert::Infallible>> = body
                            .into_bytes()
                            .chunks(1024)
                            .map(|c| Ok(http_body::Frame::data(bytes::Bytes::copy_from_slice(c))))
                            .collect();
                        builder.body(StreamBody::new(futures_util::stream::iter(frames)).boxed())
                    } else {
                        builder.body(
                            http_body_util::Full::new(bytes::Bytes::from(body))
                                .map_err(|e| match e {})
                                .boxed(),
                        )
                    };
                    Ok::<_, std::convert::Infallible>(response.unwrap())
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
                );
            }
        });
        format!("http://{address}")
    }

    /// An upstream from `config` (TOML), the gateway named `gw.example`.
    fn upstream_with(config: &str) -> Upstream {
        let config: UpstreamConfig = toml::from_str(config).unwrap();
        let routes = crate::Routes::new(
            &config,
            &GatewayHosts::new(Endpoint::parse("https://gw.example").unwrap()),
        )
        .unwrap();
        let client = airlock_http::ClientBuilder::new(airlock_http::TrustRoots::none())
            .allow_http(true)
            .build()
            .unwrap();
        Upstream::new(routes, client, Arc::new(StaticTokenProvider::new("t")))
    }

    fn get(path: &str) -> Request<airlock_core::AirlockBody> {
        Request::get(format!("{path}?api-version=2021-04-01"))
            .header(http::header::HOST, "gw.example")
            .extension(Decision::Allow {
                rule: "test".into(),
            })
            .body(empty())
            .unwrap()
    }

    /// JSON answers read whole (to rewrite their links) share one memory
    /// budget: a known length waits for room, a chunked answer past it is
    /// refused, and the answer holds its share until it is dropped.
    #[tokio::test]
    async fn answers_read_whole_stay_within_the_memory_budget() {
        let base = json_server(6 * 1024).await;
        let budget = MemoryBudget::new(8 * 1024);
        let upstream = upstream_with(&format!(
            "arm_url = \"{base}\"\nallow_insecure_http = true\ncredential = {{ kind = \"static\", token = \"t\" }}"
        ))
        .memory_budget(budget.clone());
        let held = upstream.clone().oneshot(get("/big")).await.unwrap();
        assert_eq!(held.status(), StatusCode::OK);
        assert!(held.body().buffered().is_some());

        let busy = upstream.clone().oneshot(get("/chunked")).await.unwrap();
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.headers()["x-ms-error-code"], "AirlockMemoryBusy");

        let waiting = tokio::spawn(upstream.clone().oneshot(get("/big")));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished(), "6 KiB do not fit beside 6 of 8 KiB");
        drop(held);
        let waited = waiting.await.unwrap().unwrap();
        assert_eq!(waited.status(), StatusCode::OK);
        drop(waited);
        let chunked = upstream.oneshot(get("/chunked")).await.unwrap();
        assert_eq!(chunked.status(), StatusCode::OK);
        assert_eq!(
            http_body_util::BodyExt::collect(chunked.into_body())
                .await
                .unwrap()
                .to_bytes()
                .len(),
            6 * 1024
        );
    }

    /// An endpoint an earlier layer put in the extensions is forwarded to
    /// only if the routing table lists it: the allowlist holds whatever an
    /// embedder's classify step resolved.
    #[tokio::test]
    async fn an_unlisted_vault_or_account_from_the_extensions_is_refused_unsent() {
        let upstream = upstream_with(
            "key_vault.vaults = [\"kv1\"]\nstorage.accounts = [\"logs1\"]\ncredential = { kind = \"static\", token = \"t\" }",
        );
        // A vault, and a storage account, other than the listed one the host names.
        for (host, endpoint) in [
            (
                "kv1.gw.example",
                AzureEndpoint::KeyVault {
                    vault: "elsewhere".into(),
                },
            ),
            (
                "logs1.blob.gw.example",
                AzureEndpoint::Blob {
                    account: "elsewhere".into(),
                },
            ),
        ] {
            let request = Request::get("/x?api-version=7.4")
                .header(http::header::HOST, host)
                .extension(Decision::Allow {
                    rule: "test".into(),
                })
                .extension(endpoint)
                .body(empty())
                .unwrap();
            let response = upstream.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{host}");
            assert_eq!(
                response.headers()["x-ms-error-code"],
                "AirlockHostNotAllowed"
            );
        }
    }
}
