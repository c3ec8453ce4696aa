//! `POST /batch`: ARM's (undocumented, portal) batch endpoint, and the
//! requests it carries.
//!
//! ```json
//! {"requests": [{"httpMethod": "DELETE", "name": "<guid>",
//!                "url": "https://management.azure.com/subscriptions/…?api-version=…",
//!                "content": {…}}]}
//! ```
//!
//! The batch itself is [`BATCH_OPERATION`] (not an Azure RBAC operation:
//! Azure authorizes each inner request on its own); every inner request
//! (`url` absolute on an ARM host, or `relativeUrl`) is classified like a
//! request of its own, with the same hygiene, and becomes a child. A body
//! Airlock cannot read, an inner request to another host, or a batch inside
//! a batch is refused: an inner request Airlock could not name would go
//! unchecked.

use airlock_core::{Operation, Plane, ResourceScope};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use serde_json::{Map, Value};

use crate::ClassifyError;
use crate::arm_path::is;
use crate::classify::classify_arm;
use crate::hygiene;
use crate::json::{self, get, get_str};

/// The operation name of `POST /batch` itself. It is not an Azure RBAC
/// operation (Azure authorizes each inner request); policy sees the inner
/// requests as its children.
pub const BATCH_OPERATION: &str = "Microsoft.Resources/batch/action";

/// The ARM hosts an inner request's absolute `url` may name: public Azure,
/// Azure US Government and Azure China.
pub const ARM_HOSTS: [&str; 3] = [
    "management.azure.com",
    "management.usgovcloudapi.net",
    "management.chinacloudapi.cn",
];

/// The batch operation, with every inner request as a child.
pub(crate) fn operation(body: &[u8]) -> Result<Operation, ClassifyError> {
    let root = json::object(body, "batch")?;
    let Some(Value::Array(requests)) = get(&root, "requests")? else {
        return Err(ClassifyError::content(
            "the batch body needs 'requests', an array of {httpMethod, url or relativeUrl, content}; Airlock must read every inner request",
        ));
    };
    let mut batch = Operation::new(BATCH_OPERATION, Plane::Management, ResourceScope::new("/"));
    for (index, request) in requests.iter().enumerate() {
        let child = inner(index, request).map_err(|error| match error {
            error
            @ (ClassifyError::BatchForeignHost { .. } | ClassifyError::NestedBatch { .. }) => error,
            error => ClassifyError::InBatch {
                index,
                source: Box::new(error),
            },
        })?;
        batch = batch.with_child(child);
    }
    Ok(batch)
}

/// One inner request, classified as if it had been sent on its own.
fn inner(index: usize, request: &Value) -> Result<Operation, ClassifyError> {
    let request = request.as_object().ok_or_else(|| {
        ClassifyError::content("it must be a JSON object {httpMethod, url or relativeUrl, content}")
    })?;
    let method = get_str(request, "httpMethod")?.ok_or_else(|| {
        ClassifyError::content("it has no 'httpMethod'; name the method (GET, PUT, DELETE, …)")
    })?;
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| ClassifyError::content(format!("'{method}' is not an HTTP method")))?;
    let uri = inner_uri(index, request)?;
    if hygiene::path_segments(uri.path()).is_ok_and(|segments| is_batch(&segments)) {
        return Err(ClassifyError::NestedBatch { index });
    }
    let headers = inner_headers(request)?;
    let body = match get(request, "content")? {
        Some(content) => serde_json::to_vec(content).map_err(|error| {
            ClassifyError::content(format!("its 'content' cannot be re-encoded ({error})"))
        })?,
        None => Vec::new(),
    };
    classify_arm(&method, uri.path(), uri.query(), &headers, &body)
}

/// The inner request's URI: `relativeUrl` (origin-form) or `url` (absolute, on ARM).
fn inner_uri(index: usize, request: &Map<String, Value>) -> Result<Uri, ClassifyError> {
    let parse = |text: &str| {
        text.parse::<Uri>().map_err(|_| {
            ClassifyError::content(format!(
                "its URL '{}' is not a valid URL; percent-encode it as a request line would be",
                text.escape_debug()
            ))
        })
    };
    match (get_str(request, "url")?, get_str(request, "relativeUrl")?) {
        (Some(_), Some(_)) => Err(ClassifyError::content(
            "it has both 'url' and 'relativeUrl'; send one of them",
        )),
        (None, None) => Err(ClassifyError::content(
            "it has neither 'url' nor 'relativeUrl'; send the request's URL",
        )),
        (None, Some(relative)) => {
            if !relative.starts_with('/') || relative.starts_with("//") {
                return Err(ClassifyError::content(
                    "its 'relativeUrl' must be a path starting with a single '/' (e.g. /subscriptions/{id}/resourceGroups?api-version=2022-09-01)",
                ));
            }
            parse(relative)
        }
        (Some(url), None) => {
            let uri = parse(url)?;
            let Some(authority) = uri.authority() else {
                return Err(ClassifyError::content(
                    "its 'url' must be absolute (https://management.azure.com/...); use 'relativeUrl' for a path",
                ));
            };
            let on_arm = uri.scheme_str() == Some("https")
                && !authority.as_str().contains('@')
                && authority.port_u16().is_none_or(|port| port == 443)
                && ARM_HOSTS
                    .iter()
                    .any(|host| host.eq_ignore_ascii_case(authority.host()));
            if !on_arm {
                return Err(ClassifyError::BatchForeignHost {
                    index,
                    host: authority.as_str().to_owned(),
                });
            }
            Ok(uri)
        }
    }
}

/// Headers an inner request carries (`requestHeaderDetails`, `headers`),
/// so that header hygiene applies to them too.
fn inner_headers(request: &Map<String, Value>) -> Result<HeaderMap, ClassifyError> {
    let mut headers = HeaderMap::new();
    for field in ["requestHeaderDetails", "headers"] {
        let Some(given) = get(request, field)? else {
            continue;
        };
        let given = given.as_object().ok_or_else(|| {
            ClassifyError::content(format!(
                "its '{field}' must be an object of header names to values"
            ))
        })?;
        for (name, value) in given {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                ClassifyError::content(format!("its '{field}' has an invalid header name"))
            })?;
            let value = value
                .as_str()
                .and_then(|v| HeaderValue::from_str(v).ok())
                .ok_or_else(|| {
                    ClassifyError::content(format!(
                        "its '{field}' has a header value that is not a valid string"
                    ))
                })?;
            headers.append(name, value);
        }
    }
    Ok(headers)
}

/// Whether a (decoded) path is `/batch`, in any case.
pub(crate) fn is_batch<S: AsRef<str>>(segments: &[S]) -> bool {
    matches!(segments, [only] if is(only, "batch"))
}
