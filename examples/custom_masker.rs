//! Write your own `Masker`: here, one that hides e-mail addresses in every
//! JSON answer, stacked in front of a stand-in for Azure with the same
//! `MaskingLayer` the gateway uses.
//!
//! ```text
//! cargo run -p airlock-examples --example custom_masker
//! ```
//!
//! A masker says which answers it *must* mask (the layer then withholds an
//! answer it cannot mask, 502, rather than pass it on) and masks one body.

use std::convert::Infallible;

use airlock_core::{AirlockBody, Operation, Plane, ResourceScope, empty};
use airlock_masking::{
    MaskContext, MaskError, MaskOutcome, Masker, MaskingLayer, TokenKey, TokenScope,
};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::{ServiceBuilder, ServiceExt, service_fn};

/// Replaces every string that looks like an e-mail address with a token:
/// stable for one reader of one resource's field, comparable with nothing else.
struct Emails {
    key: TokenKey,
}

fn walk(tokens: &TokenScope, value: &mut Value, path: &str, outcome: &mut MaskOutcome) {
    match value {
        Value::String(text)
            if text.contains('@') && text.rsplit('@').next().is_some_and(|d| d.contains('.')) =>
        {
            *text = tokens.token(path, text.as_bytes());
            outcome.count += 1;
            outcome.paths.push(path.to_owned());
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(tokens, item, &format!("{path}[{i}]"), outcome);
            }
        }
        Value::Object(members) => {
            for (name, member) in members.iter_mut() {
                walk(tokens, member, &format!("{path}.{name}"), outcome);
            }
        }
        _ => {}
    }
}

impl Masker for Emails {
    /// Role assignments name people: those answers must be masked.
    fn must_mask(&self, operation: &Operation) -> bool {
        operation
            .name()
            .eq_ignore_ascii_case("Microsoft.Authorization/roleAssignments/read")
    }

    fn mask(&self, context: &MaskContext<'_>, body: &[u8]) -> Result<MaskOutcome, MaskError> {
        let json = context.content_type.is_some_and(|t| t.contains("json"));
        if !json && !self.must_mask(context.operation) {
            return Ok(MaskOutcome::unchanged());
        }
        let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
            return Err(MaskError::NotJson {
                offset: 0,
                expected: "a JSON document",
            });
        };
        let mut outcome = MaskOutcome::unchanged();
        let tokens = self
            .key
            .scope(context.principal, context.operation.scope().as_str());
        walk(&tokens, &mut value, "$", &mut outcome);
        if outcome.count > 0 {
            outcome.body = Some(Bytes::from(serde_json::to_vec(&value).unwrap_or_default()));
        }
        Ok(outcome)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let operation = Operation::new(
        "Microsoft.Authorization/roleAssignments/read",
        Plane::Management,
        ResourceScope::new("/subscriptions/s1"),
    );
    let service = ServiceBuilder::new()
        // In the gateway, the classify layer names the operation.
        .map_request(move |mut request: Request<AirlockBody>| {
            request.extensions_mut().insert(operation.clone());
            request
        })
        .layer(MaskingLayer::new(Emails { key: TokenKey::generate()? }))
        .service(service_fn(|_request: Request<AirlockBody>| async {
            let body = r#"{"value":[{"properties":{"principalName":"alice@contoso.example","roleDefinitionName":"Reader"}}]}"#;
            Ok::<_, Infallible>(Response::builder().header("content-type", "application/json").body(body.to_owned()).unwrap_or_default())
        }));

    let response = service
        .oneshot(
            Request::get("/subscriptions/s1/providers/Microsoft.Authorization/roleAssignments")
                .body(empty())?,
        )
        .await?;
    let masked = response.headers().get("x-airlock-masked").cloned();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_bytes();
    let body = String::from_utf8_lossy(&body);
    println!("x-airlock-masked: {masked:?}\n{body}");
    anyhow::ensure!(
        !body.contains("alice@contoso.example")
            && body.contains("***MASKED:")
            && body.contains("Reader")
    );
    Ok(())
}
