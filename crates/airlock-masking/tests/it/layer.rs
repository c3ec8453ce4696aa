//! `MaskingLayer` in front of a tower service standing in for Azure: what
//! the client gets back, what goes upstream, and what the audit draft holds.

#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::io::Write as _;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use airlock_core::{
    AirlockBody, AuditDraft, Operation, Plane, Principal, PrincipalKind, ResourceScope, empty, full,
};
use airlock_masking::{JsonMasker, MaskRule, MaskingLayer, REDACTED, TokenKey};
use bytes::Bytes;
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::{ServiceBuilder, ServiceExt, service_fn};

const LIST_KEYS: &str = "Microsoft.Storage/storageAccounts/listKeys/action";
const SET_SECRET: &str = "Microsoft.KeyVault/vaults/secrets/setSecret/action";
const KEY1: &str = "c2VjcmV0LWtleS1vbmUtZm9yLXRoZS1zdG9yYWdlLWFjY291bnQ=";
const KEY2: &str = "c2VjcmV0LWtleS10d28tZm9yLXRoZS1zdG9yYWdlLWFjY291bnQ=";
const STORAGE_KEY: &str =
    "RCCCPP3m8cJrMPkOx90B5Ih1NKIPCw0Ew27YDnHg/XewdnDrlAvVM1+XParYYZuR/8kR9XzO1Fi7vyzgN1PJvQ==";

/// A response body sent in several frames, each after a `Pending` (as from
/// a socket), so the layer must read a real stream.
struct Chunks {
    chunks: Vec<Bytes>,
    ready: bool,
}

impl Chunks {
    fn new(chunks: Vec<Bytes>) -> Self {
        Self {
            chunks,
            ready: false,
        }
    }
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if this.chunks.is_empty() {
            return Poll::Ready(None);
        }
        if !this.ready {
            this.ready = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        this.ready = false;
        Poll::Ready(Some(Ok(Frame::data(this.chunks.remove(0)))))
    }
}

/// What the stand-in for Azure answers.
#[derive(Clone)]
struct Reply {
    status: StatusCode,
    headers: Vec<(&'static str, String)>,
    chunks: Vec<Bytes>,
}

impl Reply {
    fn json(body: &Value) -> Self {
        let body = body.to_string();
        Self {
            status: StatusCode::OK,
            headers: vec![
                ("content-type", "application/json; charset=utf-8".into()),
                ("content-length", body.len().to_string()),
                ("x-ms-request-id", "upstream-1".into()),
            ],
            chunks: vec![Bytes::from(body)],
        }
    }
    fn raw(content_type: &str, body: impl Into<Bytes>) -> Self {
        Self {
            status: StatusCode::OK,
            headers: vec![("content-type", content_type.into())],
            chunks: vec![body.into()],
        }
    }
    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
    /// The body split into `n`-byte frames.
    fn in_frames_of(mut self, n: usize) -> Self {
        let all: Vec<u8> = self.chunks.concat();
        self.chunks = all.chunks(n).map(Bytes::copy_from_slice).collect();
        self
    }
}

/// What reached the stand-in for Azure.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Option<(HeaderMap, Bytes)>>>);

impl Seen {
    fn headers(&self) -> HeaderMap {
        self.0.lock().unwrap().as_ref().unwrap().0.clone()
    }
    fn body(&self) -> Bytes {
        self.0.lock().unwrap().as_ref().unwrap().1.clone()
    }
}

const SCOPE: &str =
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st";

fn op(name: &str) -> Operation {
    Operation::new(name, Plane::Management, ResourceScope::new(SCOPE))
}

fn layer() -> MaskingLayer {
    MaskingLayer::new(
        JsonMasker::builder(TokenKey::new([31u8; 32]).unwrap())
            .rule(MaskRule::new([LIST_KEYS], ["$.keys[*].value"]).unwrap())
            .rule(MaskRule::new([SET_SECRET], ["$.value"]).unwrap())
            .build(),
    )
}

/// The token of `secret` in `field`, read at [`op`]'s scope by nobody identified.
fn token(field: &str, secret: &str) -> String {
    TokenKey::new([31u8; 32])
        .unwrap()
        .scope(None, SCOPE)
        .token(field, secret.as_bytes())
}

type Answer = Response<AirlockBody>;

/// Sends `request` through `layer` (with `operation` and `draft` in its
/// extensions, as the classify and recorder layers would put them) to an
/// upstream answering `reply`.
async fn exchange(
    layer: MaskingLayer,
    operation: Option<Operation>,
    draft: Option<AuditDraft>,
    request: Request<AirlockBody>,
    reply: Reply,
) -> (Answer, Seen) {
    let seen = Seen::default();
    let recorded = seen.clone();
    let service = ServiceBuilder::new()
        .map_request(move |mut request: Request<AirlockBody>| {
            if let Some(operation) = &operation {
                request.extensions_mut().insert(operation.clone());
            }
            if let Some(draft) = &draft {
                request.extensions_mut().insert(draft.clone());
            }
            request
        })
        .layer(layer)
        .service(service_fn(move |request: Request<AirlockBody>| {
            let recorded = recorded.clone();
            let reply = reply.clone();
            async move {
                let (parts, body) = request.into_parts();
                let body = body.collect().await.unwrap().to_bytes();
                *recorded.0.lock().unwrap() = Some((parts.headers, body));
                let mut response = Response::new(Chunks::new(reply.chunks));
                *response.status_mut() = reply.status;
                for (name, value) in reply.headers {
                    response.headers_mut().append(name, value.parse().unwrap());
                }
                Ok::<_, Infallible>(response)
            }
        }));
    let response = service.oneshot(request).await.unwrap();
    (response, seen)
}

fn post(path: &str) -> Request<AirlockBody> {
    Request::post(path).body(empty()).unwrap()
}

async fn text(response: Answer) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn list_keys_body() -> Value {
    json!({"keys": [
        {"keyName": "key1", "value": KEY1, "permissions": "FULL"},
        {"keyName": "key2", "value": KEY2, "permissions": "FULL"}
    ]})
}

/// Asserts an ARM-shaped `AirlockMaskingFailed` and returns its message.
async fn masking_failed(response: Answer) -> String {
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(
        response.headers()["x-ms-error-code"],
        "AirlockMaskingFailed"
    );
    assert!(response.headers().get("x-airlock-masked").is_none());
    let body: Value = serde_json::from_str(&text(response).await).unwrap();
    assert_eq!(body["error"]["code"], "AirlockMaskingFailed");
    assert_eq!(body["error"]["airlock"]["retryable"], false);
    let message = body["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.starts_with("Azure's response could not be masked, so it is withheld: "),
        "{message}"
    );
    message
}

#[tokio::test]
async fn json_is_masked_and_recorded() {
    let draft = AuditDraft::default();
    let (response, _) = exchange(
        layer(),
        Some(op(LIST_KEYS)),
        Some(draft.clone()),
        post("/listKeys"),
        Reply::json(&list_keys_body()),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-airlock-masked"], "2");
    assert!(response.headers().get(CONTENT_LENGTH).is_none());
    assert_eq!(
        response.headers()[CONTENT_TYPE],
        "application/json; charset=utf-8"
    );
    assert_eq!(response.headers()["x-ms-request-id"], "upstream-1");
    let body = text(response).await;
    assert!(!body.contains(KEY1) && !body.contains(KEY2), "{body}");
    let value: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(value["keys"][0]["value"], token("$.keys[0].value", KEY1));
    assert_eq!(value["keys"][1]["value"], token("$.keys[1].value", KEY2));
    assert_eq!(value["keys"][1]["keyName"], "key2");

    let record = draft.snapshot();
    assert_eq!(record.masked_count, 2);
    assert_eq!(record.masked_paths, ["$.keys[0].value", "$.keys[1].value"]);
    let excerpt = record.response_excerpt.unwrap();
    assert_eq!(excerpt, body);
    assert_eq!(record.request_excerpt, None, "an empty request body");
}

#[tokio::test]
async fn nothing_found_still_says_so() {
    let body = json!({"name": "st", "properties": {"provisioningState": "Succeeded"}});
    let (response, _) = exchange(
        layer(),
        Some(op("Microsoft.Storage/storageAccounts/read")),
        None,
        Request::get("/st").body(empty()).unwrap(),
        Reply::json(&body),
    )
    .await;
    assert_eq!(response.headers()["x-airlock-masked"], "0");
    // Unchanged, so its length still holds.
    assert_eq!(
        response.headers()[CONTENT_LENGTH],
        body.to_string().len().to_string()
    );
    assert_eq!(text(response).await, body.to_string());
}

#[tokio::test]
async fn detectors_mask_responses_no_rule_covers() {
    let body = json!({"properties": {"storage": format!("DefaultEndpointsProtocol=https;AccountName=st;AccountKey={STORAGE_KEY}")}});
    let (response, _) = exchange(
        layer(),
        Some(op("Microsoft.Web/sites/config/read")),
        None,
        Request::get("/config").body(empty()).unwrap(),
        Reply::json(&body),
    )
    .await;
    assert_eq!(response.headers()["x-airlock-masked"], "1");
    let body = text(response).await;
    assert!(!body.contains(STORAGE_KEY));
    assert!(body.contains(&format!("AccountKey={REDACTED}")), "{body}");

    let (response, _) = exchange(
        layer(),
        Some(op("Microsoft.Web/sites/read")),
        None,
        Request::get("/log").body(empty()).unwrap(),
        Reply::raw(
            "text/plain; charset=utf-8",
            "connecting with Password=hunter2;\n",
        ),
    )
    .await;
    assert_eq!(response.headers()["x-airlock-masked"], "1");
    assert_eq!(
        text(response).await,
        format!("connecting with Password={REDACTED};\n")
    );
}

/// Blob metadata comes back as `x-ms-meta-*` headers, with every download,
/// `HEAD` and `?comp=metadata` read: the detectors run over them too, even
/// when the body is binary and streams through.
#[tokio::test]
async fn secrets_in_metadata_headers_are_masked_on_every_answer() {
    let conn = format!("DefaultEndpointsProtocol=https;AccountName=st;AccountKey={STORAGE_KEY};");
    for (method, reply) in [
        (
            Method::HEAD,
            Reply::raw("application/octet-stream", Bytes::new()),
        ),
        (
            Method::GET,
            Reply::raw("application/octet-stream", &b"\x00\x01binary"[..]),
        ),
    ] {
        let draft = AuditDraft::default();
        let (response, _) = exchange(
            layer(),
            Some(op(
                "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
            )),
            Some(draft.clone()),
            Request::builder()
                .method(method.clone())
                .uri("/c/b")
                .body(empty())
                .unwrap(),
            reply
                .header("x-ms-meta-conn", &conn)
                .header("x-ms-meta-owner", "team-a"),
        )
        .await;
        let value = response.headers()["x-ms-meta-conn"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            !value.contains(STORAGE_KEY) && value.contains(REDACTED),
            "{method}: {value}"
        );
        assert_eq!(response.headers()["x-ms-meta-owner"], "team-a");
        assert_eq!(response.headers()["x-airlock-masked"], "1", "{method}");
        let record = draft.snapshot();
        assert_eq!(
            record.masked_paths,
            ["header x-ms-meta-conn (AccountKey)"],
            "{method}"
        );
    }
}

#[tokio::test]
async fn gzip_from_upstream_is_decoded_and_masked() {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(list_keys_body().to_string().as_bytes())
        .unwrap();
    let gzipped = encoder.finish().unwrap();
    let reply = Reply::raw("application/json", gzipped.clone())
        .header("content-encoding", "gzip")
        .header("content-length", &gzipped.len().to_string());
    let (response, _) =
        exchange(layer(), Some(op(LIST_KEYS)), None, post("/listKeys"), reply).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(CONTENT_ENCODING).is_none());
    assert!(response.headers().get(CONTENT_LENGTH).is_none());
    assert_eq!(response.headers()["x-airlock-masked"], "2");
    let value: Value = serde_json::from_str(&text(response).await).unwrap();
    assert_eq!(value["keys"][0]["value"], token("$.keys[0].value", KEY1));
}

#[tokio::test]
async fn other_encodings_are_refused() {
    let draft = AuditDraft::default();
    let reply = Reply::raw("application/json", vec![0x1b, 0x2c, 0x00, 0x10])
        .header("content-encoding", "br");
    let (response, _) = exchange(
        layer(),
        Some(op(LIST_KEYS)),
        Some(draft.clone()),
        post("/listKeys"),
        reply.clone(),
    )
    .await;
    // `masking_failed` checks `x-ms-error-code`, which the recorder reads.
    let message = masking_failed(response).await;
    assert!(message.contains("'br'"), "{message}");
    // JSON no rule covers is refused too: the detectors could not run.
    let (response, _) = exchange(
        layer(),
        Some(op("Microsoft.Storage/storageAccounts/read")),
        None,
        Request::get("/st").body(empty()).unwrap(),
        reply,
    )
    .await;
    masking_failed(response).await;
}

#[tokio::test]
async fn oversized_bodies_fail_closed() {
    let big = json!({"keys": [{"value": KEY1, "padding": "x".repeat(4096)}]});
    // Must mask, declared length over the limit.
    let (response, _) = exchange(
        layer().max_body_bytes(1024),
        Some(op(LIST_KEYS)),
        None,
        post("/listKeys"),
        Reply::json(&big),
    )
    .await;
    let message = masking_failed(response).await;
    assert!(message.contains("1024-byte limit"), "{message}");
    // JSON no rule covers, streamed without a length.
    let (response, _) = exchange(
        layer().max_body_bytes(1024),
        Some(op("Microsoft.Storage/storageAccounts/read")),
        None,
        Request::get("/st").body(empty()).unwrap(),
        Reply::raw("application/json", big.to_string()).in_frames_of(100),
    )
    .await;
    masking_failed(response).await;
    // A gzip body that inflates beyond the limit.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(big.to_string().as_bytes()).unwrap();
    let reply = Reply::raw("application/json", encoder.finish().unwrap())
        .header("content-encoding", "gzip");
    let (response, _) = exchange(
        layer().max_body_bytes(1024),
        Some(op(LIST_KEYS)),
        None,
        post("/listKeys"),
        reply,
    )
    .await;
    let message = masking_failed(response).await;
    assert!(message.contains("inflates"), "{message}");
}

#[tokio::test]
async fn malformed_json_that_must_be_masked_is_withheld() {
    let draft = AuditDraft::default();
    let body = format!(r#"{{"keys":[{{"value":"{KEY1}"}}"#);
    let (response, _) = exchange(
        layer(),
        Some(op(LIST_KEYS)),
        Some(draft.clone()),
        post("/listKeys"),
        Reply::raw("application/json", body),
    )
    .await;
    let message = masking_failed(response).await;
    assert_eq!(
        message,
        "Azure's response could not be masked, so it is withheld: the body is not valid JSON: expected ',' or ']' at byte 73"
    );
    assert_eq!(draft.snapshot().response_excerpt, None);
}

#[tokio::test]
async fn chunked_responses_are_masked_across_frames() {
    let (response, _) = exchange(
        layer(),
        Some(op(LIST_KEYS)),
        None,
        post("/listKeys"),
        Reply::raw("application/json", list_keys_body().to_string()).in_frames_of(7),
    )
    .await;
    assert_eq!(response.headers()["x-airlock-masked"], "2");
    let value: Value = serde_json::from_str(&text(response).await).unwrap();
    assert_eq!(value["keys"][0]["value"], token("$.keys[0].value", KEY1));
    assert_eq!(value["keys"][1]["value"], token("$.keys[1].value", KEY2));
}

/// The first key of a `listKeys` answer read by `who`.
async fn first_key_read_by(who: Option<&Principal>) -> String {
    let mut request = post("/listKeys");
    if let Some(who) = who {
        request.extensions_mut().insert(who.clone());
    }
    let (response, _) = exchange(
        layer(),
        Some(op(LIST_KEYS)),
        None,
        request,
        Reply::json(&list_keys_body()),
    )
    .await;
    let value: Value = serde_json::from_str(&text(response).await).unwrap();
    value["keys"][0]["value"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn tokens_belong_to_their_reader() {
    let agent = Principal::builder("oid-agent", PrincipalKind::Application)
        .tenant_id("t1")
        .build();
    let other = Principal::builder("oid-other", PrincipalKind::Application)
        .tenant_id("t1")
        .build();
    let token = first_key_read_by(Some(&agent)).await;
    assert_eq!(
        token,
        TokenKey::new([31u8; 32])
            .unwrap()
            .scope(Some(&agent), SCOPE)
            .token("$.keys[0].value", KEY1.as_bytes())
    );
    assert_eq!(
        token,
        first_key_read_by(Some(&agent)).await,
        "stable for one reader"
    );
    assert_ne!(
        token,
        first_key_read_by(Some(&other)).await,
        "never comparable across principals"
    );
    assert_ne!(token, first_key_read_by(None).await);
}

#[tokio::test]
async fn head_204_and_304_pass_untouched() {
    let secret_json = list_keys_body().to_string();
    let (response, _) = exchange(
        layer(),
        Some(op(LIST_KEYS)),
        None,
        Request::head("/listKeys").body(empty()).unwrap(),
        Reply::json(&list_keys_body()),
    )
    .await;
    assert!(response.headers().get("x-airlock-masked").is_none());
    assert_eq!(
        response.headers()[CONTENT_LENGTH],
        secret_json.len().to_string()
    );
    // The upstream body itself (streaming), not a buffered copy.
    assert!(response.body().buffered().is_none());
    for status in [StatusCode::NO_CONTENT, StatusCode::NOT_MODIFIED] {
        let (response, _) = exchange(
            layer(),
            Some(op(LIST_KEYS)),
            None,
            post("/listKeys"),
            Reply::raw("application/json", "").status(status),
        )
        .await;
        assert_eq!(response.status(), status);
        assert!(response.headers().get("x-airlock-masked").is_none());
        // The upstream body itself (streaming), not a buffered copy.
        assert!(response.body().buffered().is_none());
    }
}

#[tokio::test]
async fn binary_downloads_stream_through() {
    let bytes = format!("\u{0}\u{1}binary AccountKey={STORAGE_KEY}");
    let (response, _) = exchange(
        layer().max_body_bytes(16),
        Some(op("Microsoft.Web/sites/backups/read")),
        None,
        Request::get("/backup").body(empty()).unwrap(),
        Reply::raw("application/octet-stream", bytes.clone()).in_frames_of(10),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("x-airlock-masked").is_none());
    // The upstream body itself, not a buffered copy.
    assert!(
        response.body().buffered().is_none(),
        "the binary body was buffered"
    );
    let body = response.into_body();
    assert_eq!(body.collect().await.unwrap().to_bytes(), bytes);
}

#[tokio::test]
async fn request_body_goes_upstream_unchanged_while_the_audit_copy_is_masked() {
    let draft = AuditDraft::default();
    let body = r#"{"value": "my-new-db-password", "attributes": {"enabled": true}}"#;
    let request = Request::put("/secrets/db?api-version=7.4")
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT_ENCODING, "gzip, deflate, br")
        .body(full(body))
        .unwrap();
    let (response, seen) = exchange(
        layer(),
        Some(op(SET_SECRET)),
        Some(draft.clone()),
        request,
        Reply::json(
            &json!({"value": "my-new-db-password", "id": "https://v.vault.azure.net/secrets/db/1"}),
        ),
    )
    .await;
    assert_eq!(seen.body(), body);
    let upstream = seen.headers();
    assert_eq!(
        upstream.get_all(ACCEPT_ENCODING).iter().collect::<Vec<_>>(),
        ["identity"]
    );
    assert_eq!(upstream[CONTENT_TYPE], "application/json");

    let record = draft.snapshot();
    let copy = record.request_excerpt.unwrap();
    assert_eq!(
        copy,
        format!(
            r#"{{"value": "{}", "attributes": {{"enabled": true}}}}"#,
            token("$.value", "my-new-db-password")
        )
    );
    let response_copy = record.response_excerpt.unwrap();
    assert!(
        !response_copy.contains("my-new-db-password"),
        "{response_copy}"
    );
    assert_eq!(record.masked_count, 1);
    assert!(!text(response).await.contains("my-new-db-password"));
}

#[tokio::test]
async fn audit_copies_are_capped_and_binary_is_described() {
    let draft = AuditDraft::default();
    let request = Request::post("/upload")
        .header(CONTENT_TYPE, "application/octet-stream")
        .body(full(vec![0u8, 159, 146, 150, 0, 1]))
        .unwrap();
    let big = json!({"items": vec!["AccountKey=abc; and some text to fill the excerpt"; 400]});
    let (_, seen) = exchange(
        layer().excerpt_bytes(1000),
        Some(op("Microsoft.Web/sites/read")),
        Some(draft.clone()),
        request,
        Reply::json(&big),
    )
    .await;
    assert_eq!(seen.body(), &[0u8, 159, 146, 150, 0, 1][..]);
    let record = draft.snapshot();
    assert_eq!(
        record.request_excerpt.as_deref(),
        Some("[6 bytes of binary content, not recorded]")
    );
    let copy = record.response_excerpt.unwrap();
    assert!(copy.len() < 1100, "{}", copy.len());
    assert!(copy.ends_with(" bytes in all]"), "{copy}");
    assert!(!copy.contains("AccountKey=abc"));
    assert_eq!(record.masked_count, 400);
}

#[tokio::test]
async fn requests_without_an_operation_are_refused() {
    let (response, seen) = exchange(
        layer(),
        None,
        None,
        Request::builder()
            .method(Method::GET)
            .uri("/st")
            .header("x-airlock-request-id", "rid-9")
            .body(empty())
            .unwrap(),
        Reply::json(&list_keys_body()),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(response.headers()["x-ms-error-code"], "AirlockNotDecided");
    assert_eq!(response.headers()["x-airlock-request-id"], "rid-9");
    assert!(seen.0.lock().unwrap().is_none(), "nothing went upstream");
}

/// `MaskingMetrics` counts masked values by what found them, and responses
/// masked, clean and withheld.
#[tokio::test]
async fn masked_values_are_counted_by_detector() {
    let metrics = airlock_masking::MaskingMetrics::new();
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let counted = || layer().metrics(metrics.clone());
    let keys = exchange(
        counted(),
        Some(op(LIST_KEYS)),
        None,
        post("/listKeys"),
        Reply::json(&list_keys_body()),
    );
    assert_eq!(keys.await.0.headers()["x-airlock-masked"], "2");
    let connection_string =
        json!({"properties": {"storage": format!("AccountName=st;AccountKey={STORAGE_KEY}")}});
    let detected = exchange(
        counted(),
        Some(op("Microsoft.Web/sites/config/read")),
        None,
        Request::get("/config").body(empty()).unwrap(),
        Reply::json(&connection_string),
    );
    assert_eq!(detected.await.0.headers()["x-airlock-masked"], "1");
    let clean = exchange(
        counted(),
        Some(op("Microsoft.Web/sites/read")),
        None,
        Request::get("/site").body(empty()).unwrap(),
        Reply::json(&json!({"name": "site"})),
    );
    assert_eq!(clean.await.0.headers()["x-airlock-masked"], "0");
    let withheld = exchange(
        counted(),
        Some(op(LIST_KEYS)),
        None,
        post("/listKeys"),
        Reply::raw("application/json", "{not json"),
    );
    masking_failed(withheld.await.0).await;

    for (series, value) in [
        (r#"airlock_masked_values_total{detector="rule"}"#, "2"),
        (r#"airlock_masked_values_total{detector="AccountKey"}"#, "1"),
        (r#"airlock_masking_responses_total{result="masked"}"#, "2"),
        (r#"airlock_masking_responses_total{result="clean"}"#, "1"),
        (r#"airlock_masking_responses_total{result="withheld"}"#, "1"),
    ] {
        assert_eq!(
            airlock_metrics::sample(&registry, series).as_deref(),
            Some(value),
            "{series}"
        );
    }
}

#[tokio::test]
async fn answers_held_at_once_stay_within_the_memory_budget() {
    // 8 KiB for every answer being masked, all requests together.
    let layer = layer()
        .max_body_bytes(8 * 1024)
        .max_buffered_bytes(8 * 1024);
    let sized = |padding: usize| json!({"keys": [{"value": KEY1, "padding": "x".repeat(padding)}]});
    let read = || Request::get("/st").body(empty()).unwrap();
    let list = || Some(op("Microsoft.Storage/storageAccounts/read"));

    // A 6 KiB answer of known length, masked and not yet sent: it holds its share.
    let (held, _) = exchange(
        layer.clone(),
        list(),
        None,
        read(),
        Reply::json(&sized(6000)),
    )
    .await;
    assert_eq!(held.status(), StatusCode::OK);

    // Chunked (no length), 3 KiB more than is left: refused at once, not forwarded.
    let chunked = Reply::raw("application/json", sized(3000).to_string()).in_frames_of(500);
    let (busy, _) = exchange(layer.clone(), list(), None, read(), chunked.clone()).await;
    assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(busy.headers()["x-ms-error-code"], "AirlockMemoryBusy");
    let body: Value = serde_json::from_str(&text(busy).await).unwrap();
    assert_eq!(body["error"]["airlock"]["retryable"], true);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("within 8192 bytes of memory at once"),
        "{body}"
    );

    // Known length, 3 KiB: waits for room instead of failing.
    let waiting = tokio::spawn(exchange(
        layer.clone(),
        list(),
        None,
        read(),
        Reply::json(&sized(3000)),
    ));
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(!waiting.is_finished(), "waits while 6 of 8 KiB are held");
    // The held answer is sent (its body read and dropped): its share returns.
    assert!(text(held).await.contains("padding"));
    let (waited, _) = waiting.await.unwrap();
    assert_eq!(waited.status(), StatusCode::OK);
    drop(waited);
    // And the chunked answer now fits.
    let (fits, _) = exchange(layer, list(), None, read(), chunked).await;
    assert_eq!(fits.status(), StatusCode::OK);
}
