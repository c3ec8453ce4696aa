//! What an approval's request will change, for the approval page: the
//! gateway reads Azure with its own (everyday) credential through the same
//! upstream service as every forwarded request, and masks what it reads as
//! any answer is masked.
//!
//! - `PUT`/`PATCH` of an ARM resource: `GET` it (same path and `api-version`);
//!   404 means it will be created, else [`airlock_approval::diff`] of the
//!   masked resource against the masked request body.
//! - `PUT` of a deployment: ARM's `POST …/whatIf` with the request body as
//!   approvers see it (masked: secure values differ, and what-if never shows
//!   them anyway), polling its `Location` for up to 20 s.
//!
//! The gateway's identity needs read access (and
//! `Microsoft.Resources/deployments/whatIf/action` for deployments);
//! without it the page says why it cannot tell.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use airlock_approval::{ApprovalRequest, ChangePreview, Preview, ResourceChange, diff};
use airlock_azure::AzureEndpoint;
use airlock_core::{AirlockBody, BoxFuture, Decision, Operation, Plane, ResourceScope};
use airlock_masking::{JsonMasker, MaskContext, Masker};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use serde_json::Value;
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;

/// The upstream service, as the preview calls it.
pub(crate) type UpstreamService =
    BoxCloneSyncService<Request<Full<Bytes>>, Response<AirlockBody>, Infallible>;

/// The longest a what-if is polled.
const MAX_WAIT: Duration = Duration::from_secs(20);
/// The largest answer read (a resource or a what-if result).
const MAX_ANSWER_BYTES: usize = 4 << 20;

/// [`ChangePreview`] over the gateway's upstream service and masker.
pub(crate) struct ArmPreview {
    upstream: UpstreamService,
    masker: Arc<JsonMasker>,
}

impl ArmPreview {
    pub(crate) fn new(upstream: UpstreamService, masker: Arc<JsonMasker>) -> Self {
        Self { upstream, masker }
    }

    async fn send(
        &self,
        method: Method,
        target: &str,
        body: Bytes,
    ) -> Result<(StatusCode, http::HeaderMap, Bytes), String> {
        let request = Request::builder()
            .method(method)
            .uri(target)
            .header(http::header::CONTENT_TYPE, "application/json")
            .extension(Decision::Allow {
                rule: "approval-preview".into(),
            })
            .extension(AzureEndpoint::Arm)
            .body(Full::new(body))
            .map_err(|e| format!("the request's target cannot be asked again ({e})"))?;
        let Ok(response) = self.upstream.clone().oneshot(request).await;
        let (parts, body) = response.into_parts();
        let bytes = Limited::new(body, MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| format!("Azure's answer could not be read ({e})"))?
            .to_bytes();
        Ok((parts.status, parts.headers, bytes))
    }

    /// The answer's JSON, masked for `operation`.
    fn masked_json(&self, operation: &Operation, body: &[u8]) -> Result<Value, String> {
        let context = MaskContext::new(operation).content_type(Some("application/json"));
        let masked = self.masker.mask(&context, body).map_err(|e| {
            format!("what Azure answered could not be masked ({e}), so it is not shown")
        })?;
        serde_json::from_slice(masked.body.as_deref().unwrap_or(body))
            .map_err(|e| format!("Azure's answer is not JSON ({e})"))
    }

    async fn resource_diff(
        &self,
        approval: &ApprovalRequest,
        target: &str,
        merge: bool,
    ) -> Preview {
        let Some(requested) = requested_body(approval) else {
            return Preview::Unavailable(
                "the gateway kept no JSON body for this request to compare".into(),
            );
        };
        let (status, headers, body) = match self.send(Method::GET, target, Bytes::new()).await {
            Ok(answer) => answer,
            Err(why) => return Preview::Unavailable(why),
        };
        match status {
            StatusCode::NOT_FOUND => return Preview::Creates,
            StatusCode::OK => {}
            other => return Preview::Unavailable(refusal("reading the resource", other, &headers)),
        }
        let read = Operation::new(
            sibling(&approval.operation.name, "read"),
            Plane::Management,
            ResourceScope::new(approval.operation.scope.clone()),
        );
        match self.masked_json(&read, &body) {
            Ok(current) => Preview::Diff(diff(&current, &requested, merge)),
            Err(why) => Preview::Unavailable(why),
        }
    }

    async fn what_if(&self, approval: &ApprovalRequest, target: &str) -> Preview {
        let Some(body) = approval.body.clone() else {
            return Preview::Unavailable("the gateway kept no body for this deployment".into());
        };
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let what_if = format!("{}/whatIf?{query}", path.trim_end_matches('/'));
        let mut answer = self.send(Method::POST, &what_if, Bytes::from(body)).await;
        let deadline = tokio::time::Instant::now() + MAX_WAIT;
        loop {
            let (status, headers, body) = match answer {
                Ok(answer) => answer,
                Err(why) => return Preview::Unavailable(why),
            };
            match status {
                StatusCode::OK => return self.what_if_result(&approval.operation.scope, &body),
                StatusCode::ACCEPTED => {}
                other => return Preview::Unavailable(refusal("ARM's what-if", other, &headers)),
            }
            let Some(next) = headers
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.parse::<http::Uri>().ok())
                .and_then(|u| u.path_and_query().map(ToString::to_string))
            else {
                return Preview::Unavailable(
                    "ARM's what-if answered 202 without a Location to poll".into(),
                );
            };
            let wait = headers
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map_or(Duration::from_secs(1), Duration::from_secs)
                .min(Duration::from_secs(5));
            if tokio::time::Instant::now() + wait > deadline {
                return Preview::Unavailable(format!(
                    "ARM's what-if took longer than {} s; reload to ask again",
                    MAX_WAIT.as_secs()
                ));
            }
            tokio::time::sleep(wait).await;
            answer = self.send(Method::GET, &next, Bytes::new()).await;
        }
    }

    fn what_if_result(&self, scope: &str, body: &[u8]) -> Preview {
        let operation = Operation::new(
            "Microsoft.Resources/deployments/whatIf/action",
            Plane::Management,
            ResourceScope::new(scope.to_owned()),
        );
        let result = match self.masked_json(&operation, body) {
            Ok(result) => result,
            Err(why) => return Preview::Unavailable(why),
        };
        if let Some(error) = result.get("error").filter(|e| !e.is_null()) {
            return Preview::Unavailable(format!(
                "ARM's what-if failed: {} {}",
                error["code"].as_str().unwrap_or_default(),
                error["message"].as_str().unwrap_or_default()
            ));
        }
        let changes = result["properties"]["changes"]
            .as_array()
            .map(|changes| changes.iter().map(ResourceChange::from_what_if).collect())
            .unwrap_or_default();
        Preview::WhatIf(changes)
    }
}

impl ChangePreview for ArmPreview {
    fn preview<'a>(&'a self, approval: &'a ApprovalRequest) -> BoxFuture<'a, Preview> {
        Box::pin(async move {
            let Some(line) = &approval.request else {
                return Preview::NotApplicable;
            };
            let path = line
                .target
                .split('?')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            if !path.starts_with("/subscriptions/") {
                return Preview::NotApplicable;
            }
            let deployment = path.contains("/providers/microsoft.resources/deployments/");
            match line.method.as_str() {
                "PUT" if deployment => self.what_if(approval, &line.target).await,
                "PUT" => self.resource_diff(approval, &line.target, false).await,
                "PATCH" if !deployment => self.resource_diff(approval, &line.target, true).await,
                _ => Preview::NotApplicable,
            }
        })
    }
}

/// The request body as JSON, when it was kept and is JSON.
fn requested_body(approval: &ApprovalRequest) -> Option<Value> {
    serde_json::from_str(approval.body.as_deref()?).ok()
}

/// `Microsoft.Storage/storageAccounts/write` → `Microsoft.Storage/storageAccounts/read`.
fn sibling(operation: &str, verb: &str) -> String {
    match operation.rsplit_once('/') {
        Some((resource, _)) => format!("{resource}/{verb}"),
        None => operation.to_owned(),
    }
}

/// Why Azure (or the gateway on its way there) refused, in words.
fn refusal(what: &str, status: StatusCode, headers: &http::HeaderMap) -> String {
    let code = headers
        .get(airlock_core::ERROR_CODE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let hint = match status {
        StatusCode::FORBIDDEN => {
            "; the gateway's identity needs read access (and whatIf for deployments) to show changes"
        }
        _ => "",
    };
    format!("{what} was answered {status} {code}{hint}")
}
