//! The admin listener: the approvers' API and session replay, behind the
//! same token validation as the agents' listener (approvers present their
//! own Entra tokens).

use std::convert::Infallible;

use airlock_approval::ApprovalApi;
use airlock_core::{AirlockBody, Principal, REQUEST_ID_HEADER};
use airlock_identity::IdentityLayer;
use airlock_policy::PolicyFile;
use airlock_store::{SessionsApi, SqliteStore};
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

/// The replay page `/sessions/{id}`, and `/api/approvals…` and
/// `/api/sessions…` for principals the current policy names as approvers
/// (re-read on every request, so a policy reload applies at once).
pub(crate) fn router(
    approvals: &Approvals,
    database: &SqliteStore,
    policy: &PolicyFile,
    identity: IdentityLayer,
) -> Router {
    let is_approver = {
        let policy = policy.clone();
        move |principal: &Principal| policy.current().is_approver(principal)
    };
    let api = ApprovalApi::new(
        approvals.store.clone(),
        approvals.notifier.clone(),
        is_approver.clone(),
    )
    .into_router()
    .merge(SessionsApi::new(database.clone(), is_approver).into_router());
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    let service = ServiceBuilder::new()
        .map_response(|response: Response<_>| response.map(airlock_core::boxed))
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<axum::body::Body>| {
            tracing::info_span!("admin", method = %request.method(), path = %request.uri().path(), principal = tracing::field::Empty)
        }))
        .layer(identity)
        .service(api);
    let service: BoxCloneSyncService<Request<axum::body::Body>, Response<AirlockBody>, Infallible> =
        BoxCloneSyncService::new(service);
    Router::new()
        .merge(SessionsApi::replay_page())
        .fallback_service(service)
}
