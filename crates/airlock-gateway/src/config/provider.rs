//! `[[identity.provider]]`: identity providers besides `[identity]`'s Entra
//! tenants, whose tokens agents already hold (Kubernetes service accounts,
//! GitHub Actions, any OIDC issuer).

use std::collections::HashSet;
use std::path::PathBuf;

use serde::Deserialize;

use super::{ConfigError, KeysFrom, invalid};

/// One more identity provider. The token's `iss` selects it, only its keys
/// verify the token, and its subjects become principals `{name}:{subject}`
/// (so they can never pass for an Entra object id or another provider's).
///
/// ```toml
/// [[identity.provider]]
/// name = "aks-prod"                                 # the principal ids' namespace
/// issuer = "https://oidc.prod-aks.azure.com/<tenant>/<guid>/"
/// audiences = ["api://airlock"]                     # default: [identity].audiences
/// # discovery (default: the issuer) | jwks_url | jwks_file
/// [identity.provider.claims]
/// id = "sub"                                        # default
/// name = "sub"
/// groups = "groups"
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Its name: lower-case letters, digits and `-`; the namespace of its principals' ids.
    pub name: String,
    /// The `iss` its tokens carry, exactly.
    pub issuer: String,
    /// Accepted `aud` values (default: `[identity].audiences`).
    #[serde(default)]
    pub audiences: Vec<String>,
    /// OIDC discovery of this URL finds the keys (default: the issuer).
    pub discovery: Option<String>,
    /// A JWKS URL instead.
    pub jwks_url: Option<String>,
    /// A JWKS file instead (never refreshed).
    pub jwks_file: Option<PathBuf>,
    /// Which claims say who it is.
    #[serde(default)]
    pub claims: ClaimsConfig,
}

/// `[identity.provider.claims]`: the claim mapping.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimsConfig {
    /// The subject (default `sub`).
    #[serde(default = "default_id")]
    pub id: String,
    /// A display name.
    pub name: Option<String>,
    /// Groups (an array of strings, or one string).
    pub groups: Option<String>,
}

impl Default for ClaimsConfig {
    fn default() -> Self {
        Self {
            id: default_id(),
            name: None,
            groups: None,
        }
    }
}

fn default_id() -> String {
    "sub".into()
}

impl ProviderConfig {
    /// Its key source: discovery of the issuer unless told otherwise.
    pub fn keys_from(&self) -> Result<KeysFrom, ConfigError> {
        match (&self.discovery, &self.jwks_url, &self.jwks_file) {
            (Some(url), None, None) => Ok(KeysFrom::Discovery(url.clone())),
            (None, Some(url), None) => Ok(KeysFrom::JwksUrl(url.clone())),
            (None, None, Some(path)) => Ok(KeysFrom::JwksFile(path.clone())),
            (None, None, None) => Ok(KeysFrom::Discovery(self.issuer.clone())),
            _ => Err(invalid(
                "identity.provider.discovery",
                format!(
                    "provider '{}' has more than one of discovery, jwks_url and jwks_file",
                    self.name
                ),
                "keep exactly one key source",
            )),
        }
    }
}

/// Checks the providers together: names and issuers unique (and no issuer
/// `[identity]`'s own, `entra_issuers`), https everywhere (http only with
/// `allow_http`), claims named.
pub(super) fn validate(
    providers: &[ProviderConfig],
    entra_issuers: &[String],
    allow_http: bool,
) -> Result<(), ConfigError> {
    let mut names = HashSet::new();
    let mut issuers: HashSet<&str> = entra_issuers.iter().map(String::as_str).collect();
    for p in providers {
        if p.name.is_empty()
            || !p
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid(
                "identity.provider.name",
                format!("'{}' is not a provider name", p.name),
                "use lower-case letters, digits and '-', e.g. \"aks-prod\": it prefixes the provider's principal ids",
            ));
        }
        if !names.insert(p.name.as_str()) {
            return Err(invalid(
                "identity.provider.name",
                format!("two providers are named '{}'", p.name),
                "give each provider its own name: it keeps their principals apart",
            ));
        }
        let https =
            |url: &str| url.starts_with("https://") || (allow_http && url.starts_with("http://"));
        if !https(&p.issuer) {
            return Err(invalid(
                "identity.provider.issuer",
                format!(
                    "provider '{}': '{}' is not an https:// issuer",
                    p.name, p.issuer
                ),
                "give the exact iss of its tokens (plain http:// only with upstream.allow_insecure_http = true, for local test doubles)",
            ));
        }
        if !issuers.insert(p.issuer.as_str()) {
            return Err(invalid(
                "identity.provider.issuer",
                format!("issuer '{}' is configured twice", p.issuer),
                "each issuer belongs to one provider (Entra tenants to [identity]): which keys verify its tokens must be unambiguous",
            ));
        }
        if let KeysFrom::Discovery(url) | KeysFrom::JwksUrl(url) = p.keys_from()?
            && !https(&url)
        {
            return Err(invalid(
                "identity.provider.discovery",
                format!("provider '{}': '{url}' is not an https:// URL", p.name),
                "use https://",
            ));
        }
        if p.claims.id.is_empty() {
            return Err(invalid(
                "identity.provider.claims.id",
                format!("provider '{}' names no id claim", p.name),
                "name the claim that says who the token is for, e.g. \"sub\"",
            ));
        }
    }
    Ok(())
}
