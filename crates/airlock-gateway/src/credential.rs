//! The gateway's own Azure credentials: `[upstream.credential]` (the
//! `default` identity) and each of `[[upstream.identities]]`.

use std::sync::Arc;
use std::time::Duration;

use airlock_core::{HttpClient, StaticTokenProvider, TokenProvider};
use airlock_credentials::{
    AzureCli, ClientCertificate, ClientSecret, CredentialMetrics, DEFAULT_AUTHORITY_HOST,
    DefaultChain, IMDS_ENDPOINT, IdentityEndpoint, ManagedIdentity, OnBehalfOf, SharedKey,
    TokenCache, TokenSource, UserAssigned, WorkloadIdentity,
};
use airlock_upstream::{CredentialConfig, UpstreamConfig, UpstreamIdentities};

use crate::config::read_file;
use crate::{ConfigError, StartError};

/// The upstream's identities: `default` (the Graph group resolver's too)
/// and each of `[[upstream.identities]]`, every one signed in at start.
pub(crate) async fn identities(
    config: &UpstreamConfig,
    default: Arc<dyn TokenProvider>,
    http: &Arc<dyn HttpClient>,
    metrics: &Arc<CredentialMetrics>,
) -> Result<UpstreamIdentities, StartError> {
    let mut identities = UpstreamIdentities::new(default);
    for identity in &config.identities {
        let serves = identity.serves.clone().unwrap_or_default();
        let credential = match (&identity.credential, identity.forward_caller_token) {
            (_, true) => {
                identities = identities.with_caller_token(&identity.name, serves);
                continue;
            }
            (Some(credential), _) if identity.on_behalf_of => {
                identities = identities.with_on_behalf_of(
                    &identity.name,
                    Arc::new(on_behalf_of(credential, http.clone())?),
                    serves,
                );
                continue;
            }
            (Some(credential), _) => credential,
            (None, false) => {
                return Err(ConfigError::Invalid {
                    key: "upstream.identities.credential",
                    problem: format!("identity '{}' has no credential", identity.name),
                    fix: "add credential = { kind = … }".into(),
                }
                .into());
            }
        };
        let tokens = provider(credential, &config.arm_audience, http.clone(), metrics)
            .await
            .map_err(|error| match error {
                StartError::Config(ConfigError::Invalid { key, problem, fix }) => {
                    StartError::Config(ConfigError::Invalid {
                        key: "upstream.identities.credential",
                        problem: format!(
                            "identity '{}': {}: {problem}",
                            identity.name,
                            key.replacen("upstream.credential", "credential", 1)
                        ),
                        fix,
                    })
                }
                other => other,
            })?;
        identities = identities.with(&identity.name, tokens, identity.serves.clone());
    }
    Ok(identities)
}

/// The on-behalf-of exchange of an identity that acts as the caller, with
/// its client secret (validation made sure it has one).
fn on_behalf_of(
    credential: &CredentialConfig,
    http: Arc<dyn HttpClient>,
) -> Result<OnBehalfOf, StartError> {
    let CredentialConfig::ClientSecret {
        tenant_id,
        client_id,
        client_secret,
        client_secret_file,
        authority_host,
    } = credential
    else {
        return Err(ConfigError::Invalid {
            key: "upstream.identities.on_behalf_of",
            problem: "an on-behalf-of identity needs a client secret".into(),
            fix: "give it credential.kind = \"client_secret\"".into(),
        }
        .into());
    };
    let secret = match (client_secret, client_secret_file) {
        (Some(secret), _) => secret.clone(),
        (None, Some(file)) => read_file("upstream.identities.credential.client_secret_file", file)?
            .trim()
            .to_owned(),
        (None, None) => String::new(),
    };
    Ok(OnBehalfOf::new(
        http,
        authority_host,
        tenant_id,
        client_id,
        secret,
    ))
}

/// The account keys of `[upstream.storage.shared_keys]`, read and checked.
pub(crate) fn shared_keys(config: &UpstreamConfig) -> Result<Vec<SharedKey>, StartError> {
    config
        .storage
        .shared_keys
        .iter()
        .map(|(account, source)| {
            let invalid = |problem: String| ConfigError::Invalid {
                key: "upstream.storage.shared_keys",
                problem,
                fix: "give the account's key1 or key2 (base64, as `az storage account keys list` shows it)".into(),
            };
            let text = source.read().map_err(invalid)?;
            SharedKey::new(account, &text).map_err(|e| invalid(e.to_string()).into())
        })
        .collect()
}

/// The provider one credential's tokens come from. A source that signs in
/// is tried once for ARM at start: a refusal (a wrong secret, an unknown
/// client) stops the start with Entra's reason; an unreachable token
/// endpoint only warns, and requests get 502 until it answers.
pub(crate) async fn provider(
    credential: &CredentialConfig,
    arm_audience: &str,
    http: Arc<dyn HttpClient>,
    metrics: &Arc<CredentialMetrics>,
) -> Result<Arc<dyn TokenProvider>, StartError> {
    let source: Arc<dyn TokenSource> = match credential {
        CredentialConfig::Static { token } => {
            return Ok(Arc::new(StaticTokenProvider::new(
                token.clone().unwrap_or_default(),
            )));
        }
        CredentialConfig::ClientSecret {
            tenant_id,
            client_id,
            client_secret,
            client_secret_file,
            authority_host,
        } => {
            let secret = match (client_secret, client_secret_file) {
                (Some(secret), _) => secret.clone(),
                (None, Some(file)) => read_file("upstream.credential.client_secret_file", file)?
                    .trim()
                    .to_owned(),
                (None, None) => String::new(),
            };
            Arc::new(ClientSecret::new(
                http,
                authority_host,
                tenant_id,
                client_id,
                secret,
            ))
        }
        CredentialConfig::ClientCertificate {
            tenant_id,
            client_id,
            certificate_file,
            key_file,
            algorithm,
            authority_host,
        } => {
            let certificate = read_file("upstream.credential.certificate_file", certificate_file)?;
            let key = match key_file {
                Some(file) => read_file("upstream.credential.key_file", file)?,
                None => certificate.clone(),
            };
            let source = ClientCertificate::new(
                http,
                authority_host,
                tenant_id,
                client_id,
                &certificate,
                &key,
                algorithm != "RS256",
            )
            .map_err(|error| ConfigError::Invalid {
                key: "upstream.credential.certificate_file",
                problem: error.message,
                fix: "give a PEM file with the certificate and its RSA private key (or the key in key_file)".into(),
            })?;
            Arc::new(source)
        }
        CredentialConfig::AzureCli { az_path, tenant_id } => {
            let mut cli = AzureCli::new(az_path.clone().unwrap_or_else(|| "az".into()));
            if let Some(tenant) = tenant_id {
                cli = cli.tenant(tenant);
            }
            Arc::new(cli)
        }
        CredentialConfig::Default {
            imds_endpoint,
            az_path,
            environment,
        } => {
            let chain = DefaultChain {
                imds_endpoint: imds_endpoint.clone(),
                az: az_path.clone().unwrap_or_else(|| "az".into()),
            };
            let env = |name: &str| {
                environment
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
            };
            let candidates = chain.candidates(&http, &platform_client()?, env);
            let source = DefaultChain::first_working(candidates, arm_audience)
                .await
                .map_err(|problem| ConfigError::Invalid {
                    key: "upstream.credential",
                    problem,
                    fix: "give the gateway an identity: AZURE_* variables for an app registration or workload identity, a managed identity on Azure, or `az login` for development; or choose a kind explicitly".into(),
                })?;
            return Ok(Arc::new(TokenCache::new(source).metrics(metrics.clone())));
        }
        CredentialConfig::WorkloadIdentity {
            tenant_id,
            client_id,
            token_file,
            authority_host,
        } => Arc::new(WorkloadIdentity::new(
            http,
            authority_host.as_deref().unwrap_or(DEFAULT_AUTHORITY_HOST),
            tenant_id.as_deref().unwrap_or_default(),
            client_id.as_deref().unwrap_or_default(),
            token_file.clone().unwrap_or_default(),
        )),
        CredentialConfig::ManagedIdentity {
            client_id,
            object_id,
            resource_id,
            imds_endpoint,
            app_service,
        } => {
            let endpoint = match app_service {
                Some((endpoint, header)) => IdentityEndpoint::AppService {
                    endpoint: endpoint.clone(),
                    header: header.clone(),
                },
                None => IdentityEndpoint::Imds(
                    imds_endpoint
                        .clone()
                        .unwrap_or_else(|| IMDS_ENDPOINT.into()),
                ),
            };
            let user_assigned = match (client_id, object_id, resource_id) {
                (Some(id), _, _) => Some(UserAssigned::ClientId(id.clone())),
                (_, Some(id), _) => Some(UserAssigned::ObjectId(id.clone())),
                (_, _, Some(id)) => Some(UserAssigned::ResourceId(id.clone())),
                _ => None,
            };
            Arc::new(ManagedIdentity::new(
                platform_client()?,
                endpoint,
                user_assigned,
            ))
        }
    };
    match source.fetch(arm_audience).await {
        Ok(_) => tracing::info!(identity = source.identity(), "signed in to Azure"),
        Err(error) if error.transient => tracing::warn!(
            identity = source.identity(),
            reason = %error,
            "cannot sign in to Azure yet; requests get 502 until the token endpoint answers"
        ),
        Err(error) => {
            return Err(ConfigError::Invalid {
                key: "upstream.credential",
                problem: format!("{} cannot sign in: {error}", source.identity()),
                fix: "check the identity's ids and secret (a secret's value, not its id, and that it has not expired), and that the identity is assigned to this host".into(),
            }
            .into());
        }
    }
    Ok(Arc::new(TokenCache::new(source).metrics(metrics.clone())))
}

/// The client for IMDS and the App Service identity endpoint: Azure serves
/// both over plain HTTP on a link-local or loopback address, so this one
/// client allows `http://` (the gateway's own stays https-only), and uses
/// no proxy.
fn platform_client() -> Result<Arc<dyn HttpClient>, StartError> {
    let pooled = airlock_http::ClientBuilder::new(airlock_http::TrustRoots::system())
        .allow_http(true)
        .connect_timeout(Duration::from_secs(2))
        .build()?;
    Ok(Arc::new(airlock_http::HttpsClient::new(
        pooled,
        Duration::from_secs(10),
    )))
}
