//! The identity layer, built from `[identity]`.

use std::sync::Arc;

use airlock_core::{HttpClient, TokenProvider};
use airlock_identity::{
    ClaimMapping, GraphGroupResolver, IdentityLayer, IdentityMetrics, IssuerRouter, JwtValidator,
    JwtValidatorBuilder, KeySource,
};
use airlock_signin::{CALLBACK_PATH, SignIn};

use crate::config::{GroupResolverKind, IdentityConfig, KeysFrom, ProviderConfig};
use crate::{ConfigError, StartError};

/// A validator from `[identity]` (keys, algorithms, tenants, issuers, group
/// resolution) for tokens of `audiences`.
async fn validator(
    config: &IdentityConfig,
    client: Arc<dyn HttpClient>,
    tokens: Arc<dyn TokenProvider>,
    audiences: &[&str],
    metrics: Option<Arc<IdentityMetrics>>,
) -> Result<JwtValidator, StartError> {
    let mut builder = common(
        config,
        config.keys_from()?,
        "identity.jwks_file",
        client.clone(),
    )?;
    for tenant in &config.tenants {
        builder = builder.tenant(tenant);
    }
    for audience in audiences {
        builder = builder.audience(*audience);
    }
    for issuer in &config.issuers {
        builder = builder.issuer(issuer);
    }
    if let Some(metrics) = metrics {
        builder = builder.metrics(metrics);
    }
    if config.groups.resolver == GroupResolverKind::Graph {
        builder = builder.group_resolver(Arc::new(
            GraphGroupResolver::new(client, tokens, &config.groups.graph_url)
                .ttl(config.groups.cache_ttl),
        ));
    }
    builder.build().await.map_err(StartError::Identity)
}

/// A validator builder with `[identity]`'s algorithms, leeway, refresh and
/// cache, reading keys from `keys` (`file_key` names the setting in errors).
fn common(
    config: &IdentityConfig,
    keys: KeysFrom,
    file_key: &'static str,
    client: Arc<dyn HttpClient>,
) -> Result<JwtValidatorBuilder, ConfigError> {
    let keys = match keys {
        KeysFrom::Discovery(url) => KeySource::Discovery(url),
        KeysFrom::JwksUrl(url) => KeySource::JwksUrl(url),
        KeysFrom::JwksFile(path) => KeySource::Static(crate::config::read_file(file_key, &path)?),
    };
    let algorithms = config
        .algorithms
        .iter()
        .filter_map(|name| name.parse().ok())
        .collect();
    Ok(JwtValidator::builder()
        .keys(keys)
        .http_client(client)
        .algorithms(algorithms)
        .leeway(config.leeway)
        .refresh_interval(config.key_refresh_interval)
        .unknown_kid_interval(config.unknown_kid_refetch_interval)
        .cache_capacity(config.token_cache_size))
}

/// A validator for one `[[identity.provider]]`: its issuer only, its
/// audiences (else `[identity]`'s), its claim mapping.
async fn provider(
    config: &IdentityConfig,
    provider: &ProviderConfig,
    client: Arc<dyn HttpClient>,
    audiences: &[&str],
    metrics: &Arc<IdentityMetrics>,
) -> Result<JwtValidator, StartError> {
    let mut mapping = ClaimMapping::new(&provider.name).id_claim(&provider.claims.id);
    if let Some(name) = &provider.claims.name {
        mapping = mapping.name_claim(name);
    }
    if let Some(groups) = &provider.claims.groups {
        mapping = mapping.groups_claim(groups);
    }
    let mut builder = common(
        config,
        provider.keys_from()?,
        "identity.provider.jwks_file",
        client,
    )?
    .issuer(&provider.issuer)
    .claims(mapping)
    .metrics(metrics.clone());
    let own: Vec<&str> = provider.audiences.iter().map(String::as_str).collect();
    for audience in if own.is_empty() { audiences } else { &own } {
        builder = builder.audience(*audience);
    }
    builder.build().await.map_err(|e| {
        StartError::Identity(airlock_identity::BuildError::Invalid(format!(
            "[[identity.provider]] '{}': {e}",
            provider.name
        )))
    })
}

/// Approvers' browser sign-in from `[admin.sign_in]`: its ID tokens are
/// verified like agents' tokens (`[identity]`'s keys, tenants and group
/// resolution), for the approver app's client id.
pub(crate) async fn sign_in(
    config: &crate::Config,
    admin_url: &str,
    client: Arc<dyn HttpClient>,
    tokens: Arc<dyn TokenProvider>,
) -> Result<Option<SignIn>, StartError> {
    let Some(sign_in) = &config.admin.sign_in else {
        return Ok(None);
    };
    let secret = sign_in.secret(|name| std::env::var(name).ok())?;
    let issuer = match (&sign_in.issuer, config.identity.keys_from()?) {
        (Some(issuer), _) => issuer.clone(),
        (None, KeysFrom::Discovery(url)) => url,
        (None, _) => {
            return Err(ConfigError::Invalid {
                key: "admin.sign_in.issuer",
                problem: "no OpenID provider to sign in with: [identity] reads keys from a JWKS, not by discovery".into(),
                fix: "set admin.sign_in.issuer, e.g. https://login.microsoftonline.com/<tenant>/v2.0".into(),
            }
            .into());
        }
    };
    let id_tokens = validator(
        &config.identity,
        client.clone(),
        tokens,
        &[&sign_in.client_id],
        None,
    )
    .await?;
    let built = SignIn::builder(
        issuer,
        &sign_in.client_id,
        secret,
        format!("{admin_url}{CALLBACK_PATH}"),
        client,
        Arc::new(id_tokens),
    )
    .session_ttl(sign_in.session_ttl)
    .landing("/ui/approvals")
    .build()
    .await
    .map_err(|e| StartError::SignIn(e.to_string()))?;
    Ok(Some(built))
}

/// Builds the validator (loading the signing keys once: an unreachable
/// identity provider stops the start with an error naming it) and the layer,
/// whose 401 challenge is the one Key Vault sends, naming the first allowed
/// tenant and the gateway's own app ID URI. Agents' tokens are counted
/// into `metrics` (approvers' sign-ins are not).
pub(crate) async fn layer(
    config: &IdentityConfig,
    client: Arc<dyn HttpClient>,
    tokens: Arc<dyn TokenProvider>,
    azure_audiences: &[(String, String)],
    metrics: Arc<IdentityMetrics>,
) -> Result<IdentityLayer, StartError> {
    let audiences: Vec<&str> = config
        .audiences
        .iter()
        .filter(|a| !a.is_empty())
        .map(String::as_str)
        .collect();
    if audiences
        .iter()
        .any(|a| a.trim_end_matches('/') == "https://management.azure.com")
    {
        tracing::warn!(
            "identity.audiences accepts ARM-audience tokens: an agent holding one can also call Azure directly, around the gateway"
        );
    }
    let entra = validator(
        config,
        client.clone(),
        tokens,
        &audiences,
        Some(metrics.clone()),
    )
    .await?;
    let mut layer = if config.providers.is_empty() {
        IdentityLayer::new(entra)
    } else {
        let mut validators = vec![entra];
        for p in &config.providers {
            validators.push(provider(config, p, client.clone(), &audiences, &metrics).await?);
        }
        IdentityLayer::new(IssuerRouter::new(validators).map_err(StartError::Identity)?)
    };
    let tenant = config.tenants.first().map_or("common", String::as_str);
    layer = layer.challenge(&config.challenge_authority, tenant, config.resource());
    // Forward-proxy clients calling Azure's own hosts are challenged for
    // Azure's audience of that host, when agents' tokens for it are accepted.
    for (host, resource) in azure_audiences {
        if config
            .audiences
            .iter()
            .any(|a| a.trim_end_matches('/') == resource.trim_end_matches('/'))
        {
            layer = layer.challenge_resource_for(host, resource);
        }
    }
    Ok(layer)
}
