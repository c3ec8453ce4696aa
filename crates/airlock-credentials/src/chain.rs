//! [`DefaultChain`]: the first credential the environment supports.

use std::path::PathBuf;
use std::sync::Arc;

use airlock_core::{BoxFuture, HttpClient};

use crate::{
    AzureCli, ClientCertificate, ClientSecret, DEFAULT_AUTHORITY_HOST, FetchedToken,
    IdentityEndpoint, ManagedIdentity, SourceError, TokenSource, UserAssigned, WorkloadIdentity,
};

/// Where the default chain looks, besides the environment.
#[derive(Clone, Debug)]
pub struct DefaultChain {
    /// IMDS, if not at its Azure address (tests).
    pub imds_endpoint: Option<String>,
    /// The Azure CLI program (default `az`).
    pub az: PathBuf,
}

impl Default for DefaultChain {
    fn default() -> Self {
        Self {
            imds_endpoint: None,
            az: "az".into(),
        }
    }
}

impl DefaultChain {
    /// The sources the environment (`env`) supports, in order: a client
    /// secret from `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and
    /// `AZURE_CLIENT_SECRET`, or a certificate from
    /// `AZURE_CLIENT_CERTIFICATE_PATH`; workload identity when
    /// `AZURE_FEDERATED_TOKEN_FILE` is set too; the managed identity (the
    /// App Service endpoint, else IMDS; user-assigned when
    /// `AZURE_CLIENT_ID` is set); the Azure CLI.
    pub fn candidates(
        &self,
        http: &Arc<dyn HttpClient>,
        platform: &Arc<dyn HttpClient>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Vec<Arc<dyn TokenSource>> {
        let var = |name: &str| env(name).filter(|v| !v.is_empty());
        let authority =
            var("AZURE_AUTHORITY_HOST").unwrap_or_else(|| DEFAULT_AUTHORITY_HOST.into());
        let mut sources: Vec<Arc<dyn TokenSource>> = Vec::new();
        if let (Some(tenant), Some(client), Some(secret)) = (
            var("AZURE_TENANT_ID"),
            var("AZURE_CLIENT_ID"),
            var("AZURE_CLIENT_SECRET"),
        ) {
            sources.push(Arc::new(ClientSecret::new(
                http.clone(),
                &authority,
                &tenant,
                &client,
                secret,
            )));
        }
        if let (Some(tenant), Some(client), Some(path)) = (
            var("AZURE_TENANT_ID"),
            var("AZURE_CLIENT_ID"),
            var("AZURE_CLIENT_CERTIFICATE_PATH"),
        ) {
            let identity = format!("client {client} in tenant {tenant} (certificate {path})");
            let built = std::fs::read_to_string(&path)
                .map_err(|error| SourceError::permanent(format!("cannot read it: {error}")))
                .and_then(|pem| {
                    ClientCertificate::new(
                        http.clone(),
                        &authority,
                        &tenant,
                        &client,
                        &pem,
                        &pem,
                        true,
                    )
                });
            let source: Arc<dyn TokenSource> = match built {
                Ok(source) => Arc::new(source),
                Err(reason) => Arc::new(Unusable { identity, reason }),
            };
            sources.push(source);
        }
        if let (Some(tenant), Some(client), Some(file)) = (
            var("AZURE_TENANT_ID"),
            var("AZURE_CLIENT_ID"),
            var("AZURE_FEDERATED_TOKEN_FILE"),
        ) {
            sources.push(Arc::new(WorkloadIdentity::new(
                http.clone(),
                &authority,
                &tenant,
                &client,
                file,
            )));
        }
        let endpoint = IdentityEndpoint::from_env(&env, self.imds_endpoint.clone());
        let user_assigned = var("AZURE_CLIENT_ID").map(UserAssigned::ClientId);
        sources.push(Arc::new(ManagedIdentity::new(
            platform.clone(),
            endpoint,
            user_assigned,
        )));
        let mut cli = AzureCli::new(self.az.clone());
        if let Some(tenant) = var("AZURE_TENANT_ID") {
            cli = cli.tenant(tenant);
        }
        sources.push(Arc::new(cli));
        sources
    }

    /// The first of `candidates` that gets a token for `audience`, or one
    /// error listing what each said.
    ///
    /// # Errors
    ///
    /// Every candidate failed: `identity: reason` for each, in order.
    pub async fn first_working(
        candidates: Vec<Arc<dyn TokenSource>>,
        audience: &str,
    ) -> Result<Arc<dyn TokenSource>, String> {
        let mut tried = Vec::new();
        for source in candidates {
            match source.fetch(audience).await {
                Ok(_) => {
                    tracing::info!(
                        identity = source.identity(),
                        "default credential chain: using it"
                    );
                    return Ok(source);
                }
                Err(error) => tried.push(format!("{}: {error}", source.identity())),
            }
        }
        Err(format!(
            "no credential in the default chain worked; tried {}",
            tried.join("; ")
        ))
    }
}

/// A source the environment names but that cannot work (an unreadable
/// certificate file): it fails with why, so the chain's error says so.
struct Unusable {
    identity: String,
    reason: SourceError,
}

impl TokenSource for Unusable {
    fn identity(&self) -> &str {
        &self.identity
    }
    fn fetch<'a>(&'a self, _audience: &'a str) -> BoxFuture<'a, Result<FetchedToken, SourceError>> {
        let reason = self.reason.clone();
        Box::pin(async move { Err(reason) })
    }
}
