//! [`ClientSecret`]: an app registration signing in with a client secret
//! (OAuth 2.0 client credentials against Entra's v2.0 token endpoint).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use airlock_core::{AccessToken, BoxFuture, HttpClient};
use bytes::Bytes;
use http::{Request, StatusCode, header};
use serde::Deserialize;

use crate::form;
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
            token_url: format!(
                "{}/{tenant_id}/oauth2/v2.0/token",
                authority_host.trim_end_matches('/')
            ),
            client_id: client_id.to_owned(),
            secret: secret.into(),
            identity: format!("client {client_id} in tenant {tenant_id} (client secret)"),
        }
    }

    /// Where tokens are asked for.
    pub fn token_url(&self) -> &str {
        &self.token_url
    }

    /// `text` with every copy of the secret cut out.
    fn scrub(&self, text: &str) -> String {
        if self.secret.is_empty() {
            return text.to_owned();
        }
        text.replace(&self.secret, "<redacted>")
    }
}

/// Entra's token answer.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: Option<Number>,
    refresh_in: Option<Number>,
}

/// Entra's numbers: JSON numbers in v2.0, strings in some older answers.
#[derive(Deserialize)]
#[serde(untagged)]
enum Number {
    Int(u64),
    Text(String),
}

impl Number {
    fn seconds(&self) -> Option<Duration> {
        match self {
            Number::Int(n) => Some(Duration::from_secs(*n)),
            Number::Text(text) => text.trim().parse().ok().map(Duration::from_secs),
        }
    }
}

/// Entra's error answer.
#[derive(Deserialize, Default)]
#[serde(default)]
struct ErrorAnswer {
    error: String,
    error_description: String,
}

impl TokenSource for ClientSecret {
    fn identity(&self) -> &str {
        &self.identity
    }

    fn fetch<'a>(&'a self, audience: &'a str) -> BoxFuture<'a, Result<FetchedToken, SourceError>> {
        Box::pin(async move {
            let scope = format!("{}/.default", audience.trim_end_matches('/'));
            let body = form::encode(&[
                ("grant_type", "client_credentials"),
                ("client_id", &self.client_id),
                ("client_secret", &self.secret),
                ("scope", &scope),
            ]);
            let request = Request::post(&self.token_url)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::ACCEPT, "application/json")
                .body(Bytes::from(body))
                .map_err(|e| {
                    SourceError::permanent(format!("bad token URL {}: {e}", self.token_url))
                })?;
            let asked_at = SystemTime::now();
            let response = self.http.send(request).await.map_err(|e| {
                SourceError::transient(format!(
                    "the token endpoint {} could not be reached: {}",
                    self.token_url,
                    self.scrub(&e.to_string())
                ))
            })?;
            let status = response.status();
            if status.is_success() {
                let answer: TokenAnswer = serde_json::from_slice(response.body()).map_err(|e| {
                    SourceError::transient(format!(
                        "the token endpoint {} answered {status} with no token in it: {e}",
                        self.token_url
                    ))
                })?;
                let expires_at = answer
                    .expires_in
                    .and_then(|n| n.seconds())
                    .map(|lifetime| asked_at + lifetime);
                return Ok(FetchedToken {
                    token: AccessToken::new(answer.access_token, expires_at),
                    refresh_in: answer.refresh_in.and_then(|n| n.seconds()),
                });
            }
            let error: ErrorAnswer = serde_json::from_slice(response.body()).unwrap_or_default();
            let message = self.scrub(&format!(
                "the token endpoint {} answered {status}: {} {}",
                self.token_url, error.error, error.error_description
            ));
            let transient = status == StatusCode::TOO_MANY_REQUESTS
                || status == StatusCode::REQUEST_TIMEOUT
                || status.is_server_error();
            Err(SourceError {
                message: message.trim_end().to_owned(),
                transient,
            })
        })
    }
}
