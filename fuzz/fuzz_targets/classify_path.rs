//! Fuzzes request classification by path: whatever method, path and query a
//! client sends, `airlock_azure::classify` answers an operation or a
//! `ClassifyError` (a 400), never a panic; and it reads names as ARM does,
//! so the upper-cased path names the same operation (ignoring ASCII case) on
//! the same normalized scope.
//!
//! Input layout: the first byte picks the method and the endpoint (ARM or a
//! Key Vault); the rest, read as UTF-8 (lossily), is `path[?query]`. Each
//! input goes (a) straight to `classify`, and (b) through `ClassifyLayer`
//! over a trivial service, as the request line of a real request (inputs no
//! URI can carry are skipped), where the answer must be 200 or 400.
//!
//! Run it with `cargo fuzz run classify_path fuzz/seeds/classify_path`.

#![no_main]

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};

use airlock_azure::{AzureEndpoint, ClassifyLayer, ClassifyRequest, classify};
use airlock_core::{AirlockBody, empty};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use libfuzzer_sys::fuzz_target;
use tokio::runtime::Runtime;
use tower::{Layer, ServiceExt, service_fn};

const METHODS: [&str; 8] = [
    "GET", "HEAD", "PUT", "PATCH", "DELETE", "POST", "OPTIONS", "MERGE",
];

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    })
}

fn check(method: &Method, endpoint: &AzureEndpoint, path: &str, query: Option<&str>) {
    let headers = HeaderMap::new();
    let classify_path = |path: &str| {
        classify(&ClassifyRequest {
            method,
            endpoint,
            path,
            query,
            headers: &headers,
            body: b"",
        })
    };
    let Ok(operation) = classify_path(path) else {
        return;
    };
    for op in operation.flatten() {
        assert!(op.scope().as_str().starts_with('/'), "scope {}", op.scope());
    }
    let shouted = path.to_ascii_uppercase();
    let upper = classify_path(&shouted).expect("the upper-cased path was refused");
    assert!(
        operation.name().eq_ignore_ascii_case(upper.name()),
        "{} vs {}",
        operation.name(),
        upper.name()
    );
    assert_eq!(operation.scope(), upper.scope());
    assert_eq!(operation.is_unknown(), upper.is_unknown());
}

async fn through_layer(endpoint: AzureEndpoint, method: Method, uri: Uri) {
    let layer = ClassifyLayer::new(Arc::new(move |_: &Uri, _: &HeaderMap| Ok(endpoint.clone())));
    let service = layer.layer(service_fn(|_: Request<AirlockBody>| async {
        Ok::<_, Infallible>(Response::new(empty()))
    }));
    let mut request = Request::new(empty());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    let Ok(response) = service.oneshot(request).await;
    assert!(
        response.status() == StatusCode::OK || response.status() == StatusCode::BAD_REQUEST,
        "unexpected status {}",
        response.status()
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let method = Method::from_bytes(METHODS[usize::from(selector) % METHODS.len()].as_bytes())
        .expect("a valid method");
    let endpoint = if selector >= 0xC0 {
        AzureEndpoint::KeyVault {
            vault: "kv1".to_owned(),
        }
    } else {
        AzureEndpoint::Arm
    };
    let input = String::from_utf8_lossy(rest);
    let (path, query) = match input.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (input.as_ref(), None),
    };
    check(&method, &endpoint, path, query);
    if let Ok(uri) = input.parse::<Uri>() {
        runtime().block_on(through_layer(endpoint, method, uri));
    }
});
