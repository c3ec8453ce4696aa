//! `ClassifyLayer` in front of a tower service: what reaches the service,
//! and what a client sees when the request is refused.

#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use airlock_azure::{AzureEndpoint, ClassifyLayer, EndpointResolver};
use airlock_core::{AirlockBody, AirlockError, AuditDraft, Operation, Plane, full};
use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt;
use tower::{Layer, ServiceExt, service_fn};

/// What the inner service saw.
#[derive(Debug, Default, Clone)]
struct Seen {
    operation: Option<Operation>,
    endpoint: Option<AzureEndpoint>,
    buffered: bool,
    body: Bytes,
}

/// Answers for the host in the `Host` header: the ARM host, a vault, or a refusal.
fn resolver() -> EndpointResolver {
    Arc::new(|_uri: &http::Uri, headers: &http::HeaderMap| {
        let host = headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("management.azure.com");
        if host == "management.azure.com" {
            Ok(AzureEndpoint::Arm)
        } else if let Some(vault) = host.strip_suffix(".vault.azure.net") {
            Ok(AzureEndpoint::KeyVault {
                vault: vault.to_owned(),
            })
        } else {
            Err(AirlockError::HostNotAllowed {
                host: host.to_owned(),
            })
        }
    })
}

struct Answer {
    status: StatusCode,
    code: Option<String>,
    body: serde_json::Value,
    seen: Option<Seen>,
}

async fn through<B>(layer: &ClassifyLayer, request: Request<B>) -> Answer
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<airlock_core::BoxError>,
{
    let seen = Arc::new(Mutex::new(None));
    let record = seen.clone();
    let service = layer.layer(service_fn(move |request: Request<AirlockBody>| {
        let record = record.clone();
        async move {
            let operation = request.extensions().get::<Operation>().cloned();
            let endpoint = request.extensions().get::<AzureEndpoint>().cloned();
            let buffered = request.body().buffered().is_some();
            let body = request.into_body().collect().await.unwrap().to_bytes();
            *record.lock().unwrap() = Some(Seen {
                operation,
                endpoint,
                buffered,
                body,
            });
            Ok::<_, Infallible>(Response::new(full("from the service")))
        }
    }));
    let response = service.oneshot(request).await.unwrap();
    let status = response.status();
    let code = response
        .headers()
        .get("x-ms-error-code")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::String(
        String::from_utf8_lossy(&bytes).into_owned(),
    ));
    let seen = seen.lock().unwrap().clone();
    Answer {
        status,
        code,
        body,
        seen,
    }
}

fn layer() -> ClassifyLayer {
    let resolver = resolver();
    ClassifyLayer::new(move |uri: &http::Uri, headers: &http::HeaderMap| resolver(uri, headers))
}

const DEPLOY: &str = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Resources/deployments/d1?api-version=2024-03-01";

#[tokio::test]
async fn the_service_sees_the_operation_the_digest_and_the_same_body() {
    let body = r#"{"properties":{"mode":"Complete","template":{"resources":[{"type":"Microsoft.Web/sites","name":"app"}]}}}"#;
    let draft = AuditDraft::default();
    let request = Request::put(DEPLOY)
        .header("host", "management.azure.com")
        .extension(draft.clone())
        .body(full(body))
        .unwrap();

    let answer = through(&layer(), request).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, "from the service");
    let seen = answer.seen.unwrap();
    assert_eq!(seen.body, body, "the body must reach the service unchanged");
    assert_eq!(seen.endpoint, Some(AzureEndpoint::Arm));
    assert!(seen.buffered, "the body must go on buffered, read once");
    let op = seen.operation.unwrap();
    assert_eq!(op.name(), "Microsoft.Resources/deployments/write");
    assert_eq!(op.children().len(), 2);
    assert_eq!(draft.snapshot().operation, Some(op));
}

#[tokio::test]
async fn key_vault_hosts_get_data_actions() {
    let request = Request::get("/secrets/db-password?api-version=7.5")
        .header("host", "kv-agents.vault.azure.net")
        .body(full(""))
        .unwrap();
    let op = through(&layer(), request)
        .await
        .seen
        .unwrap()
        .operation
        .unwrap();
    assert_eq!(
        op.name(),
        "Microsoft.KeyVault/vaults/secrets/getSecret/action"
    );
    assert_eq!(op.plane(), Plane::Data);
    assert_eq!(
        op.scope().as_str(),
        "/providers/Microsoft.KeyVault/vaults/kv-agents/secrets/db-password"
    );
}

#[tokio::test]
async fn hosts_the_resolver_refuses_get_its_error() {
    let request = Request::get("/anything?api-version=1")
        .header("host", "evil.example")
        .body(full(""))
        .unwrap();
    let answer = through(&layer(), request).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(answer.code.as_deref(), Some("AirlockHostNotAllowed"));
    assert!(answer.seen.is_none());
}

#[tokio::test]
async fn malformed_requests_are_refused_in_the_arm_shape_and_audited() {
    let draft = AuditDraft::default();
    let request = Request::delete(
        "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
    )
    .header("x-airlock-request-id", "rid-9")
    .extension(draft.clone())
    .body(full(""))
    .unwrap();
    let answer = through(&layer(), request).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.code.as_deref(), Some("MissingApiVersionParameter"));
    assert_eq!(answer.body["error"]["code"], "MissingApiVersionParameter");
    assert_eq!(
        answer.body["error"]["message"],
        "The api-version query parameter (?api-version=) is required for all requests; add '?api-version=<version>' with the version the Azure REST API reference gives for this operation"
    );
    assert_eq!(answer.body["error"]["airlock"]["requestId"], "rid-9");
    assert!(
        answer.seen.is_none(),
        "a refused request reached the service"
    );
    // The recorder reads the code from the answer's `x-ms-error-code`.
    assert_eq!(answer.code.as_deref(), Some("MissingApiVersionParameter"));
    assert!(draft.snapshot().operation.is_none());
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_declared_or_not() {
    let layer = layer().max_body_bytes(16);
    // Declared too long: refused before reading.
    let declared = Request::put(DEPLOY)
        .header(CONTENT_LENGTH, HeaderValue::from_static("1000"))
        .body(full("{}"))
        .unwrap();
    let answer = through(&layer, declared).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.code.as_deref(), Some("AirlockRequestTooLarge"));

    // Streamed with no length: cut at the limit.
    let streamed = Request::put(DEPLOY)
        .body(Chunks(vec![Bytes::from_static(b"{\"aaaa\": 1}"); 8]))
        .unwrap();
    let answer = through(&layer, streamed).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(answer.seen.is_none());

    // At the limit: accepted.
    let body = r#"{"properties":{}}"#;
    let fits = Request::put(DEPLOY).body(full(body)).unwrap();
    let answer = through(&self::layer().max_body_bytes(body.len() as u64), fits).await;
    assert_eq!(answer.status, StatusCode::OK);
}

/// A body of several chunks with no declared length, like a chunked upload.
struct Chunks(Vec<Bytes>);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let chunks = &mut self.get_mut().0;
        Poll::Ready((!chunks.is_empty()).then(|| Ok(Frame::data(chunks.remove(0)))))
    }
}
