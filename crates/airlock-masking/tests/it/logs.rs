//! Logs carry counts and paths, never values: every path through the layer
//! that sees a secret runs under a subscriber writing into a buffer, and
//! the buffer must not contain any secret.

#![allow(clippy::unwrap_used)]

use std::convert::Infallible;

use airlock_core::{AirlockBody, AuditDraft, LogCapture, Operation, Plane, ResourceScope, full};
use airlock_masking::{JsonMasker, MaskContext, MaskRule, Masker, MaskingLayer, TokenKey};
use http::{Request, Response};
use http_body_util::BodyExt;
use tower::{ServiceBuilder, ServiceExt, service_fn};

const LIST_KEYS: &str = "Microsoft.Storage/storageAccounts/listKeys/action";
const SET_SECRET: &str = "Microsoft.KeyVault/vaults/secrets/setSecret/action";
const SECRETS: [&str; 6] = [
    "c2VjcmV0LWtleS1vbmUtZm9yLXRoZS1zdG9yYWdl",
    "RCCCPP3m8cJrMPkOx90B5Ih1NKIPCw0Ew27YDnHg/XewdnDrlAvVM1+XParYYZuR/8kR9XzO1Fi7vyzgN1PJvQ==",
    "hunter2-db-password",
    "eyJhbGciOiJSUzI1NiJ9.eyJvaWQiOiIxMjMifQ.c2lnbmF0dXJl",
    "k1XnQ%2BGq5r3xN0pVd%2F8uYw7T4zSg%3D",
    "set-secret-value-42",
];

/// Everything this test binary logs at trace level, from the first call on.
/// A global subscriber, not a scoped one: with a scoped one, a log line's
/// interest could be cached as "never" by a test on another thread that ran
/// it first with none, and the line went missing (a flaky failure). Every
/// test's logs are then checked for secrets, not only this file's.
fn captured() -> LogCapture {
    static BUFFER: std::sync::OnceLock<LogCapture> = std::sync::OnceLock::new();
    BUFFER
        .get_or_init(|| {
            let buffer = LogCapture::default();
            let writer = buffer.clone();
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .init();
            buffer
        })
        .clone()
}

fn op(name: &str) -> Operation {
    Operation::new(
        name,
        Plane::Management,
        ResourceScope::new("/subscriptions/s"),
    )
}

fn masker() -> JsonMasker {
    JsonMasker::builder(TokenKey::new([41u8; 32]).unwrap())
        .rule(MaskRule::new([LIST_KEYS], ["$.keys[*].value"]).unwrap())
        .rule(MaskRule::new([SET_SECRET], ["$.value"]).unwrap())
        .build()
}

/// One exchange: `request_body` up, `(content_type, response_body, content_encoding)` back.
async fn exchange(
    operation: Operation,
    request_body: String,
    reply: (&'static str, String, Option<&'static str>),
) -> String {
    let service = ServiceBuilder::new()
        .map_request(move |mut request: Request<AirlockBody>| {
            request.extensions_mut().insert(operation.clone());
            request.extensions_mut().insert(AuditDraft::default());
            request
        })
        .layer(MaskingLayer::new(masker()))
        .service(service_fn(move |_request: Request<AirlockBody>| {
            let (content_type, body, encoding) = reply.clone();
            async move {
                let mut response = Response::builder().header("content-type", content_type);
                if let Some(encoding) = encoding {
                    response = response.header("content-encoding", encoding);
                }
                Ok::<_, Infallible>(response.body(full(body)).unwrap())
            }
        }));
    let request = Request::post("/x")
        .header("content-type", "application/json")
        .body(full(request_body))
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn no_secret_reaches_the_logs() {
    let buffer = captured();
    let [key, storage_key, password, jwt, sig, set_value] = SECRETS;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let answers = {
        runtime.block_on(async {
            let mut answers = Vec::new();
            // Masked by a rule.
            answers.push(exchange(op(LIST_KEYS), String::new(), ("application/json", format!(r#"{{"keys":[{{"value":"{key}"}}]}}"#), None)).await);
            // Masked by detectors, in JSON and in text.
            let json = format!(r#"{{"cs":"AccountKey={storage_key};Password={password}","jwt":"{jwt}","url":"https://x/?sig={sig}&se=1"}}"#);
            answers.push(exchange(op("Microsoft.Web/sites/read"), json.clone(), ("application/json", json.clone(), None)).await);
            answers.push(exchange(op("Microsoft.Web/sites/read"), String::new(), ("text/plain", format!("Password={password}; token {jwt}"), None)).await);
            // Secrets in a request body.
            answers.push(exchange(op(SET_SECRET), format!(r#"{{"value":"{set_value}"}}"#), ("application/json", format!(r#"{{"value":"{set_value}"}}"#), None)).await);
            // Refusals: malformed JSON that must be masked, and an encoding Airlock cannot read.
            answers.push(exchange(op(LIST_KEYS), format!(r#"{{"value":"{set_value}""#), ("application/json", format!(r#"{{"keys":[{{"value":"{key}"}}"#), None)).await);
            answers.push(exchange(op(LIST_KEYS), String::new(), ("application/json", format!(r#"{{"keys":[{{"value":"{key}"}}]}}"#), Some("br"))).await);
            answers
        })
    };
    // The masker on its own, too.
    {
        let body = format!(r#"{{"a":"AccountKey={storage_key}", "b": [oops "{password}"]}}"#);
        masker()
            .mask(
                &MaskContext::new(&op("Microsoft.Web/sites/read"))
                    .content_type(Some("application/json")),
                body.as_bytes(),
            )
            .unwrap();
        masker()
            .mask(
                &MaskContext::new(&op(LIST_KEYS)).content_type(Some("application/json")),
                body.as_bytes(),
            )
            .unwrap_err();
    }

    for answer in &answers {
        for secret in SECRETS {
            assert!(
                !answer.contains(secret),
                "a secret reached the client: {answer}"
            );
        }
    }
    let logs = buffer.text();
    // Something was logged (counts and paths), so the check below means something.
    assert!(logs.contains("response masked"), "{logs}");
    assert!(logs.contains("$.keys[0].value"), "{logs}");
    assert!(logs.contains("$.cs (AccountKey)"), "{logs}");
    assert!(logs.contains("AirlockMaskingFailed"), "{logs}");
    for secret in SECRETS {
        assert!(!logs.contains(secret), "the logs hold a secret:\n{logs}");
    }
}
