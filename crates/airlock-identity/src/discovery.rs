//! OpenID Connect discovery, read with `openidconnect`'s metadata types,
//! over Airlock's one [`HttpClient`].

use std::sync::Arc;

use airlock_core::HttpClient;
use bytes::Bytes;
use http::header::ACCEPT;
use http::{HeaderValue, StatusCode};
use openidconnect::IssuerUrl;
use openidconnect::core::CoreProviderMetadata;

/// What discovery found.
pub(crate) struct Discovered {
    /// The issuer the metadata names (equal to the URL asked, as OIDC requires).
    pub(crate) issuer: String,
    pub(crate) jwks_uri: String,
}

/// Fetches `{issuer}/.well-known/openid-configuration` and reads it as
/// `openidconnect`'s provider metadata (which requires the fields OIDC
/// Discovery mandates), then checks that it names the same issuer.
///
/// `openidconnect`'s own `discover_async` would also fetch the JWKS with its
/// key types; the key store fetches it once itself, so only the metadata is
/// asked for here.
pub(crate) async fn discover(
    client: &Arc<dyn HttpClient>,
    issuer: &str,
) -> Result<Discovered, String> {
    let metadata = provider_metadata(client, issuer).await?;
    Ok(Discovered {
        issuer: metadata.issuer().to_string(),
        jwks_uri: metadata.jwks_uri().to_string(),
    })
}

/// An OpenID provider's metadata, read from
/// `{issuer}/.well-known/openid-configuration` over `client`; refused unless
/// it names `issuer` itself, as OIDC Discovery requires. For the
/// authorization-code flow (`airlock-signin`) as well as key discovery.
///
/// # Errors
///
/// A message naming the URL and what was wrong with its answer.
pub async fn provider_metadata(
    client: &Arc<dyn HttpClient>,
    issuer: &str,
) -> Result<CoreProviderMetadata, String> {
    let issuer_url =
        IssuerUrl::new(issuer.to_owned()).map_err(|e| format!("not an issuer URL: {e}"))?;
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let mut request = http::Request::get(&url)
        .body(Bytes::new())
        .map_err(|e| format!("bad discovery URL {url}: {e}"))?;
    request
        .headers_mut()
        .insert(ACCEPT, HeaderValue::from_static("application/json"));
    let response = client.send(request).await.map_err(|e| e.to_string())?;
    if response.status() != StatusCode::OK {
        return Err(format!("{url} answered {}", response.status()));
    }
    let metadata: CoreProviderMetadata = serde_json::from_slice(response.body())
        .map_err(|e| format!("{url} is not OpenID provider metadata: {e}"))?;
    if metadata.issuer() != &issuer_url {
        return Err(format!(
            "{url} names the issuer '{}', not '{issuer}' (OIDC Discovery requires them to be equal)",
            metadata.issuer().as_str()
        ));
    }
    Ok(metadata)
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_core::{BoxFuture, HttpClientError};

    /// Answers every request with one discovery document.
    struct Canned(String);

    impl HttpClient for Canned {
        fn send(
            &self,
            _request: http::Request<Bytes>,
        ) -> BoxFuture<'_, Result<http::Response<Bytes>, HttpClientError>> {
            let body = Bytes::from(self.0.clone());
            Box::pin(async move { Ok(http::Response::new(body)) })
        }
    }

    fn metadata(issuer: &str) -> String {
        serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "jwks_uri": format!("{issuer}/keys"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
        })
        .to_string()
    }

    #[tokio::test]
    async fn reads_the_jwks_uri_of_the_same_issuer_only() {
        let issuer = "https://login.example/t1/v2.0";
        let client: Arc<dyn HttpClient> = Arc::new(Canned(metadata(issuer)));
        let found = discover(&client, issuer).await.unwrap();
        assert_eq!(found.jwks_uri, "https://login.example/t1/v2.0/keys");

        let impostor: Arc<dyn HttpClient> =
            Arc::new(Canned(metadata("https://evil.example/t1/v2.0")));
        let error = discover(&impostor, issuer).await.err().unwrap();
        assert!(
            error.contains("names the issuer 'https://evil.example/t1/v2.0'"),
            "{error}"
        );

        let garbage: Arc<dyn HttpClient> = Arc::new(Canned("<html>".into()));
        let error = discover(&garbage, issuer).await.err().unwrap();
        assert!(error.contains("is not OpenID provider metadata"), "{error}");
    }
}
