//! The gateway's middleware stack, outermost first.

use airlock_metrics::MetricsLayer;
use std::convert::Infallible;

use airlock_approval::{AnswerLayer, ApprovalLayer};
use airlock_azure::ClassifyLayer;
use airlock_core::{AirlockBody, REQUEST_ID_HEADER};
use airlock_identity::IdentityLayer;
use airlock_masking::{MaskingLayer, RevealLayer};
use airlock_policy::{PolicyLayer, QuotaLayer};
use airlock_recorder::RecorderLayer;
use http::{HeaderName, Request, Response};
use hyper::body::Incoming;
use tower::ServiceBuilder;
use tower::util::BoxCloneSyncService;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tower_http::trace::TraceLayer;

use crate::Config;
use crate::arm_errors::ArmErrorsLayer;
use crate::forward_proxy::ConnectLayer;
use crate::health::Probes;
use airlock_upstream::Upstream;

/// The stack every request of the agents' listener goes through.
pub(crate) type GatewayService =
    BoxCloneSyncService<Request<Incoming>, Response<AirlockBody>, Infallible>;

/// The service the agents' listener runs for every request: the probes,
/// then the stack.
pub(crate) type App = Probes<GatewayService>;

/// The concern layers, built from configuration.
#[derive(Debug)]
pub(crate) struct Layers {
    /// One audit event per request (503 when it cannot record, fail-closed);
    /// `None` only when `[audit] enabled = false`.
    pub(crate) recorder: Option<RecorderLayer>,
    /// Bearer token → `Principal` (401).
    pub(crate) identity: IdentityLayer,
    /// Request → `Operation` (400/403/413).
    pub(crate) classify: ClassifyLayer,
    /// `Principal` + `Operation` → `Decision` (403).
    pub(crate) policy: PolicyLayer,
    /// `RequireApproval` → held, or 202 and an operation to poll (403/428).
    pub(crate) approval: ApprovalLayer,
    /// `[[quota]]` → counted; past a limit 403, or an approval.
    pub(crate) quota: QuotaLayer,
    /// `x-airlock-reveal` → an approval of the reveal, or 400/403.
    pub(crate) reveal: RevealLayer,
    /// `[[answer]]` → matching answers held, sealed, for approval (409 until released).
    pub(crate) answer: AnswerLayer,
    /// Secrets in answers → masked tokens (502 when it cannot).
    pub(crate) masking: MaskingLayer,
    /// `CONNECT` → 200 and a tunnel, or 403 (405 when forward-proxy mode is off).
    pub(crate) connect: ConnectLayer,
    /// Requests counted and timed, from what the layers wrote into the draft.
    pub(crate) metrics: MetricsLayer,
}

/// Stacks the layers in front of the upstream service:
/// request id → trace → recorder → metrics → ARM-shaped errors → timeout (504) → request-body
/// timeout (408) → identity (401; 407 on CONNECT) → CONNECT (forward proxy) → body limit → approval polls
/// (polls of `/airlock/operations/…`) → classify (400, 413) → policy (403) →
/// quotas (403, or an approval past a limit) → reveal (`x-airlock-reveal`: 400/403, or an approval of the reveal) →
/// approval (held / 202) → answers (held for approval: 409 until released) → masking (502; reveals what a rule or approval
/// allows) → upstream.
pub(crate) fn build(config: &Config, layers: Layers, upstream: Upstream) -> GatewayService {
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    let limits = &config.limits;
    let body_limit = usize::try_from(limits.max_request_body_bytes).unwrap_or(usize::MAX);
    let core = ServiceBuilder::new()
        .layer(ArmErrorsLayer::new(
            limits.request_timeout,
            limits.request_body_timeout,
            limits.max_request_body_bytes,
        ))
        .layer(TimeoutLayer::with_status_code(
            http::StatusCode::GATEWAY_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(RequestBodyTimeoutLayer::new(limits.request_body_timeout))
        // Every concern layer answers with `AirlockBody`, its refusals and
        // the inner service's answers alike.
        .layer(layers.identity)
        // After identity, which identifies a CONNECT by its
        // Proxy-Authorization (or passes it on unidentified): decided, and
        // recorded, here.
        .layer(layers.connect)
        // The body limit: classify refuses a body over it with an
        // ARM-shaped 413 (a declared length before reading a byte), after
        // identity, so the refusal is recorded with the principal who sent
        // it. `Limited` bounds any other reader too. Not tower-http's
        // `RequestBodyLimitLayer`: it wraps every response body in a type of
        // its own, which hides a buffered answer from the recorder (that
        // then holds back its end instead of its head: two writes, not one).
        // The poll layer may send a stored request inward: from here on,
        // requests carry Airlock's body type.
        .map_request(move |request: Request<_>| {
            request.map(|body| AirlockBody::new(http_body_util::Limited::new(body, body_limit)))
        })
        .layer(layers.approval.poll_layer())
        .layer(layers.classify)
        .layer(layers.policy)
        .layer(layers.quota)
        .layer(layers.reveal)
        .layer(layers.approval)
        .layer(layers.answer)
        .layer(layers.masking)
        .service(upstream);
    // Boxed, so the recorder can be left out (`[audit] enabled = false`).
    // Counted inside the recorder (its draft holds what the layers learned)
    // and outside ARM-shaped errors (the status clients get).
    let core: Inner =
        BoxCloneSyncService::new(ServiceBuilder::new().layer(layers.metrics).service(core));
    // Outside ARM-shaped errors, so it records the answers clients get.
    let recorded: Inner = match layers.recorder {
        Some(recorder) => BoxCloneSyncService::new(
            ServiceBuilder::new()
                .layer(recorder)
                .map_request(|request: Request<_>| request.map(airlock_core::boxed))
                .service(core),
        ),
        None => core,
    };
    let service = ServiceBuilder::new()
        .map_response(|response: Response<_>| response.map(airlock_core::boxed))
        // The request id is the gateway's, minted for every request: an
        // agent's own `x-airlock-request-id` would choose the id its audit
        // event is filed under (or repeat another's).
        .map_request({
            let request_id = request_id.clone();
            move |mut request: Request<Incoming>| {
                request.headers_mut().remove(&request_id);
                request
            }
        })
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(move |request: &Request<Incoming>| {
            // The query can carry SAS signatures: only the path is logged.
            let id = request.headers().get(&request_id).and_then(|v| v.to_str().ok()).unwrap_or_default();
            // `principal` and `rule` are filled in by the identity and policy layers.
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id, principal = tracing::field::Empty, rule = tracing::field::Empty)
        }))
        .map_request(|request: Request<Incoming>| request.map(airlock_core::boxed))
        .service(recorded);
    BoxCloneSyncService::new(service)
}

/// The stack below the trace layer, on Airlock's body type.
type Inner = BoxCloneSyncService<Request<AirlockBody>, Response<AirlockBody>, Infallible>;
