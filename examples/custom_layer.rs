//! Write your own layer that refuses in Airlock's ARM-shaped envelope, and
//! stack it behind `IdentityLayer` on an ordinary axum `Router`.
//!
//! The layer allows each principal a fixed number of requests; past it, it
//! answers `429 ContosoQuotaExceeded` through `AirlockError::custom`, the
//! same envelope, `x-ms-error-code` header and request id every Airlock
//! refusal carries, so Azure SDKs print it well and the recorder records
//! its code.
//!
//! ```text
//! cargo run -p airlock-examples --example custom_layer
//! ```

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use airlock_core::{AirlockBody, AirlockError, BoxFuture, HttpClient, Principal};
use airlock_identity::http::{ClientBuilder, HttpsClient, TrustRoots};
use airlock_identity::{IdentityLayer, JwtValidator, KeySource};
use airlock_sim::{DevIssuer, TENANT_ID, TokenSpec};
use axum::Router;
use axum::routing::get;
use http::{Request, Response, StatusCode};
use serde_json::Value;
use tower::{Layer, Service};

/// Allows each principal `limit` requests.
#[derive(Clone, Debug)]
struct QuotaLayer {
    limit: u32,
    used: Arc<Mutex<HashMap<String, u32>>>,
}

impl QuotaLayer {
    fn new(limit: u32) -> Self {
        Self {
            limit,
            used: Arc::default(),
        }
    }
}

impl<S> Layer<S> for QuotaLayer {
    type Service = QuotaService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        QuotaService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The shape of every Airlock layer: `FooLayer` makes `FooService`, which
/// answers `Response<AirlockBody>` and refuses with an `AirlockError`.
#[derive(Clone, Debug)]
struct QuotaService<S> {
    inner: S,
    layer: QuotaLayer,
}

impl<S, B, ResBody> Service<Request<B>> for QuotaService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>, Error = Infallible> + Send + 'static,
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
        // The identity layer in front put the verified caller here.
        let who = request
            .extensions()
            .get::<Principal>()
            .map_or_else(String::new, |principal| principal.id().to_owned());
        let used = {
            let mut used = self
                .layer
                .used
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let count = used.entry(who).or_default();
            *count += 1;
            *count
        };
        if used > self.layer.limit {
            let refusal = AirlockError::custom(
                StatusCode::TOO_MANY_REQUESTS,
                "ContosoQuotaExceeded",
                format!(
                    "this agent used its {} requests; ask the platform team for more",
                    self.layer.limit
                ),
            )
            .into_response_for(&request);
            return Box::pin(async move { Ok(refusal) });
        }
        let answer = self.inner.call(request);
        Box::pin(async move { Ok(answer.await?.map(AirlockBody::new)) })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let issuer = DevIssuer::start(TENANT_ID).await?;
    // The development issuer speaks plain HTTP on loopback.
    let client = Arc::new(HttpsClient::new(
        ClientBuilder::new(TrustRoots::none())
            .allow_http(true)
            .build()?,
        Duration::from_secs(10),
    ));
    let validator = JwtValidator::builder()
        .tenant(TENANT_ID)
        .audience("api://airlock")
        .keys(KeySource::Discovery(issuer.issuer()))
        .http_client(client.clone())
        .build()
        .await?;

    // Layers listed outermost first: identity, then the quota.
    let app = Router::new()
        .route("/work", get(|| async { "done" }))
        .layer(QuotaLayer::new(2))
        .layer(IdentityLayer::new(validator));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/work", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let token = issuer.mint(&TokenSpec::agent());
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        let request = Request::get(&url)
            .header("authorization", format!("Bearer {token}"))
            .body(bytes::Bytes::new())?;
        let response = client.send(request).await?;
        statuses.push(response.status().as_u16());
        last = Some(response);
    }
    println!("statuses: {statuses:?}");
    assert_eq!(statuses, [200, 200, 429]);
    let refused = last.ok_or_else(|| anyhow::anyhow!("no answer"))?;
    assert_eq!(refused.headers()["x-ms-error-code"], "ContosoQuotaExceeded");
    let body: Value = serde_json::from_slice(refused.body())?;
    println!("refused with:  {body}");
    assert_eq!(body["error"]["code"], "ContosoQuotaExceeded");
    assert_eq!(body["error"]["airlock"]["retryable"], false);

    server.abort();
    issuer.shutdown().await;
    Ok(())
}
