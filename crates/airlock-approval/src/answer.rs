//! [`AnswerLayer`]: answers the policy's `[[answer]]` rules hold wait,
//! sealed, for a human before they leave (the exfiltration guard).

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use airlock_core::{
    AirlockBody, AirlockError, AuditDraft, BodyError, BoxError, BoxFuture, Decision, ErrorContext,
    MASKED_HEADER, Operation, Principal, REVEALED_HEADER, Share, Uncollected, full,
};
use airlock_policy::{AnswerFacts, AnswerRule};
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{Request, Response};
use http_body::Body;
use tower::{Layer, Service};

use crate::approval::later;
use crate::layer::Config;
use crate::service::{
    Pending, denied, open, read_request_body, record, request_line, store_failed, wait_decided,
};
use crate::{
    ApprovalId, ApprovalRequest, ApprovalState, Fingerprint, HeldAnswer, JUSTIFICATION_HEADER,
    RequestedOperation, Requester, StoredAnswer,
};

/// The answer rules in force now (asked per request, so a policy reload applies).
type Rules = Arc<dyn Fn() -> Arc<[AnswerRule]> + Send + Sync>;

/// How long a repeat of a request whose answer is held waits for it, when
/// the layer sets no longest hold.
const JOIN_HOLD: std::time::Duration = std::time::Duration::from_secs(30);

/// The largest answer held for approval by default (256 MiB): a larger one
/// a rule would hold is refused, never sent unapproved.
pub const DEFAULT_MAX_HELD_ANSWER_BYTES: u64 = 256 * 1024 * 1024;

/// Holds answers that `[[answer]]` rules match until a human releases
/// them; get it from [`ApprovalLayer::answer_layer`](crate::ApprovalLayer::answer_layer).
/// It goes after the approval layer and before masking, so it sees the
/// answer as the client would get it (masked, with its
/// [`x-airlock-masked`] count).
///
/// For a request a rule applies to (policy allowed it, the principal and
/// an operation it carries match):
///
/// - an answer an approver already released for this very request (same
///   requester, method, operation, query and body) is sent from the store,
///   once, and Azure is not asked again; while one waits, the request
///   waits for it too;
/// - otherwise the request goes on; a successful answer that meets every
///   condition of a rule (bytes, items, masked values, media type) is
///   read, sealed (AES-256-GCM, the stored-request key) and kept with a
///   new approval that shows approvers its size, item count, item names
///   and masked count, never its secrets; the request is held up to the
///   rule's `hold`: approved, the answer goes out; denied, it is erased and
///   the request refused (403 `AirlockApprovalDenied`); still pending, the
///   request is answered `409 AirlockAnswerHeld` naming the approval (send
///   it again once approved), and an approval that expires erases it;
/// - an answer larger than the most it holds
///   ([`max_held_answer_bytes`](crate::ApprovalLayer::max_held_answer_bytes))
///   is refused (`403 AirlockAnswerTooLargeToHold`), never sent; all the
///   answers it reads at once share that many bytes of memory (one of
///   known length waits for room, one of unknown length finding none is
///   refused `503 AirlockMemoryBusy`, retryable), so memory is bounded by
///   configuration, not by answer size times concurrency.
///
/// It needs [`ApprovalLayer::async_operations`](crate::ApprovalLayer::async_operations)
/// (whose sealer it uses); without it, answers a rule holds are refused.
///
/// [`x-airlock-masked`]: airlock_core::MASKED_HEADER
#[derive(Clone)]
pub struct AnswerLayer {
    pub(crate) config: Arc<Config>,
    pub(crate) rules: Rules,
}

impl std::fmt::Debug for AnswerLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnswerLayer").finish_non_exhaustive()
    }
}

impl<S> Layer<S> for AnswerLayer {
    type Service = AnswerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AnswerService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The answer step; see [`AnswerLayer`].
#[derive(Clone)]
pub struct AnswerService<S> {
    inner: S,
    layer: AnswerLayer,
}

impl<S> std::fmt::Debug for AnswerService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnswerService").finish_non_exhaustive()
    }
}

impl<S, ResBody> Service<Request<AirlockBody>> for AnswerService<S>
where
    S: Service<Request<AirlockBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<AirlockBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<AirlockBody>) -> Self::Future {
        let rules = self.applicable(&request);
        if rules.is_empty() {
            let called = self.inner.call(request);
            return Box::pin(async move { called.await.map(|r| r.map(AirlockBody::new)) });
        }
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = self.layer.config.clone();
        Box::pin(async move {
            let mut context = ErrorContext::from_request(&request);
            let (parts, body) = request.into_parts();
            let asked = match Asked::read(&config, parts, body).await {
                Ok(asked) => asked,
                Err((error, parts)) => {
                    return Ok(error.into_response_for(&Request::from_parts(parts, ())));
                }
            };
            match released(&config, &asked, &mut context).await {
                Ok(Some(answer)) => return Ok(answer),
                Ok(None) => {}
                Err(error) => return Ok(error.into_response(&context)),
            }
            let forwarded = Request::from_parts(asked.parts.clone(), full(asked.body.clone()));
            let response = inner.call(forwarded).await?;
            Ok(inspect(&config, &rules, &asked, response, &mut context)
                .await
                .unwrap_or_else(|error| error.into_response(&context)))
        })
    }
}

impl<S> AnswerService<S> {
    /// The rules that look at this request's answer: none unless policy
    /// allowed it and a rule covers its principal and an operation.
    fn applicable(&self, request: &Request<AirlockBody>) -> Vec<AnswerRule> {
        let extensions = request.extensions();
        let (Some(principal), Some(operation), Some(Decision::Allow { .. })) = (
            extensions.get::<Principal>(),
            extensions.get::<Operation>(),
            extensions.get::<Decision>(),
        ) else {
            return Vec::new();
        };
        (self.layer.rules)()
            .iter()
            .filter(|rule| rule.applies(principal, operation))
            .cloned()
            .collect()
    }
}

/// The request, read, and what identifies it.
struct Asked {
    parts: http::request::Parts,
    body: Bytes,
    principal: Principal,
    operation: Operation,
    fingerprint: Fingerprint,
    draft: Option<AuditDraft>,
}

impl Asked {
    async fn read(
        config: &Config,
        parts: http::request::Parts,
        body: AirlockBody,
    ) -> Result<Self, (AirlockError, http::request::Parts)> {
        let extensions = &parts.extensions;
        let (Some(principal), Some(operation)) = (
            extensions.get::<Principal>().cloned(),
            extensions.get::<Operation>().cloned(),
        ) else {
            return Err((AirlockError::NotDecided, parts));
        };
        let body = match read_request_body(body, &parts.headers, config.max_body_bytes).await {
            Ok(body) => body,
            Err(error) => return Err((error, parts)),
        };
        let fingerprint = Fingerprint::of(&principal, &parts, &operation, &body).for_answer();
        Ok(Self {
            draft: parts.extensions.get::<AuditDraft>().cloned(),
            parts,
            body,
            principal,
            operation,
            fingerprint,
        })
    }
}

/// An answer held for this very request earlier: sent now if it was
/// released (Azure is not asked again), waited for if it is pending.
async fn released(
    config: &Config,
    asked: &Asked,
    context: &mut ErrorContext,
) -> Result<Option<Response<AirlockBody>>, AirlockError> {
    let store = &config.store;
    let mut found = Vec::new();
    for state in [ApprovalState::Approved, ApprovalState::Pending] {
        found.extend(
            store
                .list(Some(state))
                .await
                .map_err(|e| store_failed(&e))?
                .into_iter()
                .filter(|a| a.answer.is_some() && a.fingerprint == asked.fingerprint),
        );
    }
    let Some(approval) = found.into_iter().next() else {
        return Ok(None);
    };
    *context = std::mem::take(context).approval_id(approval.id.to_string());
    if approval.state == ApprovalState::Pending {
        // Joins the wait, up to the longest hold the layer allows.
        let hold = config.max_hold.unwrap_or(JOIN_HOLD);
        let mut states = store
            .subscribe(approval.id)
            .await
            .map_err(|e| store_failed(&e))?;
        if wait_decided(&mut states, hold).await.is_none() {
            return Err(held(config, approval.id));
        }
    }
    let answer = take(config, approval.id, asked.draft.as_ref()).await?;
    Ok(answer.map(|answer| {
        tracing::info!(approval_id = %approval.id, "held answer released to a retry; Azure not asked again");
        let mut response = Response::new(full(answer.body));
        *response.status_mut() = answer.status;
        *response.headers_mut() = answer.headers;
        response
    }))
}

/// Takes approval `id`'s released answer out of the store (erasing it):
/// `None` if another request took it first; the denial if it was denied.
async fn take(
    config: &Config,
    id: ApprovalId,
    draft: Option<&AuditDraft>,
) -> Result<Option<StoredAnswer>, AirlockError> {
    let store = &config.store;
    let approval = store
        .get(id)
        .await
        .map_err(|e| store_failed(&e))?
        .ok_or_else(|| store_failed(&crate::ApprovalError::NotFound(id)))?;
    match approval.state {
        ApprovalState::Denied => return Err(denied(&approval)),
        ApprovalState::Approved => {}
        _ => return Ok(None),
    }
    let Some(grant) = store.consume(id).await.map_err(|e| store_failed(&e))? else {
        return Ok(None);
    };
    record(draft, id, Some(&approval));
    let (Some(sealed), Some(operations)) = (grant.request, config.operations.as_ref()) else {
        return Ok(None);
    };
    operations
        .sealer
        .open_answer(id, &sealed)
        .map(Some)
        .map_err(|error| AirlockError::Internal(format!("held answer {id}: {error}")))
}

/// `409 AirlockAnswerHeld`: the answer waits for approval `id`.
fn held(config: &Config, id: ApprovalId) -> AirlockError {
    let status = config
        .status_url_base
        .as_ref()
        .map(|base| format!(" (check it at {base}/{id})"))
        .unwrap_or_default();
    AirlockError::Conflict {
        code: "AirlockAnswerHeld",
        message: format!(
            "Azure answered, and the answer is held for approval {id}{status}: a rule holds answers like it for a human. Send the same request again once it is approved: you will get this answer, and Azure is not asked again"
        ),
    }
}

/// Looks at Azure's answer: sent on unless a rule holds it.
async fn inspect<ResBody>(
    config: &Config,
    rules: &[AnswerRule],
    asked: &Asked,
    response: Response<ResBody>,
    context: &mut ErrorContext,
) -> Result<Response<AirlockBody>, AirlockError>
where
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    if !response.status().is_success() {
        return Ok(response.map(AirlockBody::new));
    }
    let headers = response.headers();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let known = AnswerFacts {
        bytes: header(CONTENT_LENGTH.as_str())
            .and_then(|v| v.parse().ok())
            .unwrap_or(u64::MAX),
        items: None,
        masked: header(MASKED_HEADER)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        revealed: header(REVEALED_HEADER)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        content_type: header(CONTENT_TYPE.as_str()).map(str::to_owned),
    };
    // What the head already rules out is streamed on, never read.
    let candidates: Vec<&AnswerRule> = rules
        .iter()
        .filter(|rule| {
            rule.holds(&AnswerFacts {
                items: rule.counts_items().then_some(u64::MAX),
                ..known.clone()
            })
        })
        .collect();
    if candidates.is_empty() {
        return Ok(response.map(AirlockBody::new));
    }
    let (parts, body) = response.into_parts();
    let budget = &config.answer_budget;
    let limit = budget.bytes();
    let (bytes, share) = match budget.collect(body, &parts.headers, limit).await {
        Ok(read) => read,
        Err(Uncollected::Busy) => {
            return Err(AirlockError::MemoryBusy {
                budget: budget.bytes(),
            });
        }
        Err(Uncollected::Body(BodyError::TooLarge { .. })) => {
            return Err(AirlockError::Forbidden {
                code: "AirlockAnswerTooLargeToHold",
                message: format!(
                    "rule '{}' holds answers like this one for approval, and it is larger than the {limit} bytes Airlock holds; ask for less (a range, $top)",
                    candidates[0].name()
                ),
            });
        }
        Err(Uncollected::Body(BodyError::Read(error))) => {
            return Err(AirlockError::UpstreamUnavailable(format!(
                "the response body could not be read: {error}"
            )));
        }
    };
    let (items, names) = list_of(known.content_type.as_deref(), &bytes);
    let facts = AnswerFacts {
        bytes: bytes.len() as u64,
        items,
        ..known
    };
    let Some(rule) = candidates.into_iter().find(|rule| rule.holds(&facts)) else {
        return Ok(Response::from_parts(parts, full(bytes).hold(share)));
    };
    let answer = Held {
        parts,
        bytes,
        share,
    };
    hold(config, rule, asked, answer, &facts, names, context).await
}

/// A JSON list's item count and first names (`name`, else the last
/// segment of `id`).
fn list_of(content_type: Option<&str>, body: &[u8]) -> (Option<u64>, Vec<String>) {
    let json = content_type.is_some_and(|t| t.to_ascii_lowercase().contains("json"));
    let Some(items) = json
        .then(|| serde_json::from_slice::<serde_json::Value>(body).ok())
        .flatten()
        .and_then(|value| value.get("value").and_then(|v| v.as_array()).cloned())
    else {
        return (None, Vec::new());
    };
    let names = items
        .iter()
        .filter_map(|item| {
            item.get("name")
                .and_then(|n| n.as_str())
                .map(str::to_owned)
                .or_else(|| {
                    item.get("id")
                        .and_then(|id| id.as_str())
                        .and_then(|id| id.trim_end_matches('/').rsplit('/').next())
                        .map(str::to_owned)
                })
        })
        .take(HeldAnswer::MAX_NAMES)
        .collect();
    (Some(items.len() as u64), names)
}

/// An answer read to be held, with its share of the memory budget.
struct Held {
    parts: http::response::Parts,
    bytes: Bytes,
    share: Share,
}

/// Seals the answer with a new approval and holds the request for it.
async fn hold(
    config: &Config,
    rule: &AnswerRule,
    asked: &Asked,
    answer: Held,
    facts: &AnswerFacts,
    names: Vec<String>,
    context: &mut ErrorContext,
) -> Result<Response<AirlockBody>, AirlockError> {
    let Held {
        parts,
        bytes,
        share,
    } = answer;
    let Some(operations) = config.operations.as_ref() else {
        tracing::error!(
            rule = rule.name(),
            "an answer rule matched but the approval layer has no sealer; refused"
        );
        return Err(AirlockError::Internal(
            "an answer rule holds this answer, and this gateway cannot keep answers sealed (the approval layer has no async_operations); refused".into(),
        ));
    };
    let Decision::RequireApproval {
        approvers,
        min_approvals,
        hold,
        ttl,
        ..
    } = rule.approval()
    else {
        return Err(AirlockError::NotDecided);
    };
    let pending = Pending::of(config, &asked.principal, &asked.fingerprint).await?;
    pending.check(&config.pending_limits)?;
    let now = SystemTime::now();
    let approval = ApprovalRequest {
        id: ApprovalId::new(),
        requester: Requester::from_principal(&asked.principal),
        operation: RequestedOperation::from_operation(&asked.operation),
        rule: rule.name().to_owned(),
        approvers,
        min_approvals,
        justification_required: false,
        justification: asked
            .parts
            .headers
            .get(JUSTIFICATION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|j| !j.is_empty())
            .map(str::to_owned),
        body_preview: None,
        body: None,
        request: Some(request_line(
            config,
            &asked.operation,
            &asked.principal,
            &asked.parts,
            &asked.body,
        )),
        fingerprint: asked.fingerprint,
        wait: airlock_core::ApprovalWait::Hold,
        created_at: now,
        expires_at: later(now, hold.max(ttl)),
        grant_ttl: ttl,
        grant_expires_at: None,
        decisions: Vec::new(),
        state: ApprovalState::Pending,
        execution: None,
        elevate_to: None,
        reveal: false,
        reveal_quorum: None,
        answer: Some(HeldAnswer {
            status: parts.status.as_u16(),
            bytes: facts.bytes,
            content_type: facts.content_type.clone(),
            items: facts.items,
            names,
            masked: facts.masked,
            revealed: facts.revealed,
        }),
    };
    let id = approval.id;
    *context = std::mem::take(context)
        .approval_id(id.to_string())
        .rule(rule.name().to_owned());
    let sealed = operations
        .sealer
        .seal_answer(id, &StoredAnswer::from_parts(&parts, bytes.clone()))
        .map_err(|error| AirlockError::Internal(error.to_string()))?;
    open(config, approval, Some(sealed), asked.draft.as_ref()).await?;
    tracing::info!(approval_id = %id, rule = rule.name(), bytes = facts.bytes, "answer held for approval");
    let hold = config.max_hold.map_or(hold, |max| hold.min(max));
    let mut states = config
        .store
        .subscribe(id)
        .await
        .map_err(|e| store_failed(&e))?;
    // Counted in `airlock_approvals_held` while the request waits. A client
    // that goes away meanwhile leaves the approval open on purpose: the
    // answer stays sealed for the retry it will send (as after a 409),
    // until decided or expired.
    let _held = config.metrics.as_ref().map(|metrics| metrics.hold());
    if wait_decided(&mut states, hold).await.is_none() {
        return Err(held(config, id));
    }
    // Released: the copy in hand goes out, the stored one is erased.
    match take(config, id, asked.draft.as_ref()).await? {
        Some(_) => Ok(Response::from_parts(parts, full(bytes).hold(share))),
        None => Err(held(config, id)),
    }
}

#[cfg(test)]
mod tests {
    use super::list_of;

    #[test]
    fn lists_are_counted_and_named() {
        let body = br#"{"value":[{"name":"a"},{"id":"/x/secrets/b"},{"other":1}]}"#;
        let (items, names) = list_of(Some("application/json; charset=utf-8"), body);
        assert_eq!(items, Some(3));
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            list_of(Some("application/octet-stream"), body),
            (None, vec![])
        );
    }
}
