//! [`classify`]: one request in, the [`Operation`] it performs out.

use airlock_core::Operation;
use http::{HeaderMap, Method};

use crate::arm_path::{self, ArmPath, is};
use crate::hygiene::Segment;
use crate::{
    AzureEndpoint, ClassifyError, batch, blob, deployment, hygiene, key_vault, resource_group,
};

/// Everything [`classify`] looks at in a request.
#[derive(Clone, Copy, Debug)]
pub struct ClassifyRequest<'a> {
    /// The HTTP method.
    pub method: &'a Method,
    /// The API the request is addressed to.
    pub endpoint: &'a AzureEndpoint,
    /// The path as sent: still percent-encoded.
    pub path: &'a str,
    /// The query string, without `?`.
    pub query: Option<&'a str>,
    /// The request's headers.
    pub headers: &'a HeaderMap,
    /// The whole request body (read for `/batch`, deployments and moves).
    pub body: &'a [u8],
}

/// Names the Azure RBAC operation a request performs, with the operations
/// it carries as children.
///
/// A pure function: the [`ClassifyLayer`](crate::ClassifyLayer) calls it with
/// each request, and tests call it directly. A request Airlock cannot name
/// is an [`Operation::unknown`] (policy denies it unless a rule names it); a
/// request that could be read two ways, or whose body Airlock must read and
/// cannot, is a [`ClassifyError`] (`400`).
///
/// ```
/// use airlock_azure::{AzureEndpoint, ClassifyRequest, classify};
/// use http::{HeaderMap, Method};
///
/// let op = classify(&ClassifyRequest {
///     method: &Method::POST,
///     endpoint: &AzureEndpoint::Arm,
///     path: "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa1/listKeys",
///     query: Some("api-version=2023-05-01"),
///     headers: &HeaderMap::new(),
///     body: b"",
/// })
/// .unwrap();
/// assert_eq!(op.name(), "Microsoft.Storage/storageAccounts/listKeys/action");
/// assert_eq!(
///     op.scope().as_str(),
///     "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa1"
/// );
/// assert_eq!(op.api_version(), Some("2023-05-01"));
/// ```
pub fn classify(request: &ClassifyRequest<'_>) -> Result<Operation, ClassifyError> {
    match request.endpoint {
        AzureEndpoint::Arm => classify_arm(
            request.method,
            request.path,
            request.query,
            request.headers,
            request.body,
        ),
        AzureEndpoint::KeyVault { vault } => {
            hygiene::check_headers(request.headers)?;
            let segments = hygiene::path_segments(request.path)?;
            let api_version = hygiene::api_version(request.query)?;
            Ok(
                key_vault::operation(request.method, vault, &segments)
                    .with_api_version(api_version),
            )
        }
        AzureEndpoint::Blob { account } => {
            hygiene::check_headers(request.headers)?;
            let segments = hygiene::path_segments(request.path)?;
            blob::operation(
                request.method,
                account,
                &segments,
                request.query,
                request.headers,
            )
        }
    }
}

/// An ARM request (or a batch's inner request): hygiene, then the operation.
pub(crate) fn classify_arm(
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Operation, ClassifyError> {
    hygiene::check_headers(headers)?;
    let segments = hygiene::path_segments(path)?;
    let api_version = hygiene::api_version(query)?;
    Ok(arm_operation(method, &segments, query, body)?.with_api_version(api_version))
}

/// The ARM rule, plus the requests that carry other operations.
fn arm_operation(
    method: &Method,
    segments: &[Segment<'_>],
    query: Option<&str>,
    body: &[u8],
) -> Result<Operation, ClassifyError> {
    if batch::is_batch(segments) {
        return if *method == Method::POST {
            batch::operation(body)
        } else {
            Ok(arm_path::unknown(method, segments))
        };
    }
    // Parsed once: the operation and the requests that carry others read the same parse.
    let path = arm_path::parse(segments);
    let operation = arm_path::parsed_operation(method, segments, &path);
    if operation.is_unknown() {
        return Ok(operation);
    }
    let children = match path {
        ArmPath::Provider {
            scope,
            namespace,
            rest,
        } if is_deployment(method, namespace, rest) => deployment::children(scope, body)?,
        ArmPath::Provider {
            scope,
            namespace,
            rest,
        } if is_stack(namespace, rest) => match (method, rest) {
            (&Method::PUT, [_, _]) => deployment::stack_children(scope, body)?,
            (&Method::POST, [_, _, action]) if is(action, "validate") => {
                deployment::stack_children(scope, body)?
            }
            (&Method::DELETE, [_, _]) => {
                deployment::stack_delete_children(scope, hygiene::params(query))
            }
            _ => Vec::new(),
        },
        ArmPath::Builtin(group) if *method == Method::DELETE && resource_group::is_group(group) => {
            resource_group::delete_children(group)
        }
        ArmPath::Builtin([subscriptions, _, groups, _, action])
            if *method == Method::POST
                && is(subscriptions, "subscriptions")
                && is(groups, "resourceGroups")
                && (is(action, "moveResources") || is(action, "validateMoveResources")) =>
        {
            resource_group::move_children(body)?
        }
        _ => Vec::new(),
    };
    Ok(children.into_iter().fold(operation, Operation::with_child))
}

/// `…/providers/Microsoft.Resources/deploymentStacks/{name}[/{action}]`.
fn is_stack(namespace: &str, rest: &[Segment<'_>]) -> bool {
    is(namespace, "Microsoft.Resources")
        && matches!(rest, [stacks, _] | [stacks, _, _] if is(stacks, "deploymentStacks"))
}

/// `PUT …/deployments/{name}`, or `POST …/deployments/{name}/validate|whatIf`.
fn is_deployment(method: &Method, namespace: &str, rest: &[Segment<'_>]) -> bool {
    if !is(namespace, "Microsoft.Resources") {
        return false;
    }
    match rest {
        [deployments, _] => *method == Method::PUT && is(deployments, "deployments"),
        [deployments, _, action] => {
            *method == Method::POST
                && is(deployments, "deployments")
                && (is(action, "validate") || is(action, "whatIf"))
        }
        _ => false,
    }
}
