//! [`SessionsApi`]: the audit trail's read API, `GET /api/sessions` and
//! `GET /api/sessions/{id}` (the events, chain links included), and the
//! page `GET /sessions/{id}` that replays one as a timeline (the gateway
//! serves both on its admin listener, as it serves `ApprovalApi`).
//!
//! The API admits the principals the policy names as approvers (they see
//! everything the agents did, masked as recorded). The page itself holds no
//! data: its script calls the API with the token from the URL fragment
//! (`#token=…`, never sent to the server) and inserts everything as text.

use std::sync::Arc;

use airlock_core::{AirlockError, ErrorContext, Principal};
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use http::request::Parts;
use http::{HeaderValue, header};
use serde::Deserialize;
use serde_json::json;

/// The replay page (static; see the module docs).
const PAGE: &str = include_str!("session.html");

use crate::Store;

/// Who may read the audit trail.
type Readers = Arc<dyn Fn(&Principal) -> bool + Send + Sync>;

/// The read API over one [`Store`], for the principals `readers`
/// admits; serve [`into_router`](Self::into_router) behind the identity
/// layer, and [`replay_page`](Self::replay_page) beside it.
#[derive(Clone)]
pub struct SessionsApi {
    store: Store,
    readers: Readers,
}

impl std::fmt::Debug for SessionsApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionsApi").finish_non_exhaustive()
    }
}

impl SessionsApi {
    /// Reads `store` for callers `readers` admits (the gateway: the
    /// principals a policy rule names as approvers).
    pub fn new(
        store: impl Into<Store>,
        readers: impl Fn(&Principal) -> bool + Send + Sync + 'static,
    ) -> Self {
        Self {
            store: store.into(),
            readers: Arc::new(readers),
        }
    }

    /// `/api/sessions` and `/api/sessions/{id}`.
    pub fn into_router(self) -> Router {
        Router::new()
            .route("/api/sessions", get(list))
            .route("/api/sessions/{id}", get(show))
            .with_state(self)
    }

    /// `/sessions/{id}`: the page (no token needed to load it; its data needs
    /// one, or a signed-in approver's session). Its stylesheet is
    /// `airlock_approval::ui::assets()`: mount that beside it.
    pub fn replay_page() -> Router {
        replay_page()
    }
}

fn replay_page() -> Router {
    Router::new().route(
        "/sessions/{id}",
        get(|| async {
            let mut response = Html(PAGE).into_response();
            let headers = response.headers_mut();
            // The page runs only its own inline script, and talks only to this origin.
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; script-src 'unsafe-inline'; style-src 'self'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'",
                ),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
            response
        }),
    )
}

/// The ARM-shaped refusal, unless the caller may read the trail.
fn refusal(parts: &Parts, shared: &SessionsApi) -> Option<Response> {
    let ctx = ErrorContext::from_headers(&parts.headers);
    let Some(principal) = parts.extensions.get::<Principal>() else {
        return Some(
            AirlockError::Unauthenticated {
                oauth_error: None,
                description: "no verified caller; the identity layer must come first".into(),
                challenge: Vec::new(),
            }
            .into_response(&ctx)
            .into_response(),
        );
    };
    if !(shared.readers)(principal) {
        return Some(AirlockError::Forbidden {
            code: "AirlockNotAnAuditReader",
            message: format!(
                "{principal} may not read the audit trail: only the approvers a policy rule names may"
            ),
        }
        .into_response(&ctx)
        .into_response());
    }
    None
}

fn internal(parts: &Parts, error: &crate::StoreError) -> Response {
    tracing::error!(%error, "reading the audit trail failed");
    AirlockError::Internal(format!("reading the audit trail failed: {error}"))
        .into_response(&ErrorContext::from_headers(&parts.headers))
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<usize>,
}

async fn list(
    State(shared): State<SessionsApi>,
    parts: Parts,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    if let Some(refusal) = refusal(&parts, &shared) {
        return refusal;
    }
    let limit = match query {
        Ok(Query(query)) => query.limit.unwrap_or(100).clamp(1, 1000),
        Err(rejection) => {
            return AirlockError::BadRequest {
                code: "InvalidQueryParameterValue",
                message: format!(
                    "{}; the only parameter is `limit` (1-1000)",
                    rejection.body_text()
                ),
            }
            .into_response(&ErrorContext::from_headers(&parts.headers))
            .into_response();
        }
    };
    match shared.store.sessions(limit).await {
        Ok(sessions) => {
            let value: Vec<_> = sessions
                .iter()
                .map(|s| {
                    json!({
                        "sessionId": s.session_id,
                        "principalId": s.principal_id,
                        "principalName": s.principal_name,
                        "firstTime": humantime::format_rfc3339_millis(s.first_time).to_string(),
                        "lastTime": humantime::format_rfc3339_millis(s.last_time).to_string(),
                        "events": s.events,
                        "denied": s.denied,
                        "approvals": s.approvals,
                    })
                })
                .collect();
            axum::Json(json!({ "value": value })).into_response()
        }
        Err(error) => internal(&parts, &error),
    }
}

async fn show(State(shared): State<SessionsApi>, Path(id): Path<String>, parts: Parts) -> Response {
    if let Some(refusal) = refusal(&parts, &shared) {
        return refusal;
    }
    match shared.store.session_events(&id).await {
        Ok(events) if events.is_empty() => AirlockError::NotFound {
            code: "AirlockSessionNotFound",
            message: format!(
                "there is no recorded session '{id}'; `airlock sessions list` shows them"
            ),
        }
        .into_response(&ErrorContext::from_headers(&parts.headers))
        .into_response(),
        Ok(events) => axum::Json(json!({ "sessionId": id, "value": events })).into_response(),
        Err(error) => internal(&parts, &error),
    }
}
