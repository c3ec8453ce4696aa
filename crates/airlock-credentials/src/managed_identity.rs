//! [`ManagedIdentity`]: the identity Azure gives the machine or app the
//! gateway runs on, from IMDS (VMs, scale sets, AKS nodes) or the App
//! Service endpoint (App Service, Functions, Container Apps).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use airlock_core::{AccessToken, BoxFuture, HttpClient};
use bytes::Bytes;
use http::{Request, StatusCode};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use crate::entra::{ErrorAnswer, Number};
use crate::{FetchedToken, SourceError, TokenSource};

/// Where IMDS answers on every Azure VM (link-local, never through a proxy).
pub const IMDS_ENDPOINT: &str = "http://169.254.169.254/metadata/identity/oauth2/token";
/// Retries of an IMDS request answered 429, 404, 410 or 5xx (Azure's
/// guidance: IMDS throttles and restarts; back off exponentially).
const IMDS_RETRIES: u32 = 3;
const IMDS_FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// A user-assigned identity, named one of the three ways Azure accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserAssigned {
    /// Its client (application) id.
    ClientId(String),
    /// Its object (principal) id.
    ObjectId(String),
    /// Its ARM resource id.
    ResourceId(String),
}

/// Where the platform serves managed-identity tokens.
#[derive(Clone, PartialEq, Eq)]
pub enum IdentityEndpoint {
    /// IMDS ([`IMDS_ENDPOINT`] on Azure; another URL for tests).
    Imds(String),
    /// `IDENTITY_ENDPOINT`, with the `IDENTITY_HEADER` secret to send.
    AppService {
        /// `IDENTITY_ENDPOINT`.
        endpoint: String,
        /// `IDENTITY_HEADER` (a secret: never shown).
        header: String,
    },
}

impl fmt::Debug for IdentityEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityEndpoint::Imds(url) => f.debug_tuple("Imds").field(url).finish(),
            IdentityEndpoint::AppService { endpoint, .. } => f
                .debug_struct("AppService")
                .field("endpoint", endpoint)
                .field("header", &"<redacted>")
                .finish(),
        }
    }
}

impl IdentityEndpoint {
    /// As Azure sets up the environment: the App Service endpoint when
    /// `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` are both set, else IMDS
    /// (at `imds`, or [`IMDS_ENDPOINT`]).
    ///
    /// ```
    /// use airlock_credentials::{IMDS_ENDPOINT, IdentityEndpoint};
    /// let vm = IdentityEndpoint::from_env(|_| None, None);
    /// assert_eq!(vm, IdentityEndpoint::Imds(IMDS_ENDPOINT.into()));
    /// let app = IdentityEndpoint::from_env(|name| match name {
    ///     "IDENTITY_ENDPOINT" => Some("http://localhost:4141/msi/token".into()),
    ///     "IDENTITY_HEADER" => Some("secret".into()),
    ///     _ => None,
    /// }, None);
    /// assert!(matches!(app, IdentityEndpoint::AppService { .. }));
    /// ```
    pub fn from_env(env: impl Fn(&str) -> Option<String>, imds: Option<String>) -> Self {
        match (env("IDENTITY_ENDPOINT"), env("IDENTITY_HEADER")) {
            (Some(endpoint), Some(header)) if !endpoint.is_empty() && !header.is_empty() => {
                IdentityEndpoint::AppService { endpoint, header }
            }
            _ => IdentityEndpoint::Imds(imds.unwrap_or_else(|| IMDS_ENDPOINT.into())),
        }
    }
}

/// Tokens for the managed identity of the machine or app the gateway runs on.
pub struct ManagedIdentity {
    http: Arc<dyn HttpClient>,
    endpoint: IdentityEndpoint,
    user_assigned: Option<UserAssigned>,
    identity: String,
}

impl fmt::Debug for ManagedIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagedIdentity")
            .field("endpoint", &self.endpoint)
            .field("user_assigned", &self.user_assigned)
            .finish_non_exhaustive()
    }
}

impl ManagedIdentity {
    /// The system-assigned identity (`user_assigned: None`) or a
    /// user-assigned one, from `endpoint`.
    pub fn new(
        http: Arc<dyn HttpClient>,
        endpoint: IdentityEndpoint,
        user_assigned: Option<UserAssigned>,
    ) -> Self {
        let which = match &user_assigned {
            None => "system-assigned managed identity".to_owned(),
            Some(UserAssigned::ClientId(id)) => format!("managed identity with client id {id}"),
            Some(UserAssigned::ObjectId(id)) => format!("managed identity with object id {id}"),
            Some(UserAssigned::ResourceId(id)) => format!("managed identity {id}"),
        };
        let from = match &endpoint {
            IdentityEndpoint::Imds(_) => "IMDS",
            IdentityEndpoint::AppService { .. } => "the App Service identity endpoint",
        };
        Self {
            http,
            endpoint,
            user_assigned,
            identity: format!("{which} (from {from})"),
        }
    }

    fn url(&self, audience: &str) -> String {
        let (base, api_version, resource_key) = match &self.endpoint {
            IdentityEndpoint::Imds(url) => (url.as_str(), "2018-02-01", "msi_res_id"),
            IdentityEndpoint::AppService { endpoint, .. } => {
                (endpoint.as_str(), "2019-08-01", "mi_res_id")
            }
        };
        let encode = |v: &str| utf8_percent_encode(v, NON_ALPHANUMERIC).to_string();
        let mut url = format!(
            "{base}?api-version={api_version}&resource={}",
            encode(audience.trim_end_matches('/'))
        );
        match &self.user_assigned {
            None => {}
            Some(UserAssigned::ClientId(id)) => url.push_str(&format!("&client_id={}", encode(id))),
            Some(UserAssigned::ObjectId(id)) => url.push_str(&format!("&object_id={}", encode(id))),
            Some(UserAssigned::ResourceId(id)) => {
                url.push_str(&format!("&{resource_key}={}", encode(id)));
            }
        }
        url
    }

    /// One request; `Err((error, retry))`.
    async fn ask(&self, url: &str) -> Result<FetchedToken, (SourceError, bool)> {
        let mut request = Request::get(url);
        request = match &self.endpoint {
            IdentityEndpoint::Imds(_) => request.header("metadata", "true"),
            IdentityEndpoint::AppService { header, .. } => {
                request.header("x-identity-header", header)
            }
        };
        let request = request.body(Bytes::new()).map_err(|e| {
            (
                SourceError::permanent(format!("bad identity endpoint URL: {e}")),
                false,
            )
        })?;
        // Unreachable is not retried here (the cache retries): off Azure,
        // IMDS never answers, and the default chain must move on quickly.
        let response = self.http.send(request).await.map_err(|e| {
            (
                SourceError::transient(format!("the identity endpoint could not be reached: {e}")),
                false,
            )
        })?;
        let status = response.status();
        if status.is_success() {
            let answer: Answer = serde_json::from_slice(response.body()).map_err(|e| {
                (
                    SourceError::transient(format!(
                        "the identity endpoint answered {status} with no token: {e}"
                    )),
                    false,
                )
            })?;
            return Ok(FetchedToken::new(AccessToken::new(
                answer.access_token.clone(),
                answer.expiry(),
            )));
        }
        let error: ErrorAnswer = serde_json::from_slice(response.body()).unwrap_or_default();
        let message = format!(
            "the identity endpoint answered {status}: {} {}",
            error.error, error.error_description
        );
        let retry = matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::NOT_FOUND | StatusCode::GONE
        ) || status.is_server_error();
        Err((
            SourceError {
                message: message.trim_end().to_owned(),
                transient: retry,
            },
            retry,
        ))
    }
}

/// The endpoints' answer: numbers as strings (IMDS) or numbers.
#[derive(Deserialize)]
struct Answer {
    access_token: String,
    expires_in: Option<Number>,
    expires_on: Option<Number>,
}

impl Answer {
    fn expiry(&self) -> Option<SystemTime> {
        if let Some(on) = self.expires_on.as_ref().and_then(Number::value) {
            return UNIX_EPOCH.checked_add(Duration::from_secs(on));
        }
        let lifetime = self.expires_in.as_ref().and_then(Number::value)?;
        SystemTime::now().checked_add(Duration::from_secs(lifetime))
    }
}

impl TokenSource for ManagedIdentity {
    fn identity(&self) -> &str {
        &self.identity
    }

    fn fetch<'a>(&'a self, audience: &'a str) -> BoxFuture<'a, Result<FetchedToken, SourceError>> {
        Box::pin(async move {
            let url = self.url(audience);
            let retries = match self.endpoint {
                IdentityEndpoint::Imds(_) => IMDS_RETRIES,
                IdentityEndpoint::AppService { .. } => 0,
            };
            let mut pause = IMDS_FIRST_BACKOFF;
            let mut attempt = 0;
            loop {
                match self.ask(&url).await {
                    Ok(token) => return Ok(token),
                    Err((error, true)) if attempt < retries => {
                        tracing::info!(identity = self.identity(), attempt, reason = %error, "managed identity token request failed; retrying");
                        tokio::time::sleep(pause).await;
                        pause *= 2;
                        attempt += 1;
                    }
                    Err((error, _)) => return Err(error),
                }
            }
        })
    }
}
