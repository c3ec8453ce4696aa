//! [`ApprovalApi`]: the approvers' REST API, as an axum [`Router`].
//!
//! The API validates no token itself: like every Airlock layer it reads the
//! verified [`Principal`] from the request extensions, which the identity
//! layer in front of it puts there. Without one it answers 401 (fail closed,
//! even when the stack is misassembled).

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use airlock_core::{AirlockError, BodyError, ErrorContext, Principal, collect_limited};
use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::HeaderMap;
use http::header::{CACHE_CONTROL, HeaderValue};
use http::request::Parts;
use serde::Deserialize;
use serde_json::Value;

use crate::{
    ApprovalError, ApprovalEvent, ApprovalId, ApprovalRequest, ApprovalState, ApprovalStore,
    Notifier,
};

/// The longest comment an approver may give with a decision, in characters.
pub const DEFAULT_MAX_COMMENT_CHARS: usize = 2000;

/// Decides whether a principal may use the approvals API at all.
type ApproverCheck = dyn Fn(&Principal) -> bool + Send + Sync;

/// The approvers' REST API, served by the [`Router`] it builds:
///
/// | Route | Answer |
/// |---|---|
/// | `GET /api/approvals?state=pending` | `{"value": [approval, …]}`, oldest first; `state` is optional (`all` lists every state) |
/// | `GET /api/approvals/{id}` | one approval |
/// | `GET /api/approvals/{id}/body` | its whole request body, masked, with the request's `Content-Type` (404 `AirlockApprovalBodyNotKept` when none was kept) |
/// | `POST /api/approvals/{id}/approve` | the approval as it now stands |
/// | `POST /api/approvals/{id}/deny` | the approval as it now stands |
///
/// Deciding takes an optional JSON body `{"comment": "…"}` (an empty body is
/// fine). Each approval is the [`ApprovalRequest`] JSON without its whole
/// `body` (its `bodyPreview` is the first 8 KiB) plus `"maskedBodyBytes"`,
/// the length of the body `…/body` serves, and `"canDecide"`: whether the
/// caller can approve or deny it now (it is pending and unexpired, the
/// caller is one of its approvers, and not its requester).
///
/// Who may do what:
///
/// - no verified [`Principal`] in the request extensions: 401 `AirlockUnauthenticated`;
/// - a principal the approver check refuses: 403 `AirlockNotAnApprover` on every route;
/// - an approver sees only the approvals whose rule names them; any other
///   is answered 404 `AirlockApprovalNotFound`, as an unknown one is;
/// - the store enforces the rest: 403 `AirlockSelfApproval` for the
///   requester, 409 `AirlockApprovalNotPending` once decided or expired.
///
/// Malformed ids, states and bodies are answered 400 saying what is expected.
/// Errors are ARM-shaped, like every Airlock error. Each decision that
/// approves or denies is announced with [`ApprovalEvent::Decided`].
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// use airlock_approval::{ApprovalApi, MemoryApprovalStore, RecordingNotifier};
/// use airlock_core::{Principal, PrincipalKind};
/// use http::Request;
/// use http_body_util::BodyExt;
/// use tower::ServiceExt;
///
/// let store = Arc::new(MemoryApprovalStore::new());
/// let api = ApprovalApi::new(store, Arc::new(RecordingNotifier::new()), |p: &Principal| {
///     p.in_group("ops") // the gateway passes `policy.is_approver(p)`
/// })
/// .into_router();
///
/// // The identity layer in front of the API puts the verified principal here.
/// let carol = Principal::builder("carol", PrincipalKind::User).groups(["ops"]).build();
/// let request = Request::get("/api/approvals?state=pending")
///     .extension(carol)
///     .body(axum::body::Body::empty())
///     .unwrap();
/// let response = api.clone().oneshot(request).await.unwrap();
/// assert_eq!(response.status(), 200);
/// let body = response.into_body().collect().await.unwrap().to_bytes();
/// assert_eq!(body, r#"{"value":[]}"#);
///
/// // Someone who approves nothing is refused.
/// let agent = Principal::builder("agent", PrincipalKind::ManagedIdentity).build();
/// let request = Request::get("/api/approvals")
///     .extension(agent)
///     .body(axum::body::Body::empty())
///     .unwrap();
/// let response = api.oneshot(request).await.unwrap();
/// assert_eq!(response.status(), 403);
/// assert_eq!(response.headers()["x-ms-error-code"], "AirlockNotAnApprover");
/// # });
/// ```
#[derive(Clone)]
pub struct ApprovalApi {
    store: Arc<dyn ApprovalStore>,
    notifier: Arc<dyn Notifier>,
    is_approver: Arc<ApproverCheck>,
    max_comment_chars: usize,
}

impl fmt::Debug for ApprovalApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApprovalApi")
            .field("max_comment_chars", &self.max_comment_chars)
            .finish_non_exhaustive()
    }
}

impl ApprovalApi {
    /// The API over `store`, announcing decisions to `notifier`; only
    /// principals for whom `is_approver` holds may use it (the gateway passes
    /// the policy's `is_approver` or `may_confirm`: anyone a rule's approval
    /// names, and people who may confirm their agents' requests). Each sees
    /// and decides only the approvals that admit them
    /// ([`ApprovalRequest::visible_to`](crate::ApprovalRequest::visible_to)).
    pub fn new(
        store: Arc<dyn ApprovalStore>,
        notifier: Arc<dyn Notifier>,
        is_approver: impl Fn(&Principal) -> bool + Send + Sync + 'static,
    ) -> Self {
        Self {
            store,
            notifier,
            is_approver: Arc::new(is_approver),
            max_comment_chars: DEFAULT_MAX_COMMENT_CHARS,
        }
    }

    /// The longest comment accepted with a decision, in characters
    /// (default [`DEFAULT_MAX_COMMENT_CHARS`]).
    #[must_use]
    pub fn max_comment_chars(mut self, max: usize) -> Self {
        self.max_comment_chars = max;
        self
    }

    /// The router serving the API, relative to where it is mounted.
    pub fn into_router(self) -> Router {
        Router::new()
            .route("/api/approvals", get(list))
            .route("/api/approvals/{id}", get(show))
            .route("/api/approvals/{id}/body", get(body))
            .route("/api/approvals/{id}/approve", post(approve))
            .route("/api/approvals/{id}/deny", post(deny))
            .with_state(Arc::new(self))
    }

    /// The largest decision body read: room for the longest comment with
    /// every character escaped, and the JSON around it.
    fn max_body(&self) -> u64 {
        u64::try_from(self.max_comment_chars)
            .unwrap_or(u64::MAX)
            .saturating_mul(12)
            .saturating_add(1024)
    }
}

type Shared = Arc<ApprovalApi>;

/// An Airlock error, with what is known about the request it answers
/// (boxed: it travels in every handler's `Result`).
struct ApiError(Box<(AirlockError, ErrorContext)>);

impl ApiError {
    fn new(error: AirlockError, ctx: ErrorContext) -> Self {
        Self(Box::new((error, ctx)))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (error, ctx) = *self.0;
        error.into_response(&ctx).map(Body::new)
    }
}

/// The verified caller, admitted as an approver.
struct Caller {
    principal: Principal,
    ctx: ErrorContext,
}

impl Caller {
    fn fail(&self, error: AirlockError) -> ApiError {
        ApiError::new(error, self.ctx.clone())
    }
}

impl FromRequestParts<Shared> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Shared) -> Result<Self, ApiError> {
        let ctx = ErrorContext::from_headers(&parts.headers);
        let Some(principal) = parts.extensions.get::<Principal>().cloned() else {
            tracing::warn!("approvals API: request without a verified principal refused");
            let error = AirlockError::Unauthenticated {
                oauth_error: None,
                description: "the approvals API needs a verified caller: send `Authorization: Bearer <Entra access token>` for the gateway".into(),
                challenge: Vec::new(),
            };
            return Err(ApiError::new(error, ctx));
        };
        if !(api.is_approver)(&principal) {
            tracing::info!(
                principal = principal.id(),
                "approvals API: caller is not an approver"
            );
            let error = AirlockError::Forbidden {
                code: "AirlockNotAnApprover",
                message: format!(
                    "{principal} is not an approver: only the principals a policy rule's approval lists (its `[rule.approval]` groups and ids) may see and decide approvals"
                ),
            };
            return Err(ApiError::new(error, ctx));
        }
        Ok(Self { principal, ctx })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    state: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    comment: Option<String>,
}

async fn list(
    State(api): State<Shared>,
    caller: Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let bad_query = |detail: String| {
        caller.fail(AirlockError::BadRequest {
            code: "InvalidQueryParameterValue",
            message: format!(
                "{detail}; list approvals with `?state=` one of pending, approved, denied, expired, abandoned, consumed or all"
            ),
        })
    };
    let Query(query) = query.map_err(|rejection| bad_query(rejection.body_text()))?;
    let state = match query.state.as_deref().map(str::trim) {
        None | Some("all" | "") => None,
        Some(text) => Some(text.parse::<ApprovalState>().map_err(bad_query)?),
    };
    let approvals = api
        .store
        .list(state)
        .await
        .map_err(|e| caller.fail(store_error(e)))?;
    let now = SystemTime::now();
    let value = approvals
        .iter()
        .filter(|approval| approval.visible_to(&caller.principal))
        .map(|approval| item(approval, &caller.principal, now))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| caller.fail(e))?;
    Ok(json_response(serde_json::json!({ "value": value })))
}

async fn show(
    State(api): State<Shared>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = approval_id(&caller, id)?;
    let approval = visible(&api, &caller, id).await?;
    let value =
        item(&approval, &caller.principal, SystemTime::now()).map_err(|e| caller.fail(e))?;
    Ok(json_response(value))
}

async fn body(
    State(api): State<Shared>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = approval_id(&caller, id)?;
    let approval = visible(&api, &caller, id).await?;
    let Some(body) = approval.body else {
        return Err(caller.fail(AirlockError::NotFound {
            code: "AirlockApprovalBodyNotKept",
            message: format!(
                "approval {id} keeps no body: its request had none, or the gateway shows no bodies to approvers"
            ),
        }));
    };
    let content_type = approval
        .request
        .and_then(|r| r.content_type)
        .and_then(|t| HeaderValue::from_str(&t).ok())
        .unwrap_or(HeaderValue::from_static("text/plain; charset=utf-8"));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, content_type);
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn approve(
    State(api): State<Shared>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    decide(&api, &caller, id, &headers, body, true).await
}

async fn deny(
    State(api): State<Shared>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    decide(&api, &caller, id, &headers, body, false).await
}

async fn decide(
    api: &ApprovalApi,
    caller: &Caller,
    id: Result<Path<String>, PathRejection>,
    headers: &HeaderMap,
    body: Body,
    approve: bool,
) -> Result<Response, ApiError> {
    let action = if approve { "approve" } else { "deny" };
    let id = approval_id(caller, id)?;
    let comment = read_comment(api, headers, body)
        .await
        .map_err(|e| caller.fail(e))?;
    // Approvals the caller may not see are not found, whatever their state.
    visible(api, caller, id).await?;
    let decided = api
        .store
        .decide(id, &caller.principal, approve, comment)
        .await;
    let approval = match decided {
        Ok(approval) => approval,
        Err(error) => {
            let error = decide_error(error, &caller.principal);
            tracing::info!(
                approval_id = %id,
                approver = caller.principal.id(),
                action,
                refused = error.code(),
                "approval decision refused"
            );
            let ctx = caller.ctx.clone().approval_id(id.to_string());
            return Err(ApiError::new(error, ctx));
        }
    };
    tracing::info!(
        approval_id = %id,
        approver = caller.principal.id(),
        action,
        state = %approval.state,
        approvals = approval.approved_by().len(),
        min_approvals = approval.min_approvals,
        "approval decision recorded"
    );
    if approval.state != ApprovalState::Pending {
        api.notifier
            .notify(ApprovalEvent::Decided(approval.clone()));
    }
    let value =
        item(&approval, &caller.principal, SystemTime::now()).map_err(|e| caller.fail(e))?;
    Ok(json_response(value))
}

/// The approval, if it exists and `caller` is one of its approvers;
/// otherwise 404, so that nobody learns of approvals they may not see.
async fn visible(
    api: &ApprovalApi,
    caller: &Caller,
    id: ApprovalId,
) -> Result<ApprovalRequest, ApiError> {
    match api.store.get(id).await {
        Ok(Some(approval)) if approval.visible_to(&caller.principal) => Ok(approval),
        Ok(_) => Err(caller.fail(not_found(id))),
        Err(error) => Err(caller.fail(store_error(error))),
    }
}

fn approval_id(
    caller: &Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<ApprovalId, ApiError> {
    let invalid = |shown: &str| {
        caller.fail(AirlockError::BadRequest {
            code: "InvalidRequestUri",
            message: format!(
                "'{shown}' is not an approval id; an approval id is a UUID such as 0f8fad5b-d9cb-469f-a165-70867728950e, as `airlock approvals list` shows it"
            ),
        })
    };
    let Path(text) = id.map_err(|_| invalid("(undecodable)"))?;
    text.trim().parse().map_err(|_| {
        let shown: String = text.chars().take(64).filter(|c| !c.is_control()).collect();
        invalid(&shown)
    })
}

/// The optional comment of a decision body: none, or `{"comment": "…"}`.
async fn read_comment(
    api: &ApprovalApi,
    headers: &HeaderMap,
    body: Body,
) -> Result<Option<String>, AirlockError> {
    const SHAPE: &str = "send no body, or JSON `{\"comment\": \"<text>\"}`";
    let invalid = |detail: String| AirlockError::BadRequest {
        code: "InvalidRequestContent",
        message: format!("{detail}; {SHAPE}"),
    };
    let bytes = collect_limited(body, headers, api.max_body())
        .await
        .map_err(|error| match error {
            BodyError::TooLarge { limit } => invalid(format!(
                "the request body exceeds {limit} bytes; a comment has at most {} characters",
                api.max_comment_chars
            )),
            other => invalid(format!("the request {other}")),
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let decision: DecisionBody = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(format!("the request body is not a decision ({e})")))?;
    let comment = decision
        .comment
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    if let Some(comment) = &comment {
        let chars = comment.chars().count();
        if chars > api.max_comment_chars {
            return Err(AirlockError::BadRequest {
                code: "InvalidRequestContent",
                message: format!(
                    "the comment has {chars} characters; at most {} are accepted, so shorten it",
                    api.max_comment_chars
                ),
            });
        }
    }
    Ok(comment)
}

/// The approval's JSON, plus whether `principal` can decide it now.
fn item(
    approval: &ApprovalRequest,
    principal: &Principal,
    now: SystemTime,
) -> Result<Value, AirlockError> {
    let can_decide = approval.can_decide(principal, now);
    let mut value = serde_json::to_value(approval)
        .map_err(|e| AirlockError::Internal(format!("approval {}: {e}", approval.id)))?;
    if let Value::Object(fields) = &mut value {
        // The whole body is served on its own (`…/body`), not in listings.
        if let Some(Value::String(body)) = fields.remove("body") {
            fields.insert("maskedBodyBytes".to_owned(), Value::from(body.len()));
        }
        fields.insert("canDecide".to_owned(), Value::Bool(can_decide));
    }
    Ok(value)
}

fn json_response(value: Value) -> Response {
    let mut response = Json(value).into_response();
    // Approvals carry justifications: keep them out of caches.
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn not_found(id: ApprovalId) -> AirlockError {
    AirlockError::NotFound {
        code: "AirlockApprovalNotFound",
        message: format!(
            "approval {id} does not exist, or you are not one of its approvers; `airlock approvals list --state all` shows the approvals you can see"
        ),
    }
}

/// What a store refusal means to the approver who was refused.
fn decide_error(error: ApprovalError, principal: &Principal) -> AirlockError {
    match error {
        ApprovalError::SelfApproval(id) => AirlockError::Forbidden {
            code: "AirlockSelfApproval",
            message: format!(
                "approval {id} was requested by {principal}, or by an agent acting for them: the requester can never approve or deny their own request, even as one of its approvers, and neither can the user an agent acts for (unless its rule says confirm_by = \"acting_user\"); another approver must"
            ),
        },
        ApprovalError::NotAnApprover { id, rule, .. } => AirlockError::Forbidden {
            code: "AirlockNotAnApprover",
            message: format!(
                "{principal} is not an approver of approval {id}: only the approvers rule '{rule}' lists in its `[rule.approval]` may decide it"
            ),
        },
        ApprovalError::NotPending { id, state } => AirlockError::Conflict {
            code: "AirlockApprovalNotPending",
            message: format!(
                "approval {id} is {state}, not pending: it can no longer be approved or denied"
            ),
        },
        other => store_error(other),
    }
}

fn store_error(error: ApprovalError) -> AirlockError {
    match error {
        ApprovalError::NotFound(id) => not_found(id),
        other => {
            tracing::error!(error = %other, "approvals API: the approval store failed");
            other.refusal()
        }
    }
}
