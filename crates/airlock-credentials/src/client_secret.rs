//! [`ClientSecret`]: an app registration signing in with a client secret
//! (OAuth 2.0 client credentials against Entra's v2.0 token endpoint).

use std::fmt;
use std::sync::Arc;

use airlock_core::{BoxFuture, HttpClient};

use crate::entra;
use crate::{FetchedToken, SourceError, TokenSource};

/// Entra's authority host in the public cloud.
pub const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";

/// Signs in as an app registration with a client secret:
/// `POST {authority}/{tenant}/oauth2/v2.0/token` with
/// `grant_type=client_credentials`, `client_id`, `client_secret` and
/// `scope={audience}/.default`.
///
/// The secret is never in `Debug` output, logs or errors: a message from the
/// token endpoint is passed on with any copy of the secret cut out.
///
/// ```
/// use std::sync::Arc;
/// use airlock_credentials::{ClientSecret, DEFAULT_AUTHORITY_HOST, TokenSource};
///
/// # let http: Arc<dyn airlock_core::HttpClient> = unimplemented_client();
/// let source = ClientSecret::new(http, DEFAULT_AUTHORITY_HOST, "tenant-id", "client-id", "s3cret");
/// assert_eq!(source.token_url(), "https://login.microsoftonline.com/tenant-id/oauth2/v2.0/token");
/// assert!(source.identity().contains("client-id"));
/// assert!(!format!("{source:?}").contains("s3cret"));
/// # fn unimplemented_client() -> Arc<dyn airlock_core::HttpClient> {
/// #     struct Never;
/// #     impl airlock_core::HttpClient for Never {
/// #         fn send(&self, _: http::Request<bytes::Bytes>) -> airlock_core::BoxFuture<'_, Result<http::Response<bytes::Bytes>, airlock_core::HttpClientError>> {
/// #             Box::pin(async { Err(airlock_core::HttpClientError("offline".into())) })
/// #         }
/// #     }
/// #     Arc::new(Never)
/// # }
/// ```
pub struct ClientSecret {
    http: Arc<dyn HttpClient>,
    token_url: String,
    client_id: String,
    secret: String,
    identity: String,
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSecret")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl ClientSecret {
    /// Signs in as `client_id` of `tenant_id` at `authority_host` (e.g.
    /// [`DEFAULT_AUTHORITY_HOST`], `https://login.microsoftonline.us`).
    pub fn new(
        http: Arc<dyn HttpClient>,
        authority_host: &str,
        tenant_id: &str,
        client_id: &str,
        secret: impl Into<String>,
    ) -> Self {
        Self {
            http,
            token_url: entra::token_url(authority_host, tenant_id),
            client_id: client_id.to_owned(),
            secret: secret.into(),
            identity: format!("client {client_id} in tenant {tenant_id} (client secret)"),
        }
    }

    /// Where tokens are asked for.
    pub fn token_url(&self) -> &str {
        &self.token_url
    }

    /// Its application (client) id.
    pub(crate) fn client_id(&self) -> &str {
        &self.client_id
    }

    /// POSTs `grant` (the grant's own fields) with this client's id and
    /// secret to the token endpoint; the secret, and `also_hidden` when
    /// given (a caller's token), are cut out of any message.
    pub(crate) async fn request(
        &self,
        grant: &[(&str, &str)],
        also_hidden: Option<(&str, &str)>,
    ) -> Result<FetchedToken, SourceError> {
        let mut form = vec![
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.secret.as_str()),
        ];
        form.extend_from_slice(grant);
        let scrub = |text: &str| {
            let mut text = text.to_owned();
            if !self.secret.is_empty() {
                text = text.replace(&self.secret, "<redacted>");
            }
            if let Some((hidden, shown)) = also_hidden {
                text = text.replace(hidden, shown);
            }
            text
        };
        entra::request_token(&*self.http, &self.token_url, &form, scrub).await
    }
}

impl TokenSource for ClientSecret {
    fn identity(&self) -> &str {
        &self.identity
    }

    fn fetch<'a>(&'a self, audience: &'a str) -> BoxFuture<'a, Result<FetchedToken, SourceError>> {
        Box::pin(async move {
            let scope = entra::scope(audience);
            self.request(
                &[
                    ("grant_type", "client_credentials"),
                    ("scope", scope.as_str()),
                ],
                None,
            )
            .await
        })
    }
}
