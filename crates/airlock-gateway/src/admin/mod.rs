//! The admin listener: the approvers' API and session replay, behind the
//! same token validation as the agents' listener (approvers present their
//! own Entra tokens).

use std::convert::Infallible;

use std::sync::Arc;

use airlock_approval::{ApprovalApi, ApprovalPage, ChangePreview};
use airlock_core::{AirlockBody, Approvers, Principal, REQUEST_ID_HEADER};
use airlock_identity::IdentityLayer;
use airlock_policy::PolicyFile;
use airlock_signin::{SIGN_IN_PATH, SIGN_OUT_PATH, SignIn};
use airlock_store::{SessionsApi, Store};
use axum::Router;
use http::{HeaderName, Request, Response};
use tower::ServiceBuilder;
use tower::util::BoxCloneSyncService;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::approval::Approvals;
use crate::{Config, StartError};

/// The admin listener's URL, without trailing slash.
pub(crate) fn public_url(config: &Config) -> Result<String, StartError> {
    Ok(config
        .admin_url()?
        .to_string()
        .trim_end_matches('/')
        .to_owned())
}

/// The approval page `/ui/approvals` (with the sign-in routes when
/// `[admin.sign_in]` is set), the replay page `/sessions/{id}`, their assets,
/// and `/api/approvals…` and `/api/sessions…` for principals the current
/// policy or a reveal rule names as approvers (re-read on every request, so a policy reload
/// applies at once). The API takes a bearer token, or a signed-in browser's
/// session with its CSRF token: the same rules apply to both.
pub(crate) fn router(
    approvals: &Approvals,
    database: &Store,
    policy: &PolicyFile,
    identity: IdentityLayer,
    sign_in: Option<&SignIn>,
    changes: Option<Arc<dyn ChangePreview>>,
    reveal_approvers: Vec<Approvers>,
) -> Router {
    // Reveal rules' approvers (`[[masking.reveal]] approval`) approve too.
    let reveal_approvers: Arc<[Approvers]> = reveal_approvers.into();
    let is_approver = {
        let policy = policy.clone();
        move |principal: &Principal| {
            policy.current().is_approver(principal)
                || reveal_approvers.iter().any(|a| a.admits(principal))
        }
    };
    // Approvals are for approvers, and for users whose agents' requests a
    // rule lets them confirm (each sees only their own agents'); recorded
    // sessions are for approvers only.
    let may_decide = {
        let policy = policy.clone();
        let is_approver = is_approver.clone();
        move |principal: &Principal| {
            is_approver(principal) || policy.current().may_confirm(principal)
        }
    };
    let api = ApprovalApi::new(
        approvals.store.clone(),
        approvals.notifier.clone(),
        may_decide.clone(),
    )
    .into_router()
    .merge(SessionsApi::new(database.clone(), is_approver).into_router());
    let mut page = ApprovalPage::new(approvals.store.clone(), approvals.feed.clone(), may_decide);
    if sign_in.is_some() {
        page = page.sign_in(SIGN_IN_PATH, SIGN_OUT_PATH);
    }
    if let Some(changes) = changes {
        page = page.changes(changes);
    }
    let page = page.into_router();
    let (api, page, sign_in_routes) = match sign_in {
        Some(sign_in) => (
            boxed(api, sign_in.layer(identity)),
            page.layer(sign_in.layer(tower::layer::util::Identity::new())),
            sign_in.routes(),
        ),
        None => (boxed(api, identity), page, Router::new()),
    };
    Router::new()
        .merge(SessionsApi::replay_page())
        .merge(airlock_approval::ui::assets())
        .merge(sign_in_routes)
        .merge(page)
        .fallback_service(api)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id(), MakeRequestUuid))
                .layer(PropagateRequestIdLayer::new(request_id()))
                .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<axum::body::Body>| {
                    tracing::info_span!("admin", method = %request.method(), path = %request.uri().path(), principal = tracing::field::Empty)
                })),
        )
}

fn request_id() -> HeaderName {
    HeaderName::from_static(REQUEST_ID_HEADER)
}

type AdminService =
    BoxCloneSyncService<Request<axum::body::Body>, Response<AirlockBody>, Infallible>;

/// `router` behind `authentication` (the identity layer, or sign-in before it).
fn boxed<L, B>(router: Router, authentication: L) -> AdminService
where
    L: tower::Layer<Router>,
    L::Service: tower::Service<Request<axum::body::Body>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    <L::Service as tower::Service<Request<axum::body::Body>>>::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<airlock_core::BoxError>,
{
    BoxCloneSyncService::new(
        ServiceBuilder::new()
            .map_response(|response: Response<B>| response.map(airlock_core::boxed))
            .layer(authentication)
            .service(router),
    )
}
