//! The gateway's own Azure credential, from `[upstream.credential]`.

use std::sync::Arc;

use airlock_core::{HttpClient, StaticTokenProvider, TokenProvider};
use airlock_credentials::{ClientSecret, TokenCache, TokenSource};
use airlock_upstream::{CredentialConfig, UpstreamConfig};

use crate::{ConfigError, StartError};

/// The provider the upstream (and the Graph group resolver) ask for tokens.
/// A source that signs in is tried once for ARM at start: a refusal (a
/// wrong secret, an unknown client) stops the start with Entra's reason; an
/// unreachable token endpoint only warns, and requests get 502 until it
/// answers.
pub(crate) async fn provider(
    config: &UpstreamConfig,
    http: Arc<dyn HttpClient>,
) -> Result<Arc<dyn TokenProvider>, StartError> {
    let source: Arc<dyn TokenSource> = match &config.credential {
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
                (None, Some(file)) => std::fs::read_to_string(file)
                    .map_err(|e| ConfigError::Invalid {
                        key: "upstream.credential.client_secret_file",
                        problem: format!("cannot read {}: {e}", file.display()),
                        fix: "make it readable by the gateway".into(),
                    })?
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
    };
    match source.fetch(&config.arm_audience).await {
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
                fix: "check tenant_id, client_id and the secret (its value, not its id), and that it has not expired".into(),
            }
            .into());
        }
    }
    Ok(Arc::new(TokenCache::new(source)))
}
