//! `[identity]`: whose tokens the gateway accepts, and how it verifies them.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, ProviderConfig, invalid};

/// `[identity]`: Entra ID (OIDC) token validation. Required: a gateway
/// without it would forward anonymous requests.
///
/// ```toml
/// [identity]
/// tenants = ["72f988bf-86f1-41af-91ab-2d7cd011db47"]
/// audiences = ["api://airlock"]
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// Entra tenant ids (`tid`) whose tokens are accepted.
    pub tenants: Vec<String>,
    /// Accepted `aud` values. The first is the gateway's own app ID URI: 401
    /// challenges name it as the `resource` to ask a token for.
    pub audiences: Vec<String>,
    /// OIDC issuer whose discovery document names the keys. Default:
    /// `https://login.microsoftonline.com/{first tenant}/v2.0`.
    pub discovery: Option<String>,
    /// A JWKS URL to fetch keys from instead of discovery.
    pub jwks_url: Option<String>,
    /// A JWKS file to read keys from instead (never refreshed).
    pub jwks_file: Option<PathBuf>,
    /// Accepted issuers, `{tenant}` standing for each tenant. Default: the
    /// Entra v1 and v2 issuers, plus the one discovery names.
    #[serde(default)]
    pub issuers: Vec<String>,
    /// Accepted signature algorithms.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Clock skew allowed on `exp`, `nbf`, `iat`.
    #[serde(default = "default_leeway", with = "humantime_serde")]
    pub leeway: Duration,
    /// How often signing keys are refetched.
    #[serde(default = "default_key_refresh", with = "humantime_serde")]
    pub key_refresh_interval: Duration,
    /// The least time between refetches caused by unknown `kid`s.
    #[serde(default = "default_unknown_kid", with = "humantime_serde")]
    pub unknown_kid_refetch_interval: Duration,
    /// How many verified tokens are remembered (0: verify every request).
    #[serde(default = "default_token_cache")]
    pub token_cache_size: usize,
    /// The authority named in 401 challenges (`authorization="{authority}/{tenant}"`).
    #[serde(default = "default_challenge_authority")]
    pub challenge_authority: String,
    /// Group overage resolution.
    #[serde(default)]
    pub groups: GroupsConfig,
    /// More identity providers (`[[identity.provider]]`).
    #[serde(default, rename = "provider")]
    pub providers: Vec<ProviderConfig>,
}

/// `[identity.groups]`: what to do when a token has too many groups to carry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupsConfig {
    /// `none` (refuse overage tokens with 403) or `graph` (ask Microsoft Graph
    /// with the gateway's credential).
    #[serde(default)]
    pub resolver: GroupResolverKind,
    /// Microsoft Graph's base URL.
    #[serde(default = "default_graph_url")]
    pub graph_url: String,
    /// How long a principal's groups are reused.
    #[serde(default = "default_groups_ttl", with = "humantime_serde")]
    pub cache_ttl: Duration,
}

impl Default for GroupsConfig {
    fn default() -> Self {
        Self {
            resolver: GroupResolverKind::None,
            graph_url: default_graph_url(),
            cache_ttl: default_groups_ttl(),
        }
    }
}

/// `identity.groups.resolver`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupResolverKind {
    /// Overage tokens are refused.
    #[default]
    None,
    /// Microsoft Graph `getMemberGroups`.
    Graph,
}

fn default_algorithms() -> Vec<String> {
    vec!["RS256".into()]
}
fn default_leeway() -> Duration {
    Duration::from_secs(60)
}
fn default_key_refresh() -> Duration {
    Duration::from_secs(3600)
}
fn default_unknown_kid() -> Duration {
    Duration::from_secs(60)
}
fn default_token_cache() -> usize {
    10_000
}
fn default_challenge_authority() -> String {
    "https://login.windows.net".into()
}
fn default_graph_url() -> String {
    "https://graph.microsoft.com".into()
}
fn default_groups_ttl() -> Duration {
    Duration::from_secs(600)
}

/// Where the signing keys come from, once validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeysFrom {
    /// OIDC discovery of this issuer URL.
    Discovery(String),
    /// This JWKS URL.
    JwksUrl(String),
    /// This JWKS file.
    JwksFile(PathBuf),
}

impl IdentityConfig {
    /// Checks what parsing cannot; `allow_http` is `upstream.allow_insecure_http`.
    pub(super) fn validate(&self, allow_http: bool) -> Result<(), ConfigError> {
        if self.tenants.is_empty() {
            return Err(invalid(
                "identity.tenants",
                "no tenant is allowed, so no token could be accepted",
                "list the Entra tenant ids (tid) whose identities may use the gateway",
            ));
        }
        if let Some(bad) = self.tenants.iter().find(|t| {
            t.is_empty()
                || !t
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        }) {
            return Err(invalid(
                "identity.tenants",
                format!("'{bad}' is not a tenant id"),
                "use the tenant's GUID (Entra ID > Overview > Tenant ID)",
            ));
        }
        if self.audiences.iter().all(String::is_empty) {
            return Err(invalid(
                "identity.audiences",
                "no audience is accepted",
                "list the gateway's own app ID URI, e.g. [\"api://airlock\"]",
            ));
        }
        for alg in &self.algorithms {
            if ![
                "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
            ]
            .contains(&alg.as_str())
            {
                return Err(invalid(
                    "identity.algorithms",
                    format!("'{alg}' is not accepted"),
                    "use asymmetric algorithms only: RS256 (Entra ID), PS256, ES256 …; never none or HS256",
                ));
            }
        }
        let keys = self.keys_from()?;
        if let KeysFrom::Discovery(url) | KeysFrom::JwksUrl(url) = &keys {
            let key = if matches!(keys, KeysFrom::Discovery(_)) {
                "identity.discovery"
            } else {
                "identity.jwks_url"
            };
            if !(url.starts_with("https://") || (allow_http && url.starts_with("http://"))) {
                return Err(invalid(
                    key,
                    format!("'{url}' is not an https:// URL"),
                    "use https:// (plain http:// only with upstream.allow_insecure_http = true, for local test doubles)",
                ));
            }
        }
        if let KeysFrom::JwksFile(path) = &keys
            && !path.is_file()
        {
            return Err(invalid(
                "identity.jwks_file",
                format!("{} does not exist or is not a file", path.display()),
                "point it at a JWKS (JSON) document",
            ));
        }
        for (key, value) in [
            ("identity.key_refresh_interval", self.key_refresh_interval),
            (
                "identity.unknown_kid_refetch_interval",
                self.unknown_kid_refetch_interval,
            ),
            ("identity.groups.cache_ttl", self.groups.cache_ttl),
        ] {
            if value.is_zero() {
                return Err(invalid(
                    key,
                    "must be longer than zero",
                    "give a duration such as \"60s\"",
                ));
            }
        }
        if self.leeway > Duration::from_secs(300) {
            return Err(invalid(
                "identity.leeway",
                "more than 5 minutes would accept long-expired tokens",
                "keep it small, e.g. \"60s\"",
            ));
        }
        super::provider::validate(&self.providers, &self.entra_issuers(), allow_http)
    }

    /// The one key source configured (discovery of the first tenant by default).
    pub fn keys_from(&self) -> Result<KeysFrom, ConfigError> {
        match (&self.discovery, &self.jwks_url, &self.jwks_file) {
            (Some(url), None, None) => Ok(KeysFrom::Discovery(url.clone())),
            (None, Some(url), None) => Ok(KeysFrom::JwksUrl(url.clone())),
            (None, None, Some(path)) => Ok(KeysFrom::JwksFile(path.clone())),
            (None, None, None) => Ok(KeysFrom::Discovery(format!(
                "https://login.microsoftonline.com/{}/v2.0",
                self.tenants.first().map_or("", String::as_str)
            ))),
            _ => Err(invalid(
                "identity.discovery",
                "more than one of discovery, jwks_url and jwks_file is set",
                "keep exactly one key source",
            )),
        }
    }

    /// The issuers `[identity]` itself accepts, as far as configuration
    /// says (discovery may add its own).
    pub fn entra_issuers(&self) -> Vec<String> {
        let templates: Vec<&str> = if self.issuers.is_empty() {
            airlock_identity::ENTRA_ISSUERS.to_vec()
        } else {
            self.issuers.iter().map(String::as_str).collect()
        };
        templates
            .into_iter()
            .flat_map(|t| {
                if t.contains("{tenant}") {
                    self.tenants
                        .iter()
                        .map(|tenant| t.replace("{tenant}", tenant))
                        .collect()
                } else {
                    vec![t.to_owned()]
                }
            })
            .collect()
    }

    /// The gateway's own app ID URI: the first audience.
    pub fn resource(&self) -> &str {
        self.audiences.first().map_or("", String::as_str)
    }
}
