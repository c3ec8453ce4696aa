//! [`ApprovalService`]: the per-request work of the approval layer.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use airlock_core::{
    AirlockBody, AirlockError, ApprovalWait, AuditDraft, BodyError, BoxFuture, Decision, Elevation,
    ErrorContext, Operation, Plane, Principal, RevealAsked, RevealGrant, collect_limited, empty,
    full,
};
use http::{HeaderValue, Request, Response, StatusCode};
use tokio::sync::watch;
use tower::Service;

use crate::approval::later;
use crate::layer::{AsyncOperations, Config};
use crate::{
    ApprovalEvent, ApprovalId, ApprovalRequest, ApprovalState, ApprovalStore, Fingerprint,
    PendingLimits, RequestLine, RequestedOperation, Requester, SealedRequest, StoredRequest,
};

/// Put on a stored request that [`ApprovalPollService`](crate::ApprovalPollService)
/// sends after its async approval's grant was used: the approval service
/// admits it if it is the very request that was approved. Crate-private, so
/// nothing outside this crate can forge it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ApprovedExecution {
    pub(crate) id: ApprovalId,
    pub(crate) fingerprint: Fingerprint,
}

/// Put by [`ApprovalPollService`](crate::ApprovalPollService) on its
/// follow-up of Azure's operation for an approved request that ran elevated:
/// the approval service elevates that read (when policy allowed it) to the
/// same identity, as Azure's operation belongs to it. Crate-private, so
/// nothing outside this crate can forge it.
#[derive(Clone, Debug)]
pub(crate) struct ApprovedFollowUp {
    pub(crate) id: ApprovalId,
    pub(crate) identity: String,
}

/// The header an agent puts its justification in.
pub const JUSTIFICATION_HEADER: &str = "x-airlock-justification";

/// The approval middleware; see [`ApprovalLayer`](crate::ApprovalLayer).
#[derive(Clone)]
pub struct ApprovalService<S> {
    pub(crate) inner: S,
    pub(crate) config: Arc<Config>,
}

impl<S> std::fmt::Debug for ApprovalService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApprovalService").finish_non_exhaustive()
    }
}

type Answer<E> = Result<Response<AirlockBody>, E>;

/// The inner service, called once with the admitted request.
type Forward<E> = Box<
    dyn FnOnce(Request<AirlockBody>) -> BoxFuture<'static, Result<Response<AirlockBody>, E>> + Send,
>;

/// Reads the body to fingerprint it. Boxed outside any async block, for the
/// same reason as `Forward`.
fn read_body(
    body: AirlockBody,
    headers: &http::HeaderMap,
    limit: u64,
) -> BoxFuture<'_, Result<bytes::Bytes, BodyError>> {
    Box::pin(collect_limited(body, headers, limit))
}

impl<S, ResBody> Service<Request<AirlockBody>> for ApprovalService<S>
where
    S: Service<Request<AirlockBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<airlock_core::BoxError>,
{
    type Response = Response<AirlockBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Answer<S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<AirlockBody>) -> Self::Future {
        let needs_approval = matches!(
            request.extensions().get::<Decision>(),
            Some(Decision::RequireApproval { .. })
        );
        if let Some(follow_up) = request.extensions_mut().remove::<ApprovedFollowUp>()
            && matches!(
                request.extensions().get::<Decision>(),
                Some(Decision::Allow { .. })
            )
        {
            request.extensions_mut().insert(Elevation {
                identity: follow_up.identity,
                approval_id: follow_up.id.to_string(),
            });
        }
        if !needs_approval {
            // Allow, Deny (policy answered it) and no decision (the upstream
            // refuses it: fail closed there) pass through untouched. Boxed
            // here, not inside the async block: there the compiler cannot
            // prove `S::Future: Send` for the erased body lifetime.
            let future: BoxFuture<'static, _> = Box::pin(self.inner.call(request));
            return Box::pin(async move { future.await.map(|r| r.map(AirlockBody::new)) });
        }
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let forward: Forward<S::Error> = Box::new(move |request| {
            let called = inner.call(request);
            Box::pin(async move { called.await.map(|r| r.map(AirlockBody::new)) })
        });
        Box::pin(require_approval(self.config.clone(), forward, request))
    }
}

/// What the approval step decided for one request.
enum Admission {
    /// Send it on, with these parts (an `Allow` for the approval in their
    /// extensions) and this body.
    Forward(http::request::Parts, bytes::Bytes),
    /// Answered here (`202` with an operation to poll).
    Answered(Response<AirlockBody>),
}

/// The approval step, in order: read what the policy asked for, check the
/// justification, read the body and fingerprint it, then admit a stored
/// request whose approval was granted, or a retry matching a grant, or
/// else open a new approval and wait for it (held, or as an operation).
async fn require_approval<E>(
    config: Arc<Config>,
    forward: Forward<E>,
    request: Request<AirlockBody>,
) -> Answer<E> {
    let (parts, body) = request.into_parts();
    let mut ctx = ErrorContext::from_headers(&parts.headers);
    match admit(&config, parts, body, &mut ctx).await {
        Ok(Admission::Forward(parts, bytes)) => {
            forward(Request::from_parts(parts, full(bytes))).await
        }
        Ok(Admission::Answered(response)) => Ok(response),
        Err(error) => Ok(error.into_response(&ctx)),
    }
}

async fn admit(
    config: &Config,
    mut parts: http::request::Parts,
    body: AirlockBody,
    ctx: &mut ErrorContext,
) -> Result<Admission, AirlockError> {
    let asked = Asked::read(&mut parts)?;
    *ctx = std::mem::take(ctx)
        .operation(asked.operation.name())
        .rule(asked.rule.clone());
    asked.check_justification()?;
    check_not_encoded(&parts.headers)?;
    let bytes = read_request_body(body, &parts.headers, config.max_body_bytes).await?;
    let fingerprint = Fingerprint::of(&asked.principal, &parts, &asked.operation, &bytes);
    let fingerprint = if asked.reveal {
        fingerprint.for_reveal()
    } else {
        fingerprint
    };

    if let Some(approved) = asked.approved {
        admit_stored(
            config,
            approved,
            &fingerprint,
            &mut parts,
            asked.draft.as_ref(),
        )
        .await?;
        return Ok(Admission::Forward(parts, bytes));
    }
    if admit_retry(config, &fingerprint, &mut parts, asked.draft.as_ref()).await? {
        return Ok(Admission::Forward(parts, bytes));
    }

    let management = asked.operation.plane() == Plane::Management;
    let operations = match asked.wait.resolve(&parts.method, management) {
        ApprovalWait::Async => config.operations.as_ref(),
        _ => None,
    };
    let hold = config
        .max_hold
        .map_or(asked.hold, |max| asked.hold.min(max));
    // Every approval keeps the (masked) body for approvers; an async one
    // keeps the sealed request too: both within the stored-body limit.
    if bytes.len() as u64 > config.max_stored_body_bytes {
        return Err(stored_body_too_large(
            config.max_stored_body_bytes,
            bytes.len(),
        ));
    }
    // Join, refuse or open: decided under one lock, so concurrent requests
    // neither open twins nor overshoot the limits.
    let opening = config.opening.lock().await;
    let pending = Pending::of(config, &asked.principal, &fingerprint).await?;
    // The same request again while its approval is pending joins that
    // approval: one approval, one stored request, however often it is sent.
    if let Some(twin) = pending.twin {
        drop(opening);
        let id = twin.id;
        *ctx = std::mem::take(ctx).approval_id(id.to_string());
        record(asked.draft.as_ref(), id, None);
        tracing::info!(approval_id = %id, "identical request joins its pending approval");
        return match (twin.wait, operations) {
            (ApprovalWait::Async, Some(operations)) => {
                Ok(Admission::Answered(accepted(operations, id, &parts)))
            }
            _ => {
                wait_for_decision(config, id, hold, asked.draft.as_ref()).await?;
                let_through(&mut parts, id, Some(&twin));
                Ok(Admission::Forward(parts, bytes))
            }
        };
    }
    pending.check(&config.pending_limits)?;
    let approval = asked.new_approval(
        config,
        &parts,
        &bytes,
        fingerprint,
        operations.is_some(),
        hold,
    );
    let id = approval.id;
    let granted = approval.clone();
    *ctx = std::mem::take(ctx).approval_id(id.to_string());
    let draft = asked.draft;
    let sealed = match operations {
        Some(operations) => {
            let stored = StoredRequest::from_parts(&parts, bytes.clone());
            let sealed = operations
                .sealer
                .seal(id, &stored)
                .map_err(|error| AirlockError::Internal(error.to_string()))?;
            Some(sealed)
        }
        None => None,
    };
    open(config, approval, sealed, draft.as_ref()).await?;
    drop(opening);
    match operations {
        Some(operations) => {
            tracing::info!(approval_id = %id, "long-running request waits for approval as an operation");
            Ok(Admission::Answered(accepted(operations, id, &parts)))
        }
        None => {
            tracing::info!(approval_id = %id, hold = ?hold, "request held for approval");
            wait_for_decision(config, id, hold, draft.as_ref()).await?;
            let_through(&mut parts, id, Some(&granted));
            Ok(Admission::Forward(parts, bytes))
        }
    }
}

/// 413 for a request whose body is too large for an approval to keep.
fn stored_body_too_large(limit: u64, size: usize) -> AirlockError {
    AirlockError::custom(
        StatusCode::PAYLOAD_TOO_LARGE,
        "AirlockApprovalBodyTooLarge",
        format!(
            "the request body ({size} bytes) is larger than the {limit} bytes an approval keeps for its approvers to read; make the request smaller, or ask the operator to raise [approval] max_stored_body_bytes"
        ),
    )
}

/// 415 for a compressed body: approvers must read what will run.
pub(crate) fn check_not_encoded(headers: &http::HeaderMap) -> Result<(), AirlockError> {
    let Some(coding) = headers.get(http::header::CONTENT_ENCODING) else {
        return Ok(());
    };
    let coding = coding.to_str().unwrap_or("(not text)").trim();
    if coding.eq_ignore_ascii_case("identity") {
        return Ok(());
    }
    Err(AirlockError::custom(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "AirlockApprovalBodyEncoded",
        format!(
            "the request body is sent with Content-Encoding: {}; a request that needs approval must send its body uncompressed, so that approvers read exactly what will run",
            coding.chars().take(40).collect::<String>()
        ),
    ))
}

/// The pending approvals a new request is measured against.
pub(crate) struct Pending {
    /// The principal's pending approval of this very request, if any.
    pub(crate) twin: Option<ApprovalRequest>,
    /// How many the principal has pending.
    mine: usize,
    /// How many are pending in all.
    total: usize,
}

impl Pending {
    pub(crate) async fn of(
        config: &Config,
        principal: &Principal,
        fingerprint: &Fingerprint,
    ) -> Result<Self, AirlockError> {
        let pending = config
            .store
            .list(Some(ApprovalState::Pending))
            .await
            .map_err(|e| store_failed(&e))?;
        let now = SystemTime::now();
        let live = pending.into_iter().filter(|a| now < a.expires_at);
        let mut load = Self {
            twin: None,
            mine: 0,
            total: 0,
        };
        for approval in live {
            load.total += 1;
            if approval.requester.is(principal) {
                load.mine += 1;
                if approval.fingerprint == *fingerprint && load.twin.is_none() {
                    load.twin = Some(approval);
                }
            }
        }
        Ok(load)
    }

    /// 429 when one more would exceed a limit.
    pub(crate) fn check(&self, limits: &PendingLimits) -> Result<(), AirlockError> {
        let (count, limit, whose, key) = if self.mine >= limits.per_principal {
            (
                self.mine,
                limits.per_principal,
                "you have",
                "max_pending_per_principal",
            )
        } else if self.total >= limits.total {
            (self.total, limits.total, "the gateway has", "max_pending")
        } else {
            return Ok(());
        };
        tracing::warn!(count, limit, key, "approval refused: too many pending");
        Err(AirlockError::custom(
            StatusCode::TOO_MANY_REQUESTS,
            "AirlockTooManyPendingApprovals",
            format!(
                "{whose} {count} approvals pending, the most allowed ([approval] {key} = {limit}); wait until approvers decide some of them (or they expire) before asking for another"
            ),
        ))
    }
}

/// Stores a new approval (with its sealed request, for an async one) and
/// tells the notifier.
pub(crate) async fn open(
    config: &Config,
    approval: ApprovalRequest,
    sealed: Option<SealedRequest>,
    draft: Option<&AuditDraft>,
) -> Result<(), AirlockError> {
    let id = approval.id;
    config
        .store
        .create(approval.clone(), sealed)
        .await
        .map_err(|e| store_failed(&e))?;
    record(draft, id, None);
    config.notifier.notify(ApprovalEvent::New(approval));
    Ok(())
}

/// What the policy's `RequireApproval` asked for, and who asks.
struct Asked {
    principal: Principal,
    operation: Operation,
    rule: String,
    approvers: airlock_core::Approvers,
    min_approvals: u32,
    justification_required: bool,
    justification: Option<String>,
    hold: std::time::Duration,
    ttl: std::time::Duration,
    wait: ApprovalWait,
    elevate_to: Option<String>,
    draft: Option<AuditDraft>,
    /// The stored request of an async approval, sent once its grant was
    /// used (its justification was given, and kept, when it was asked for).
    approved: Option<ApprovedExecution>,
    /// The approval asked for is of a reveal (`x-airlock-reveal`).
    reveal: bool,
    /// The reveal rule's approvers, when the operation needs approval too.
    reveal_quorum: Option<airlock_core::RevealQuorum>,
}

impl Asked {
    fn read(parts: &mut http::request::Parts) -> Result<Self, AirlockError> {
        let ext = &parts.extensions;
        let (Some(decision), Some(principal), Some(operation)) = (
            ext.get::<Decision>().cloned(),
            ext.get::<Principal>().cloned(),
            ext.get::<Operation>().cloned(),
        ) else {
            tracing::error!(
                "approval: the request has no Principal or Operation; the identity and classify layers must come first"
            );
            return Err(AirlockError::NotDecided);
        };
        let Decision::RequireApproval {
            rule,
            approvers,
            min_approvals,
            justification_required,
            hold,
            ttl,
            wait,
            elevate_to,
        } = decision
        else {
            return Err(AirlockError::NotDecided);
        };
        let draft = ext.get::<AuditDraft>().cloned();
        let reveal = ext.get::<RevealAsked>().cloned();
        let justification = parts
            .headers
            .get(JUSTIFICATION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|j| !j.is_empty())
            .map(str::to_owned)
            .or_else(|| reveal.as_ref().map(|r| r.justification.clone()));
        if let (Some(draft), Some(j)) = (&draft, &justification) {
            draft.update(|r| r.justification = Some(j.clone()));
        }
        Ok(Self {
            principal,
            operation,
            rule,
            approvers,
            min_approvals,
            justification_required,
            justification,
            hold,
            ttl,
            wait,
            elevate_to,
            draft,
            approved: parts.extensions.remove::<ApprovedExecution>(),
            reveal: reveal.is_some(),
            reveal_quorum: reveal.and_then(|r| r.quorum),
        })
    }

    fn check_justification(&self) -> Result<(), AirlockError> {
        if self.justification_required && self.justification.is_none() && self.approved.is_none() {
            return Err(AirlockError::JustificationRequired {
                operation: self.operation.name().to_owned(),
                rule: self.rule.clone(),
            });
        }
        Ok(())
    }

    /// The new pending approval; still approvable after the hold ran out,
    /// so a retry can use it.
    fn new_approval(
        &self,
        config: &Config,
        parts: &http::request::Parts,
        bytes: &bytes::Bytes,
        fingerprint: Fingerprint,
        waits_async: bool,
        hold: std::time::Duration,
    ) -> ApprovalRequest {
        let now = SystemTime::now();
        let content_type = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let body = config
            .preview
            .as_ref()
            .and_then(|preview| preview(&self.operation, &self.principal, content_type, bytes));
        ApprovalRequest {
            id: ApprovalId::new(),
            requester: Requester::from_principal(&self.principal),
            operation: RequestedOperation::from_operation(&self.operation),
            rule: self.rule.clone(),
            approvers: self.approvers.clone(),
            min_approvals: self.min_approvals,
            justification_required: self.justification_required,
            justification: self.justification.clone(),
            body_preview: body.as_deref().map(preview_of),
            body,
            request: Some(self.request_line(config, parts, bytes)),
            fingerprint,
            wait: if waits_async {
                ApprovalWait::Async
            } else {
                ApprovalWait::Hold
            },
            created_at: now,
            expires_at: later(now, hold.max(self.ttl)),
            grant_ttl: self.ttl,
            grant_expires_at: None,
            decisions: Vec::new(),
            state: ApprovalState::Pending,
            execution: None,
            elevate_to: self.elevate_to.clone(),
            reveal: self.reveal,
            reveal_quorum: self.reveal_quorum.clone(),
            answer: None,
        }
    }
}

impl Asked {
    /// The request as it will run, its query passed through the preview's
    /// masker (a SAS signature in a query is masked like one in a body).
    fn request_line(
        &self,
        config: &Config,
        parts: &http::request::Parts,
        bytes: &bytes::Bytes,
    ) -> RequestLine {
        request_line(config, &self.operation, &self.principal, parts, bytes)
    }
}

/// The request as it will run, its query passed through the preview's
/// masker (a SAS signature in a query is masked like one in a body).
pub(crate) fn request_line(
    config: &Config,
    operation: &Operation,
    principal: &Principal,
    parts: &http::request::Parts,
    bytes: &bytes::Bytes,
) -> RequestLine {
    let target = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), ToString::to_string);
    let target = match (&config.preview, parts.uri.query()) {
        (Some(preview), Some(_)) => {
            preview(operation, principal, Some("text/plain"), target.as_bytes()).unwrap_or(target)
        }
        _ => target,
    };
    RequestLine {
        method: parts.method.to_string(),
        target,
        body_bytes: bytes.len() as u64,
        content_type: parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        headers: crate::fingerprint::semantic_headers(&parts.headers)
            .into_iter()
            .filter(|(name, _)| *name != "content-type")
            .map(|(name, value)| (name.to_owned(), String::from_utf8_lossy(value).into_owned()))
            .collect(),
    }
}

/// The first [`BODY_PREVIEW_BYTES`](crate::BODY_PREVIEW_BYTES) of `body`,
/// cut on a character boundary.
fn preview_of(body: &str) -> String {
    let mut cut = body.len().min(crate::BODY_PREVIEW_BYTES);
    while !body.is_char_boundary(cut) {
        cut -= 1;
    }
    body[..cut].to_owned()
}

/// The request body, within the layer's limit.
pub(crate) async fn read_request_body(
    body: AirlockBody,
    headers: &http::HeaderMap,
    limit: u64,
) -> Result<bytes::Bytes, AirlockError> {
    match read_body(body, headers, limit).await {
        Ok(bytes) => Ok(bytes),
        Err(BodyError::TooLarge { limit }) => Err(AirlockError::PayloadTooLarge { limit }),
        Err(BodyError::Read(error)) => Err(AirlockError::BadRequest {
            code: "AirlockRequestBodyUnreadable",
            message: format!("the request body could not be read: {error}"),
        }),
    }
}

/// Admits the stored request of an async approval, if it is the very
/// request that was approved.
async fn admit_stored(
    config: &Config,
    approved: ApprovedExecution,
    fingerprint: &Fingerprint,
    parts: &mut http::request::Parts,
    draft: Option<&AuditDraft>,
) -> Result<(), AirlockError> {
    if approved.fingerprint != *fingerprint {
        tracing::error!(approval_id = %approved.id, "stored request does not match its approval; refused");
        return Err(AirlockError::NotDecided);
    }
    let approval = config.store.get(approved.id).await.ok().flatten();
    record(draft, approved.id, approval.as_ref());
    if let (Some(draft), Some(j)) = (
        draft,
        approval.as_ref().and_then(|a| a.justification.clone()),
    ) {
        draft.update(|r| r.justification = Some(j));
    }
    let_through(parts, approved.id, approval.as_ref());
    Ok(())
}

/// Admits a retry of a request approved after its hold ran out (its grant
/// is used up by this).
async fn admit_retry(
    config: &Config,
    fingerprint: &Fingerprint,
    parts: &mut http::request::Parts,
    draft: Option<&AuditDraft>,
) -> Result<bool, AirlockError> {
    match config.store.consume_grant(fingerprint).await {
        Ok(Some(id)) => {
            tracing::info!(approval_id = %id, "approved grant used by a matching retry");
            let approved = config.store.get(id).await.ok().flatten();
            record(draft, id, approved.as_ref());
            let_through(parts, id, approved.as_ref());
            Ok(true)
        }
        Ok(None) => Ok(false),
        Err(error) => Err(store_failed(&error)),
    }
}

/// Waits up to `hold` for approval `id`'s decision: `Ok` when it was
/// approved and this request took its grant.
async fn wait_for_decision(
    config: &Config,
    id: ApprovalId,
    hold: std::time::Duration,
    draft: Option<&AuditDraft>,
) -> Result<(), AirlockError> {
    let store = &config.store;
    let mut states = store.subscribe(id).await.map_err(|e| store_failed(&e))?;

    let mut guard = AbandonGuard {
        store: config.store.clone(),
        id,
        armed: true,
    };
    let held = config.metrics.as_ref().map(|metrics| metrics.hold());
    let outcome = wait_decided(&mut states, hold).await;
    drop(held);
    guard.armed = false;

    let pending = AirlockError::ApprovalPending {
        approval_id: id.to_string(),
        status_url: config
            .status_url_base
            .as_ref()
            .map(|base| format!("{base}/{id}")),
    };
    let Some(state) = outcome else {
        tracing::info!(approval_id = %id, "hold ran out; approval stays pending");
        return Err(pending);
    };
    let decided = match store.get(id).await {
        Ok(Some(decided)) => decided,
        Ok(None) => return Err(store_failed(&crate::ApprovalError::NotFound(id))),
        Err(error) => return Err(store_failed(&error)),
    };
    match state {
        ApprovalState::Approved => match store.consume(id).await {
            Ok(Some(_)) => {
                record(draft, id, Some(&decided));
                Ok(())
            }
            // An identical retry took the grant first: this one is not admitted.
            Ok(None) => Err(pending),
            Err(error) => Err(store_failed(&error)),
        },
        ApprovalState::Denied => Err(denied(&decided)),
        _ => Err(pending),
    }
}

/// The refusal of a request whose approval `decided` was denied.
pub(crate) fn denied(decided: &ApprovalRequest) -> AirlockError {
    let denial = decided.denial();
    AirlockError::ApprovalDenied {
        approval_id: decided.id.to_string(),
        approver: denial.map_or_else(
            || "an approver".to_owned(),
            |d| d.approver_label().to_owned(),
        ),
        reason: denial.and_then(|d| d.comment.clone()),
    }
}

/// What a store failure answers (`ApprovalError::refusal`):
/// 503 when it is out of space or unavailable (the request can come back), else 500.
pub(crate) fn store_failed(error: &crate::ApprovalError) -> AirlockError {
    tracing::error!(%error, "approval store failed");
    error.refusal()
}

/// `202 Accepted` with the operation URL of approval `id`, as Azure answers
/// a long-running operation, on the origin the client addressed (`parts`).
fn accepted(
    operations: &AsyncOperations,
    id: ApprovalId,
    parts: &http::request::Parts,
) -> Response<AirlockBody> {
    let url = operations.url(id, parts.extensions.get::<airlock_core::ClientOrigin>());
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::ACCEPTED;
    let headers = response.headers_mut();
    if let Ok(url) = HeaderValue::from_str(&url) {
        headers.insert("azure-asyncoperation", url);
    }
    if let Ok(location) = HeaderValue::from_str(&format!("{url}{}", crate::RESULT_SUFFIX)) {
        headers.insert(http::header::LOCATION, location);
    }
    headers.insert(
        http::header::RETRY_AFTER,
        HeaderValue::from(operations.poll_interval.as_secs().max(1)),
    );
    if let Ok(id) = HeaderValue::from_str(&id.to_string()) {
        headers.insert(crate::APPROVAL_ID_HEADER, id);
    }
    // Not Azure's answer: the request runs later, as the operation's own.
    response
        .extensions_mut()
        .insert(airlock_core::AnsweredByAirlock);
    response
}

/// Waits until the state leaves `Pending`, up to `hold`; `None` on timeout.
pub(crate) async fn wait_decided(
    states: &mut watch::Receiver<ApprovalState>,
    hold: std::time::Duration,
) -> Option<ApprovalState> {
    let waited = tokio::time::timeout(hold, async {
        states
            .wait_for(|s| *s != ApprovalState::Pending)
            .await
            .map(|state| *state)
    })
    .await;
    match waited {
        Ok(Ok(state)) => Some(state),
        // The store dropped the channel: report the state it last had.
        Ok(Err(_)) => Some(*states.borrow()),
        Err(_) => None,
    }
}

/// Lets approval `id`'s request through: an `Allow` naming the approval;
/// when its rule elevates, the [`Elevation`] for this one request; when it
/// approved a reveal, the [`RevealGrant`] for this one answer. An elevation
/// or a reveal grant put there by anything else is taken out: only an
/// approval grants one. (Should the approval's record be unreadable, the
/// request runs unelevated and masked: with less, never more, than was
/// approved.)
fn let_through(
    parts: &mut http::request::Parts,
    id: ApprovalId,
    approval: Option<&ApprovalRequest>,
) {
    parts.extensions.insert(Decision::Allow {
        rule: format!("approved:{id}"),
    });
    match approval.and_then(ApprovalRequest::reveal_rule) {
        Some(rule) => {
            parts.extensions.insert(RevealGrant {
                approval_id: id.to_string(),
                rule: rule.to_owned(),
            });
        }
        None => {
            parts.extensions.remove::<RevealGrant>();
        }
    }
    match approval.and_then(|a| a.elevate_to.as_deref()) {
        Some(identity) => {
            parts.extensions.insert(Elevation {
                identity: identity.to_owned(),
                approval_id: id.to_string(),
            });
        }
        None => {
            parts.extensions.remove::<Elevation>();
        }
    }
}

pub(crate) fn record(
    draft: Option<&AuditDraft>,
    id: ApprovalId,
    approval: Option<&ApprovalRequest>,
) {
    let Some(draft) = draft else { return };
    let confirmed_by = approval
        .and_then(ApprovalRequest::confirmation)
        .map(|d| d.approver.clone());
    let approvers: Vec<String> = approval
        .map(|a| {
            a.approved_by()
                .into_iter()
                .map(|d| d.approver.clone())
                .collect()
        })
        .unwrap_or_default();
    draft.update(|r| {
        r.approval_id = Some(id.to_string());
        if !approvers.is_empty() {
            r.approvers = approvers;
        }
        if confirmed_by.is_some() {
            r.confirmed_by = confirmed_by;
        }
    });
}

/// Marks the approval abandoned if the held request's future is dropped
/// (the client went away) before a decision.
struct AbandonGuard {
    store: Arc<dyn ApprovalStore>,
    id: ApprovalId,
    armed: bool,
}

impl Drop for AbandonGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (store, id) = (self.store.clone(), self.id);
        tracing::info!(approval_id = %id, "client went away while held; approval abandoned");
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(error) = store.mark(id, ApprovalState::Abandoned).await {
                        tracing::debug!(approval_id = %id, %error, "approval not marked abandoned");
                    }
                });
            }
            Err(_) => {
                tracing::warn!(approval_id = %id, "no runtime to mark the approval abandoned");
            }
        }
    }
}
