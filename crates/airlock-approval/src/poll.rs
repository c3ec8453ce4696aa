//! [`ApprovalPollLayer`]: the operation URL an SDK polls while an async
//! approval waits, and then while Azure runs the approved request.
//!
//! `GET /airlock/operations/{id}` answers like Azure's `Azure-AsyncOperation`
//! URL: `{"status":"InProgress"}` while the approval is pending;
//! `{"status":"Failed","error":{"code":"AirlockApprovalDenied",…}}` once it
//! was denied, expired or abandoned. The first poll after approval sends the
//! stored request upstream, exactly once, as the polling requester; from then
//! on the answer is Azure's own operation status, polled through the gateway
//! like any other request (so policy and masking apply to it too).
//!
//! `GET /airlock/operations/{id}/result` answers like a `Location` URL:
//! `202` while pending or running, then the final answer: Azure's own answer
//! (masked, as it passed the masking layer) when the approved request
//! completed at once or its `Location` gave one, as an Azure SDK expects
//! after a `POST` (a `listKeys` run under approval returns its keys, masked).
//!
//! Only the requester may poll; anyone else gets 404, as for an operation
//! that does not exist.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use airlock_core::{
    AirlockBody, AirlockError, AuditDraft, BoxFuture, CallerToken, ErrorContext, Principal,
    collect_limited, full,
};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use serde_json::json;
use tower::{Layer, Service};

use crate::layer::Config;
use crate::service::{ApprovedExecution, ApprovedFollowUp};
use crate::{
    ApprovalEvent, ApprovalId, ApprovalRequest, ApprovalState, Execution, FinalAnswer, Tracking,
    rules,
};

/// The path under which async approvals are polled: `/airlock/operations/{id}`.
pub const OPERATIONS_PATH: &str = "/airlock/operations/";

/// Appended to an operation URL for its `Location`-style twin.
pub(crate) const RESULT_SUFFIX: &str = "/result";

/// The response header naming the approval a request waits for.
pub const APPROVAL_ID_HEADER: &str = "x-airlock-approval-id";

/// The most of Azure's answer read to follow its operation (status bodies are small).
const MAX_STATUS_BODY: u64 = 1024 * 1024;

/// Answers polls of async approvals: `GET /airlock/operations/{id}` as an
/// `Azure-AsyncOperation` URL, `…/result` as a `Location` URL, for the
/// requester only. Made by
/// [`ApprovalLayer::poll_layer`](crate::ApprovalLayer::poll_layer).
#[derive(Clone)]
pub struct ApprovalPollLayer {
    pub(crate) config: Arc<Config>,
}

impl std::fmt::Debug for ApprovalPollLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApprovalPollLayer").finish_non_exhaustive()
    }
}

impl<S> Layer<S> for ApprovalPollLayer {
    type Service = ApprovalPollService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ApprovalPollService {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service of [`ApprovalPollLayer`]: polls of `/airlock/operations/…` are
/// answered here; every other request goes to the inner service.
#[derive(Clone)]
pub struct ApprovalPollService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> std::fmt::Debug for ApprovalPollService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApprovalPollService")
            .finish_non_exhaustive()
    }
}

/// Which URL of an operation was polled.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Url {
    /// `Azure-AsyncOperation` semantics.
    Status,
    /// `Location` semantics.
    Result,
}

/// `Some` if the path is an operation URL: the id (or `None` when it is
/// malformed) and which URL.
fn parse(path: &str) -> Option<(Option<ApprovalId>, Url)> {
    let rest = path.strip_prefix(OPERATIONS_PATH)?;
    let (id, url) = match rest.strip_suffix(RESULT_SUFFIX) {
        Some(id) => (id, Url::Result),
        None => (rest, Url::Status),
    };
    // Only the plain hyphenated form: no braces, `urn:` or encodings.
    let id = (id.len() == 36)
        .then(|| id.parse::<ApprovalId>().ok())
        .flatten();
    Some((id, url))
}

/// The inner service, with its error as text: this module answers an
/// inner failure itself, so nothing below is generic.
type Inner = tower::util::BoxService<Request<AirlockBody>, Response<AirlockBody>, String>;

/// Calls the inner service once.
fn send(
    inner: &mut Inner,
    request: Request<AirlockBody>,
) -> BoxFuture<'_, Result<Response<AirlockBody>, String>> {
    use tower::ServiceExt;
    Box::pin(async move { inner.ready().await?.call(request).await })
}

impl<S, ResBody> Service<Request<AirlockBody>> for ApprovalPollService<S>
where
    S: Service<Request<AirlockBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display + Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<airlock_core::BoxError>,
{
    type Response = Response<AirlockBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<AirlockBody>) -> Self::Future {
        let polled = (request.method() == Method::GET)
            .then(|| parse(request.uri().path()))
            .flatten();
        let Some((id, url)) = polled else {
            let future: BoxFuture<'static, _> = Box::pin(self.inner.call(request));
            return Box::pin(async move { future.await.map(|r| r.map(AirlockBody::new)) });
        };
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        use tower::ServiceExt;
        let inner: Inner = tower::util::BoxService::new(
            inner
                .map_response(|response: Response<ResBody>| response.map(AirlockBody::new))
                .map_err(|error: S::Error| error.to_string()),
        );
        let answer: BoxFuture<'static, Response<AirlockBody>> =
            Box::pin(answer(self.config.clone(), inner, request, id, url));
        Box::pin(async move { Ok(answer.await) })
    }
}

/// Where an async approval stands, as the poller sees it.
enum Outcome {
    InProgress,
    /// Done; with Azure's final answer when it gave one.
    Succeeded {
        status: StatusCode,
        answer: Option<FinalAnswer>,
    },
    Failed {
        status: StatusCode,
        code: String,
        message: String,
    },
    /// Azure's own answer about its operation.
    Azure {
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    },
}

async fn answer(
    config: Arc<Config>,
    mut inner: Inner,
    request: Request<AirlockBody>,
    id: Option<ApprovalId>,
    url: Url,
) -> Response<AirlockBody> {
    // The poll's body is empty: only its head is needed (and it is `Sync`).
    let (request, _) = request.into_parts();
    let ctx = ErrorContext::from_headers(&request.headers);
    let not_found = |id: String| {
        AirlockError::NotFound {
            code: "AirlockOperationNotFound",
            message: format!(
                "there is no operation {id} for this caller; operation URLs come from the 202 answer of a request that waits for approval"
            ),
        }
        .into_response(&ctx)
    };
    let Some(id) = id else {
        return not_found(request.uri.path().to_owned());
    };
    let Some(principal) = request.extensions.get::<Principal>().cloned() else {
        tracing::error!("operation poll without a Principal; the identity layer must come first");
        return AirlockError::NotDecided.into_response(&ctx);
    };
    let approval = match config.store.get(id).await {
        Ok(Some(approval)) if approval.requester.is(&principal) => approval,
        Ok(_) => return not_found(id.to_string()),
        Err(error) => return AirlockError::Internal(error.to_string()).into_response(&ctx),
    };
    if let Some(draft) = request.extensions.get::<AuditDraft>() {
        draft.update(|r| r.approval_id = Some(id.to_string()));
    }
    let outcome = match outcome(&config, &mut inner, &request, &principal, approval).await {
        Ok(outcome) => outcome,
        Err(error) => {
            return AirlockError::Internal(format!("approval store failed: {error}"))
                .into_response(&ctx);
        }
    };
    let retry_after = config
        .operations
        .as_ref()
        .map_or(5, |o| o.poll_interval.as_secs().max(1));
    render(outcome, url, retry_after, request.uri.path())
}

async fn outcome(
    config: &Config,
    inner: &mut Inner,
    poll: &http::request::Parts,
    principal: &Principal,
    mut approval: ApprovalRequest,
) -> Result<Outcome, crate::ApprovalError> {
    let store = &config.store;
    let id = approval.id;
    if rules::expire_if_due(&mut approval.clone(), SystemTime::now()) {
        if let Some(expired) = store.expire_due().await?.into_iter().find(|a| a.id == id) {
            config.notifier.notify(ApprovalEvent::Expired(expired));
        }
        approval = store.get(id).await?.unwrap_or(approval);
    }
    // The poll that sends the approved request records that exchange; a
    // later poll records the follow-up it asks Azure.
    let mut sent_now = false;
    if approval.state == ApprovalState::Approved {
        if let Some(grant) = store.consume(id).await? {
            let execution = execute(config, inner, poll, principal, &approval, grant.request).await;
            approval = store.record_execution(id, execution).await?;
            sent_now = true;
        } else {
            // Another poll used the grant first, or it just ran out.
            approval = store.get(id).await?.unwrap_or(approval);
        }
    }
    Ok(match approval.state {
        ApprovalState::Pending => Outcome::InProgress,
        ApprovalState::Approved => Outcome::InProgress,
        ApprovalState::Denied => {
            let denial = approval.denial();
            Outcome::Failed {
                status: StatusCode::FORBIDDEN,
                code: "AirlockApprovalDenied".into(),
                message: AirlockError::ApprovalDenied {
                    approval_id: id.to_string(),
                    approver: denial
                        .map_or_else(|| "an approver".into(), |d| d.approver_label().to_owned()),
                    reason: denial.and_then(|d| d.comment.clone()),
                }
                .to_string(),
            }
        }
        ApprovalState::Expired | ApprovalState::Abandoned => Outcome::Failed {
            status: StatusCode::FORBIDDEN,
            code: "AirlockApprovalDenied".into(),
            message: format!(
                "approval {id} {} without being approved; the request was not sent",
                approval.state
            ),
        },
        // Consumed: sent upstream (or being sent by a concurrent poll).
        _ => match approval.execution {
            None => Outcome::InProgress,
            Some(execution) => {
                // Azure's operation belongs to whoever started it: an
                // elevated request's is followed elevated too.
                let elevated = approval
                    .elevate_to
                    .map(|identity| ApprovedFollowUp { id, identity });
                track(inner, poll, principal, execution, elevated, !sent_now).await
            }
        },
    })
}

async fn execute(
    config: &Config,
    inner: &mut Inner,
    poll: &http::request::Parts,
    principal: &Principal,
    approval: &ApprovalRequest,
    sealed: Option<crate::SealedRequest>,
) -> Execution {
    let failed = |code: &str, message: String| Execution {
        at: SystemTime::now(),
        status: 0,
        tracking: None,
        error_code: Some(code.to_owned()),
        error_message: Some(message),
        answer: None,
    };
    let (Some(operations), Some(sealed)) = (&config.operations, sealed) else {
        return failed(
            "AirlockInternalError",
            "the approved request was not stored".into(),
        );
    };
    let stored = match operations.sealer.open(approval.id, &sealed) {
        Ok(stored) => stored,
        Err(error) => return failed("AirlockInternalError", error.to_string()),
    };
    let mut request = stored.into_request(host_of(poll)).map(full);
    request.extensions_mut().insert(principal.clone());
    caller_of(poll, &mut request);
    // The poll that sends the request records it: the layers below fill the
    // poll's audit event with the operation sent, the approval and Azure's
    // answer and request ids.
    if let Some(draft) = poll.extensions.get::<AuditDraft>() {
        request.extensions_mut().insert(draft.clone());
    }
    request.extensions_mut().insert(ApprovedExecution {
        id: approval.id,
        fingerprint: approval.fingerprint,
    });
    tracing::info!(approval_id = %approval.id, "sending the approved request upstream");
    let response = match send(inner, request).await {
        Ok(response) => response,
        Err(error) => return failed("AirlockUpstreamUnavailable", error.to_string()),
    };
    let (head, body) = response.into_parts();
    let status = head.status;
    let path_of = |name: &str| {
        head.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<http::Uri>().ok())
            .and_then(|u| u.path_and_query().map(|pq| pq.as_str().to_owned()))
    };
    let tracking = if status.is_success() {
        path_of("azure-asyncoperation")
            .map(Tracking::AsyncOperation)
            .or_else(|| {
                (status == StatusCode::ACCEPTED)
                    .then(|| path_of("location").map(Tracking::Location))
                    .flatten()
            })
    } else {
        None
    };
    let (mut error_code, mut error_message, mut answer) = (None, None, None);
    if !status.is_success() {
        (error_code, error_message) = azure_error(
            &read_body(body, &head.headers).await.unwrap_or_default(),
            status,
        );
    } else if tracking.is_none() {
        // Completed at once: keep the answer for the `Location` URL.
        answer = final_answer(&head.headers, body).await;
    }
    Execution {
        at: SystemTime::now(),
        status: status.as_u16(),
        tracking,
        error_code,
        error_message,
        answer,
    }
}

/// Azure's final answer as kept for `…/result`: its text, within
/// [`MAX_STATUS_BODY`]; `None` for an empty, binary or larger one.
async fn final_answer(headers: &HeaderMap, body: AirlockBody) -> Option<FinalAnswer> {
    let bytes = read_body(body, headers).await.ok()?;
    if bytes.is_empty() {
        return None;
    }
    Some(FinalAnswer {
        content_type: headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: String::from_utf8(bytes.to_vec()).ok()?,
    })
}

/// The poll's caller token, if the identity layer kept one, for a request
/// sent on the caller's behalf: an upstream identity acting as the caller
/// needs it.
fn caller_of<B>(poll: &http::request::Parts, request: &mut Request<B>) {
    if let Some(caller) = poll.extensions.get::<CallerToken>() {
        request.extensions_mut().insert(caller.clone());
    }
}

/// The host the poll came to (HTTP/1.1 `Host`, or HTTP/2's `:authority`):
/// requests sent on its behalf go to the same gateway host.
fn host_of(poll: &http::request::Parts) -> Option<HeaderValue> {
    poll.headers.get(http::header::HOST).cloned().or_else(|| {
        poll.uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    })
}

/// Where Azure's own operation stands; with `record`, the poll's audit
/// event records the follow-up sent to Azure.
async fn track(
    inner: &mut Inner,
    poll: &http::request::Parts,
    principal: &Principal,
    execution: Execution,
    elevated: Option<ApprovedFollowUp>,
    record: bool,
) -> Outcome {
    let path = match (&execution.tracking, &execution.error_code) {
        (_, Some(code)) => {
            return Outcome::Failed {
                status: StatusCode::from_u16(execution.status).unwrap_or(StatusCode::BAD_GATEWAY),
                code: code.clone(),
                message: execution.error_message.clone().unwrap_or_default(),
            };
        }
        (None, None) => {
            return Outcome::Succeeded {
                status: StatusCode::from_u16(execution.status).unwrap_or(StatusCode::OK),
                answer: execution.answer,
            };
        }
        (Some(Tracking::AsyncOperation(path) | Tracking::Location(path)), None) => path,
    };
    let mut request = Request::get(path.as_str())
        .body(full(Bytes::new()))
        .unwrap_or_default();
    if let Some(host) = host_of(poll) {
        request.headers_mut().insert(http::header::HOST, host);
    }
    request.extensions_mut().insert(principal.clone());
    caller_of(poll, &mut request);
    if let Some(elevated) = elevated {
        request.extensions_mut().insert(elevated);
    }
    // The poll's audit event records what this follow-up did upstream: its
    // operation, the decision, Azure's status and request ids.
    if let Some(draft) = poll.extensions.get::<AuditDraft>().filter(|_| record) {
        request.extensions_mut().insert(draft.clone());
    }
    let response = match send(inner, request).await {
        Ok(response) => response,
        // Azure could not be asked this time: the next poll asks again.
        Err(error) => {
            tracing::warn!(%error, "following Azure's operation failed");
            return Outcome::InProgress;
        }
    };
    let (parts, body) = response.into_parts();
    let location = matches!(execution.tracking, Some(Tracking::Location(_)));
    if location && parts.status.is_success() && parts.status != StatusCode::ACCEPTED {
        return Outcome::Succeeded {
            status: parts.status,
            answer: final_answer(&parts.headers, body).await,
        };
    }
    let body = read_body(body, &parts.headers).await.unwrap_or_default();
    match execution.tracking {
        Some(Tracking::AsyncOperation(_)) => Outcome::Azure {
            status: parts.status,
            headers: parts.headers,
            body,
        },
        _ if parts.status == StatusCode::ACCEPTED => Outcome::InProgress,
        _ => {
            let (code, message) = azure_error(&body, parts.status);
            Outcome::Failed {
                status: parts.status,
                code: code.unwrap_or_default(),
                message: message.unwrap_or_default(),
            }
        }
    }
}

/// Azure's answer, read up to [`MAX_STATUS_BODY`] (empty if it could not be).
/// Boxed outside any async block, as `ApprovalService` reads bodies: awaited
/// inline, the compiler loses `Send` for the body's erased error lifetime.
fn read_body(
    body: AirlockBody,
    headers: &HeaderMap,
) -> BoxFuture<'_, Result<Bytes, airlock_core::BodyError>> {
    Box::pin(collect_limited(body, headers, MAX_STATUS_BODY))
}

/// The `error.code` and `error.message` of an ARM error body.
fn azure_error(body: &[u8], status: StatusCode) -> (Option<String>, Option<String>) {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let error = &value["error"];
    let code = error["code"]
        .as_str()
        .map_or_else(|| format!("HttpStatus{}", status.as_u16()), str::to_owned);
    let message = error["message"]
        .as_str()
        .map_or_else(|| format!("Azure answered {status}"), str::to_owned);
    (Some(code), Some(message))
}

/// The `status` of an Azure-AsyncOperation body.
fn azure_status(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value["status"].as_str().map(str::to_owned)
}

fn render(outcome: Outcome, url: Url, retry_after: u64, path: &str) -> Response<AirlockBody> {
    let json_response = |status: StatusCode, body: serde_json::Value| {
        let mut response = Response::new(full(body.to_string()));
        *response.status_mut() = status;
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        response
    };
    let mut in_progress = match url {
        Url::Status => json_response(StatusCode::OK, json!({ "status": "InProgress" })),
        Url::Result => json_response(StatusCode::ACCEPTED, json!({})),
    };
    in_progress
        .headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from(retry_after));
    if url == Url::Result
        && let Ok(location) = HeaderValue::from_str(path)
    {
        in_progress
            .headers_mut()
            .insert(http::header::LOCATION, location);
    }
    match (outcome, url) {
        (Outcome::InProgress, _) => in_progress,
        (Outcome::Succeeded { .. }, Url::Status) | (Outcome::Succeeded { answer: None, .. }, _) => {
            json_response(StatusCode::OK, json!({ "status": "Succeeded" }))
        }
        (
            Outcome::Succeeded {
                status,
                answer: Some(answer),
            },
            Url::Result,
        ) => {
            let mut response = Response::new(full(answer.body));
            *response.status_mut() = status;
            if let Some(content_type) = answer
                .content_type
                .and_then(|t| HeaderValue::from_str(&t).ok())
            {
                response
                    .headers_mut()
                    .insert(http::header::CONTENT_TYPE, content_type);
            }
            response
        }
        (Outcome::Failed { code, message, .. }, Url::Status) => json_response(
            StatusCode::OK,
            json!({ "status": "Failed", "error": { "code": code, "message": message } }),
        ),
        (
            Outcome::Failed {
                status,
                code,
                message,
            },
            Url::Result,
        ) => {
            let mut response = json_response(
                status,
                json!({ "error": { "code": code, "message": message } }),
            );
            if let Ok(code) = HeaderValue::from_str(&code) {
                response
                    .headers_mut()
                    .insert(airlock_core::ERROR_CODE, code);
            }
            response
        }
        (
            Outcome::Azure {
                status,
                headers,
                body,
            },
            Url::Status,
        ) => {
            let mut response = Response::new(full(body));
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            response.headers_mut().remove(http::header::CONTENT_LENGTH);
            response
        }
        (Outcome::Azure { status, body, .. }, Url::Result) => {
            match azure_status(&body).as_deref() {
                Some("Succeeded") => {
                    json_response(StatusCode::OK, json!({ "status": "Succeeded" }))
                }
                Some("Failed" | "Canceled") => {
                    let (code, message) = azure_error(&body, status);
                    json_response(
                        StatusCode::CONFLICT,
                        json!({ "error": { "code": code, "message": message } }),
                    )
                }
                _ if !status.is_success() => {
                    let mut response = Response::new(full(body));
                    *response.status_mut() = status;
                    response
                }
                _ => in_progress,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_operation_urls_are_recognised() {
        let id = ApprovalId::new();
        assert!(
            matches!(parse(&format!("/airlock/operations/{id}")), Some((Some(got), Url::Status)) if got == id)
        );
        assert!(
            matches!(parse(&format!("/airlock/operations/{id}/result")), Some((Some(got), Url::Result)) if got == id)
        );
        assert!(matches!(
            parse(&format!("/airlock/operations/{{{id}}}")),
            Some((None, _))
        ));
        assert!(matches!(
            parse(&format!("/airlock/operations/urn:uuid:{id}")),
            Some((None, _))
        ));
        assert!(matches!(parse("/airlock/operations/"), Some((None, _))));
        assert!(parse("/subscriptions/s/resourceGroups/rg").is_none());
        assert!(parse("/airlock/operationsX").is_none());
    }
}
