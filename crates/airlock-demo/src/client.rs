//! The scripted agent's HTTP client: HTTPS (trusting a given CA) or HTTP,
//! HTTP/2 where offered, `*.localhost` resolved to loopback; directly or
//! through a forward proxy.

use airlock_http::{ClientBuilder, PooledClient, ProxiedClient, TrustRoots};
use anyhow::Context as _;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};

/// A minimal client for scripted agents, the demo and end-to-end tests.
#[derive(Clone, Debug)]
pub struct AgentClient {
    client: Transport,
    base: String,
    token: Option<String>,
}

/// Straight to the base URL's host, or through a forward proxy's `CONNECT`.
#[derive(Clone, Debug)]
enum Transport {
    Direct(Box<PooledClient>),
    Proxied(Box<ProxiedClient>),
}

/// A response, fully read.
#[derive(Clone, Debug)]
pub struct AgentResponse {
    /// Status code.
    pub status: StatusCode,
    /// Protocol version spoken.
    pub version: Version,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl AgentResponse {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl AgentClient {
    /// A client for `base` (`https://localhost:8443`), trusting `ca_pem` in
    /// addition to nothing else (the demo's CA), or plain HTTP when `None`.
    pub fn new(base: &str, ca_pem: Option<&str>) -> anyhow::Result<Self> {
        // The demo's CA alone; with no CA, plain HTTP only.
        let roots = match ca_pem {
            Some(pem) => TrustRoots::none().with_ca_pem(pem),
            None => TrustRoots::none(),
        };
        let client = ClientBuilder::new(roots)
            .allow_http(true)
            .build()
            .context("building the agent's HTTPS client")?;
        Ok(Self {
            client: Transport::Direct(Box::new(client)),
            base: base.trim_end_matches('/').to_owned(),
            token: None,
        })
    }

    /// A client that reaches `base` (an Azure host, `https://management.azure.com`)
    /// through the forward proxy at `proxy`, trusting the CAs in `ca_pems`
    /// (the proxy's listener and the one it mints certificates from), and
    /// identified at each `CONNECT` by `proxy_token`
    /// (`Proxy-Authorization: Bearer`).
    pub fn through_proxy(
        base: &str,
        proxy: &str,
        ca_pems: &[&str],
        proxy_token: &str,
    ) -> anyhow::Result<Self> {
        let roots = ca_pems
            .iter()
            .fold(TrustRoots::none(), |roots, pem| roots.with_ca_pem(*pem));
        let authorization = http::HeaderValue::from_str(&format!("Bearer {proxy_token}"))
            .context("the proxy token is not a header value")?;
        let client = ClientBuilder::new(roots)
            .build_through_proxy(proxy.parse().context("the proxy URL")?, Some(authorization))
            .context("building the agent's proxied HTTPS client")?;
        Ok(Self {
            client: Transport::Proxied(Box::new(client)),
            base: base.trim_end_matches('/').to_owned(),
            token: None,
        })
    }

    /// Sends `Authorization: Bearer <token>` with every request.
    #[must_use]
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request to an absolute URL or a path under the base URL.
    pub async fn send(
        &self,
        method: Method,
        url_or_path: &str,
        headers: &[(&str, &str)],
        body: Option<Bytes>,
    ) -> anyhow::Result<AgentResponse> {
        let url = if url_or_path.starts_with("http://") || url_or_path.starts_with("https://") {
            url_or_path.to_owned()
        } else {
            format!("{}{url_or_path}", self.base)
        };
        let mut request = Request::builder().method(method).uri(&url);
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(body.unwrap_or_default()))
            .context("building the request")?;
        let response = match &self.client {
            Transport::Direct(client) => client.request(request).await,
            Transport::Proxied(client) => client.request(request).await,
        }
        .map_err(|e| anyhow::anyhow!("{}", airlock_http::innermost(&e)))
        .with_context(|| format!("sending to {url}"))?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .context("reading the response body")?
            .to_bytes();
        Ok(AgentResponse {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            body,
        })
    }

    /// `GET` shorthand.
    pub async fn get(&self, url_or_path: &str) -> anyhow::Result<AgentResponse> {
        self.send(Method::GET, url_or_path, &[], None).await
    }
}
