//! The managed-identity token endpoints, as Azure serves them to code
//! running on it, on the development issuer's port:
//!
//! - IMDS: `GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=…`
//!   with `Metadata: true` (else 400), `client_id`, `object_id` or
//!   `msi_res_id` for a user-assigned identity; every number a string.
//! - App Service, Functions, Container Apps: `GET /msi/token?api-version=2019-08-01&resource=…`
//!   with `X-IDENTITY-HEADER` (the platform's secret, else 400/401),
//!   `client_id`, `object_id` or `mi_res_id`; `expires_on` in epoch seconds.
//!
//! The first identity registered is the system-assigned one. A number of
//! requests can be made to fail first (IMDS answers 429 under load).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use airlock_core::PrincipalKind;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use http::StatusCode;
use serde_json::json;

use crate::issuer::{IssuerState, json_response, lock};
use crate::timestamp::unix_seconds;
use crate::token_spec::TokenSpec;

/// A managed identity the endpoints issue tokens for.
#[derive(Clone, Debug)]
pub(crate) struct Identity {
    pub(crate) client_id: String,
    pub(crate) object_id: String,
    pub(crate) resource_id: String,
}

/// Which endpoint was asked.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Imds,
    AppService,
}

fn error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(
        status,
        &json!({ "error": error, "error_description": description }),
    )
}

pub(crate) async fn imds(
    State(state): State<Arc<IssuerState>>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    if headers.get("metadata").and_then(|v| v.to_str().ok()) != Some("true") {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required metadata header not specified",
        );
    }
    answer(&state, &query, Flavor::Imds)
}

pub(crate) async fn app_service(
    State(state): State<Arc<IssuerState>>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    match headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok())
    {
        None => error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The X-IDENTITY-HEADER header is required",
        ),
        Some(sent) if sent != state.identity_header => error(
            StatusCode::UNAUTHORIZED,
            "invalid_request",
            "The X-IDENTITY-HEADER header is not valid",
        ),
        Some(_) => answer(&state, &query, Flavor::AppService),
    }
}

fn answer(state: &IssuerState, query: &[(String, String)], flavor: Flavor) -> Response {
    state.identity_requests.fetch_add(1, Ordering::SeqCst);
    let failing = state
        .failing_identity_requests
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        let status = *lock(&state.identity_failure);
        return error(
            status,
            "temporarily_unavailable",
            "the development identity endpoint was told to fail",
        );
    }
    let param = |name: &str| {
        query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let Some(resource) = param("resource") else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required query variable 'resource' is missing",
        );
    };
    if param("api-version").is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required query variable 'api-version' is missing",
        );
    }
    let resource_key = if flavor == Flavor::Imds {
        "msi_res_id"
    } else {
        "mi_res_id"
    };
    let identities = lock(&state.managed_identities).clone();
    let chosen = match (param("client_id"), param("object_id"), param(resource_key)) {
        (None, None, None) => identities.first().cloned(),
        (Some(id), None, None) => identities.iter().find(|i| i.client_id == id).cloned(),
        (None, Some(id), None) => identities.iter().find(|i| i.object_id == id).cloned(),
        (None, None, Some(id)) => identities
            .iter()
            .find(|i| i.resource_id.eq_ignore_ascii_case(id))
            .cloned(),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Only one of client_id, object_id and the resource id may be given",
            );
        }
    };
    let Some(identity) = chosen else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Identity not found",
        );
    };
    let lifetime = *lock(&state.app_token_lifetime);
    let spec = TokenSpec::new(
        identity.client_id.clone(),
        identity.object_id.clone(),
        PrincipalKind::ManagedIdentity,
        identity.client_id.clone(),
    )
    .audience(resource.trim_end_matches('/'))
    .lifetime(lifetime);
    let token = state.mint(&spec);
    state.tokens_issued.fetch_add(1, Ordering::SeqCst);
    let now = unix_seconds(SystemTime::now());
    let expires_on = now + lifetime.as_secs();
    json_response(
        StatusCode::OK,
        &json!({
            "access_token": token,
            "client_id": identity.client_id,
            "expires_in": lifetime.as_secs().to_string(),
            "expires_on": expires_on.to_string(),
            "ext_expires_in": lifetime.as_secs().to_string(),
            "not_before": now.to_string(),
            "resource": resource,
            "token_type": "Bearer",
        }),
    )
}
