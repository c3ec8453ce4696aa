//! What a simulated endpoint answers, before the common headers are added.

use axum::body::Body;
use axum::response::Response;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue, LOCATION, RETRY_AFTER};
use http::{HeaderMap, StatusCode};
use serde_json::Value;

/// The `Azure-AsyncOperation` header.
pub(crate) const AZURE_ASYNC_OPERATION: HeaderName =
    HeaderName::from_static("azure-asyncoperation");

/// A status, extra headers and an optional JSON body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Value>,
}

impl Reply {
    /// A JSON answer.
    pub(crate) fn json(status: StatusCode, body: Value) -> Self {
        Self {
            status,
            headers: HeaderMap::new(),
            body: Some(body),
        }
    }

    /// An answer without a body.
    pub(crate) fn empty(status: StatusCode) -> Self {
        Self {
            status,
            headers: HeaderMap::new(),
            body: None,
        }
    }

    /// Adds a header; values that are not valid header text are dropped.
    #[must_use]
    pub(crate) fn header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.insert(name, value);
        }
        self
    }

    /// Adds `Location` (and `Azure-AsyncOperation` when given) and `Retry-After: 0`.
    #[must_use]
    pub(crate) fn polling(self, location: &str, async_operation: Option<&str>) -> Self {
        let reply = self.header(LOCATION, location).header(RETRY_AFTER, "0");
        match async_operation {
            Some(url) => reply.header(AZURE_ASYNC_OPERATION, url),
            None => reply,
        }
    }

    /// The HTTP response, with `Content-Type` when there is a body.
    pub(crate) fn into_response(self) -> Response {
        let body = match &self.body {
            Some(json) => Body::from(json.to_string()),
            None => Body::empty(),
        };
        let mut response = Response::new(body);
        *response.status_mut() = self.status;
        if self.body.is_some() {
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
        }
        response.headers_mut().extend(self.headers);
        response
    }
}
