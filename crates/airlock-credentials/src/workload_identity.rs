//! [`WorkloadIdentity`]: workload identity federation (AKS, GitHub Actions
//! and the like): the platform writes a short-lived token to a file, and the
//! gateway trades it with Entra for Azure tokens.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use airlock_core::{BoxFuture, HttpClient};

use crate::entra;
use crate::{FetchedToken, SourceError, TokenSource};

/// The `client_assertion_type` of a JWT assertion.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Signs in as `client_id` with the federated token in `token_file`
/// (`AZURE_FEDERATED_TOKEN_FILE`), sent as `client_assertion`. The file is
/// read again on every fetch: the platform rotates it (AKS every hour or so).
pub struct WorkloadIdentity {
    http: Arc<dyn HttpClient>,
    token_url: String,
    client_id: String,
    token_file: PathBuf,
    identity: String,
}

impl fmt::Debug for WorkloadIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkloadIdentity")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("token_file", &self.token_file)
            .finish()
    }
}

impl WorkloadIdentity {
    /// Signs in as `client_id` of `tenant_id` at `authority_host`.
    pub fn new(
        http: Arc<dyn HttpClient>,
        authority_host: &str,
        tenant_id: &str,
        client_id: &str,
        token_file: impl Into<PathBuf>,
    ) -> Self {
        let token_file = token_file.into();
        Self {
            http,
            token_url: entra::token_url(authority_host, tenant_id),
            client_id: client_id.to_owned(),
            identity: format!(
                "client {client_id} in tenant {tenant_id} (workload identity, {})",
                token_file.display()
            ),
            token_file,
        }
    }
}

impl TokenSource for WorkloadIdentity {
    fn identity(&self) -> &str {
        &self.identity
    }

    fn fetch<'a>(&'a self, audience: &'a str) -> BoxFuture<'a, Result<FetchedToken, SourceError>> {
        Box::pin(async move {
            let assertion = tokio::fs::read_to_string(&self.token_file)
                .await
                .map_err(|e| {
                    SourceError::transient(format!(
                        "cannot read the federated token file {}: {e}",
                        self.token_file.display()
                    ))
                })?;
            let assertion = assertion.trim();
            let scope = entra::scope(audience);
            let form = [
                ("grant_type", "client_credentials"),
                ("client_id", self.client_id.as_str()),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", assertion),
                ("scope", scope.as_str()),
            ];
            entra::request_token(&*self.http, &self.token_url, &form, |text| {
                text.replace(assertion, "<redacted>")
            })
            .await
        })
    }
}
