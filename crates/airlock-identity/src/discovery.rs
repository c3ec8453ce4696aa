//! OpenID Connect discovery through `openidconnect`, over Airlock's one
//! [`HttpClient`].

use std::sync::Arc;

use airlock_core::{HttpClient, HttpClientError};
use bytes::Bytes;
use openidconnect::core::CoreProviderMetadata;
use openidconnect::{HttpRequest, HttpResponse, IssuerUrl};

/// What discovery found.
pub(crate) struct Discovered {
    /// The issuer the metadata names (equal to the URL asked, as OIDC requires).
    pub(crate) issuer: String,
    pub(crate) jwks_uri: String,
}

/// Fetches `{issuer}/.well-known/openid-configuration`; `openidconnect`
/// checks that the metadata names the same issuer.
pub(crate) async fn discover(
    client: &Arc<dyn HttpClient>,
    issuer: &str,
) -> Result<Discovered, String> {
    let issuer_url =
        IssuerUrl::new(issuer.to_owned()).map_err(|e| format!("not an issuer URL: {e}"))?;
    let send = |request: HttpRequest| {
        let client = client.clone();
        async move {
            let (parts, body) = request.into_parts();
            let response = client
                .send(http::Request::from_parts(parts, Bytes::from(body)))
                .await?;
            let (parts, body) = response.into_parts();
            Ok::<HttpResponse, HttpClientError>(http::Response::from_parts(parts, body.to_vec()))
        }
    };
    let metadata = CoreProviderMetadata::discover_async(issuer_url, &send)
        .await
        .map_err(|e| error_chain(&e))?;
    Ok(Discovered {
        issuer: metadata.issuer().to_string(),
        jwks_uri: metadata.jwks_uri().to_string(),
    })
}

/// `e: cause: cause`, as one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
