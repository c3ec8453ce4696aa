//! The ARM front door: authentication, `api-version`, the route table, and the
//! headers every ARM answer carries.

use axum::response::Response;
use bytes::Bytes;
use http::header::{CACHE_CONTROL, HeaderName};
use http::request::Parts;
use http::{HeaderMap, Method};
use serde_json::Value;

use crate::arm_error::ArmError;
use crate::auth::{Credential, credential};
use crate::reply::Reply;
use crate::routing::{PathSegments, query_pairs, query_value};
use crate::state::SimState;
use crate::{
    SUBSCRIPTION_ID, compute, deployments, operations, resource_groups, role_definitions, storage,
    subscriptions,
};

/// A parsed ARM request, as handlers see it.
#[derive(Debug)]
pub(crate) struct ArmRequest<'a> {
    /// The method.
    pub(crate) method: &'a Method,
    /// The path as received (still percent-encoded).
    pub(crate) path: &'a str,
    /// The decoded path segments.
    pub(crate) segments: PathSegments,
    /// The decoded query pairs.
    pub(crate) query: Vec<(String, String)>,
    /// The `api-version` query parameter.
    pub(crate) api_version: String,
    /// The body.
    pub(crate) body: &'a Bytes,
}

impl ArmRequest<'_> {
    /// The first value of a query parameter (name compared case-insensitively).
    pub(crate) fn query_value(&self, name: &str) -> Option<&str> {
        query_value(&self.query, name)
    }

    /// The body as a JSON object, or 400 `InvalidRequestContent`.
    pub(crate) fn json_body(&self) -> Result<serde_json::Map<String, Value>, ArmError> {
        if self.body.is_empty() {
            return Err(ArmError::invalid_content("the request body is empty"));
        }
        match serde_json::from_slice::<Value>(self.body) {
            Ok(Value::Object(object)) => Ok(object),
            Ok(_) => Err(ArmError::invalid_content(
                "the request body must be a JSON object",
            )),
            Err(error) => Err(ArmError::invalid_content(error)),
        }
    }
}

/// The body's non-empty `location`, or 400 `LocationRequired`, as ARM answers
/// a resource or resource group written without one.
pub(crate) fn required_location(body: &serde_json::Map<String, Value>) -> Result<&str, ArmError> {
    body.get("location")
        .and_then(Value::as_str)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| {
            ArmError::new(
                http::StatusCode::BAD_REQUEST,
                "LocationRequired",
                "The location property is required for this definition.",
            )
        })
}

/// A handler: the simulator, the request, and the pattern's captures.
type Handler = fn(&SimState, &ArmRequest<'_>, &[&str]) -> Result<Reply, ArmError>;

/// One path shape and the methods it serves.
struct Route {
    pattern: &'static str,
    methods: &'static [Method],
    handler: Handler,
}

const GET: &[Method] = &[Method::GET];

/// Every ARM path the simulator serves. Patterns match case-insensitively.
const ROUTES: &[Route] = &[
    Route {
        pattern: "subscriptions",
        methods: GET,
        handler: subscriptions::list,
    },
    Route {
        pattern: "subscriptions/{subscription}",
        methods: GET,
        handler: subscriptions::get,
    },
    Route {
        pattern: "subscriptions/{subscription}/resourceGroups",
        methods: GET,
        handler: resource_groups::list,
    },
    Route {
        pattern: "subscriptions/{subscription}/resourceGroups/{group}",
        methods: &[Method::GET, Method::HEAD, Method::PUT, Method::DELETE],
        handler: resource_groups::group,
    },
    Route {
        pattern: "subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{id}",
        methods: &[Method::GET, Method::PUT],
        handler: role_definitions::definition,
    },
    Route {
        pattern: "subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Authorization/roleDefinitions/{id}",
        methods: &[Method::GET, Method::PUT],
        handler: role_definitions::definition,
    },
    Route {
        pattern: "subscriptions/{subscription}/operationResults/{operation}",
        methods: GET,
        handler: operations::group_result,
    },
    Route {
        pattern: "subscriptions/{subscription}/providers/Microsoft.Storage/storageAccounts",
        methods: GET,
        handler: storage::list_in_subscription,
    },
    Route {
        pattern: "subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Storage/storageAccounts",
        methods: GET,
        handler: storage::list_in_group,
    },
    Route {
        pattern: "subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Storage/storageAccounts/{account}",
        methods: &[Method::GET, Method::PUT, Method::DELETE],
        handler: storage::account,
    },
    Route {
        pattern: "subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Storage/storageAccounts/{account}/listKeys",
        methods: &[Method::POST],
        handler: storage::list_keys,
    },
    Route {
        pattern: "subscriptions/{subscription}/providers/Microsoft.Storage/locations/{location}/asyncoperations/{operation}",
        methods: GET,
        handler: operations::storage_status,
    },
    Route {
        pattern: "subscriptions/{subscription}/providers/Microsoft.Storage/locations/{location}/operationResults/{operation}",
        methods: GET,
        handler: operations::storage_result,
    },
    Route {
        pattern: "subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Resources/deployments/{deployment}/whatIf",
        methods: &[Method::POST],
        handler: deployments::what_if,
    },
    Route {
        pattern: "subscriptions/{subscription}/providers/Microsoft.Resources/locations/{location}/operationResults/{operation}",
        methods: GET,
        handler: deployments::what_if_result,
    },
    Route {
        pattern: "subscriptions/{subscription}/providers/Microsoft.Compute/virtualMachines",
        methods: GET,
        handler: compute::list_in_subscription,
    },
    Route {
        pattern: "subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines",
        methods: GET,
        handler: compute::list_in_group,
    },
    Route {
        pattern: "subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/{machine}",
        methods: &[Method::GET, Method::DELETE],
        handler: compute::machine,
    },
    Route {
        pattern: "subscriptions/{subscription}/providers/Microsoft.Compute/locations/{location}/operations/{operation}",
        methods: GET,
        handler: operations::compute_status,
    },
    Route {
        pattern: "subscriptions/{subscription}/providers/Microsoft.Compute/locations/{location}/operationResults/{operation}",
        methods: GET,
        handler: operations::compute_result,
    },
];

/// Answers one ARM request.
pub(crate) fn handle(state: &SimState, head: &Parts, body: &Bytes) -> Response {
    let reply = answer(state, head, body).unwrap_or_else(|error| {
        tracing::debug!(method = %head.method, path = head.uri.path(), code = error.code(), "ARM error");
        error.into_reply()
    });
    tracing::debug!(method = %head.method, path = head.uri.path(), status = reply.status.as_u16(), "ARM");
    respond(reply, &head.headers)
}

/// The response for `reply`, with the headers every ARM answer carries.
pub(crate) fn respond(reply: Reply, request_headers: &HeaderMap) -> Response {
    let mut response = reply.into_response();
    add_common_headers(response.headers_mut(), request_headers);
    response
}

/// The audience ARM accepts tokens for.
const ARM_AUDIENCE: &str = "https://management.azure.com";

fn answer(state: &SimState, head: &Parts, body: &Bytes) -> Result<Reply, ArmError> {
    match credential(&head.headers) {
        Credential::Missing => return Err(ArmError::missing_authorization()),
        Credential::Malformed => return Err(ArmError::malformed_authorization()),
        Credential::Bearer(token) => {
            let caller = state
                .config
                .accepts(token, ARM_AUDIENCE)
                .map_err(ArmError::rejected_token)?;
            if let Some(caller) = caller {
                let assignments = state.role_assignments();
                crate::rbac::authorize(&assignments, &caller, &head.method, head.uri.path())?;
            }
        }
    }
    let query = query_pairs(head.uri.query());
    let api_version = match query_value(&query, "api-version") {
        Some(version) if !version.is_empty() => version.to_owned(),
        _ => return Err(ArmError::missing_api_version()),
    };
    let request = ArmRequest {
        method: &head.method,
        path: head.uri.path(),
        segments: PathSegments::parse(head.uri.path()),
        query,
        api_version,
        body,
    };
    if let [first, subscription, ..] = request.segments.as_slice()
        && first.eq_ignore_ascii_case("subscriptions")
        && !subscription.eq_ignore_ascii_case(SUBSCRIPTION_ID)
    {
        return Err(ArmError::subscription_not_found(subscription));
    }
    for route in ROUTES {
        if let Some(captures) = request.segments.matches(route.pattern) {
            if !route.methods.contains(request.method) {
                return Err(ArmError::method_not_allowed(request.method, route.methods));
            }
            return (route.handler)(state, &request, &captures);
        }
    }
    Err(no_route(state, &request))
}

/// 404 as ARM answers it: `InvalidResourceType` under a provider, else `NotFound`.
fn no_route(state: &SimState, request: &ArmRequest<'_>) -> ArmError {
    let segments = request.segments.as_slice();
    let provider = segments
        .iter()
        .rposition(|s| s.eq_ignore_ascii_case("providers"));
    if let Some(at) = provider
        && segments.len() > at + 2
    {
        let namespace = &segments[at + 1];
        let types: Vec<&str> = segments[at + 2..]
            .iter()
            .step_by(2)
            .map(String::as_str)
            .collect();
        return ArmError::new(
            http::StatusCode::NOT_FOUND,
            "InvalidResourceType",
            format!(
                "The resource type '{}' could not be found in the namespace '{namespace}' for api version '{}'.",
                types.join("/"),
                request.api_version
            ),
        );
    }
    let query = request
        .query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    ArmError::new(
        http::StatusCode::NOT_FOUND,
        "NotFound",
        format!(
            "No HTTP resource was found that matches the request URI '{}{}?{query}'.",
            state.config.arm_url, request.path
        ),
    )
}

/// `x-ms-request-id`, `x-ms-correlation-request-id` (the client's, else new),
/// `x-ms-routing-request-id`, and the client request id when asked to return it.
fn add_common_headers(headers: &mut HeaderMap, request: &HeaderMap) {
    let request_id = uuid::Uuid::new_v4().to_string();
    let correlation = request
        .get("x-ms-correlation-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let routing = format!(
        "WESTEUROPE:{}:{request_id}",
        crate::timestamp::unix_seconds(std::time::SystemTime::now())
    );
    for (name, value) in [
        ("x-ms-request-id", request_id.as_str()),
        ("x-ms-correlation-request-id", correlation.as_str()),
        ("x-ms-routing-request-id", routing.as_str()),
    ] {
        if let Ok(value) = value.parse() {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    headers.insert(CACHE_CONTROL, http::HeaderValue::from_static("no-cache"));
    echo_client_request_id(headers, request);
}

/// Echoes `x-ms-client-request-id` when the client sent `x-ms-return-client-request-id: true`.
pub(crate) fn echo_client_request_id(headers: &mut HeaderMap, request: &HeaderMap) {
    let wants = request
        .get("x-ms-return-client-request-id")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if wants && let Some(id) = request.get("x-ms-client-request-id") {
        headers.insert(
            HeaderName::from_static("x-ms-client-request-id"),
            id.clone(),
        );
    }
}
