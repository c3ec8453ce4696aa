//! The classify layer, fed with the gateway's routing table: a request's
//! host decides whether it is an ARM or a Key Vault request (and which
//! vault); hosts outside the allowlist are refused before anything is read.

use airlock_azure::ClassifyLayer;
use airlock_upstream::{Routes, request_body_error};

use crate::Config;

/// Builds the layer; bodies are read once, here, within `limits.max_request_body_bytes`.
pub(crate) fn layer(config: &Config, routes: Routes) -> ClassifyLayer {
    let (limit, body_timeout) = (
        config.limits.max_request_body_bytes,
        config.limits.request_body_timeout,
    );
    ClassifyLayer::new(move |uri: &http::Uri, headers: &http::HeaderMap| {
        routes.resolve(uri, headers)
    })
    .max_body_bytes(config.limits.max_request_body_bytes)
    .map_body_error(move |error| request_body_error(error, limit, body_timeout))
}
