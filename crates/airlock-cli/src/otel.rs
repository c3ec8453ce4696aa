//! OpenTelemetry trace export (feature `otel`): the `tracing` spans the
//! gateway opens (`request` per proxied request, `admin` per admin call,
//! with their method, path, request id, principal and rule) become
//! OpenTelemetry spans, batched and sent as OTLP/HTTP protobuf to the
//! collector at `[log] otlp_endpoint`, as service `airlock`.
//!
//! The exporter sends through `airlock-http`'s client (rustls with
//! aws-lc-rs, system roots plus the usual `SSL_CERT_FILE`), on the gateway's
//! runtime: the OpenTelemetry SDK exports from a thread of its own, and this
//! client hands each export to the runtime. Spans carry no token, secret or
//! body. The W3C `traceparent` of incoming requests is not followed yet:
//! each request is a trace of its own.

use std::sync::Arc;
use std::time::Duration;

use airlock_core::HttpClient as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer as _;

/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// A batching tracer provider exporting to `endpoint` (the OTLP/HTTP
/// traces URL), its requests run on `runtime`.
pub(crate) fn provider(
    endpoint: &str,
    runtime: tokio::runtime::Handle,
) -> anyhow::Result<SdkTracerProvider> {
    // The collector is the operator's: plain HTTP is allowed to it (spans
    // carry no secret), https is verified against the system roots.
    let pooled = airlock_http::ClientBuilder::new(airlock_http::TrustRoots::system())
        .allow_http(true)
        .connect_timeout(Duration::from_secs(5))
        .build()?;
    let client = OnRuntime {
        client: Arc::new(airlock_http::HttpsClient::new(pooled, EXPORT_TIMEOUT)),
        runtime,
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| anyhow::anyhow!("[log] otlp_endpoint: {e}"))?;
    Ok(SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name("airlock").build())
        .with_batch_exporter(exporter)
        .build())
}

/// The `tracing` layer turning spans into `provider`'s spans.
pub(crate) fn layer(provider: &SdkTracerProvider) -> super::telemetry::BoxedLayer {
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("airlock"))
        .boxed()
}

/// `airlock-http`'s client, driven on the tokio runtime whichever thread
/// the SDK exports from.
struct OnRuntime {
    client: Arc<airlock_http::HttpsClient>,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for OnRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnRuntime").finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl HttpClient for OnRuntime {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = Arc::clone(&self.client);
        let sent = self
            .runtime
            .spawn(async move { client.send(request).await })
            .await?;
        Ok(sent?)
    }
}
