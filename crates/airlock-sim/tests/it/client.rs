//! A small HTTP client over hyper-util's pooled client, for talking to the
//! simulator over loopback.

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// The token tests present to a simulator started with `expected_token(TOKEN)`.
pub(crate) const TOKEN: &str = "test-token";

/// An answer, fully read.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Answer {
    /// The body as JSON.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// A header as text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// A client; requests to `*.localhost` go to 127.0.0.1 with the name kept in `Host`.
#[derive(Clone, Debug)]
pub(crate) struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Http {
    pub(crate) fn new() -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// GET with the test token.
    pub(crate) async fn get(&self, url: &str) -> Answer {
        self.send(
            Method::GET,
            url,
            &[("authorization", &format!("Bearer {TOKEN}"))],
            None,
        )
        .await
    }

    /// Any method with the test token and an optional body.
    pub(crate) async fn call(&self, method: Method, url: &str, body: Option<&str>) -> Answer {
        self.send(
            method,
            url,
            &[("authorization", &format!("Bearer {TOKEN}"))],
            body,
        )
        .await
    }

    /// Sends exactly the given headers.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Answer {
        let uri: Uri = url.parse().unwrap();
        let host = uri.host().unwrap().to_owned();
        let mut builder = Request::builder().method(method);
        let target = if host.ends_with(".localhost") {
            builder = builder.header("host", uri.authority().unwrap().as_str());
            let port = uri.port_u16().unwrap_or(80);
            format!(
                "http://127.0.0.1:{port}{}",
                uri.path_and_query().map_or("/", |pq| pq.as_str())
            )
        } else {
            url.to_owned()
        };
        builder = builder.uri(target);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default().to_owned())))
            .unwrap();
        let response = self.client.request(request).await.unwrap();
        let (parts, body) = response.into_parts();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    }
}
