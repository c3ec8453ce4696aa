//! `[upstream]`: the Azure endpoints Airlock forwards to, and nothing else.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::routing::{Endpoint, HostTemplate, valid_account_name, valid_vault_name};

/// The environment variable that overrides `upstream.credential.token`.
pub const UPSTREAM_TOKEN_ENV: &str = "AIRLOCK_UPSTREAM_TOKEN";
/// The environment variable that gives `kind = "client_secret"` its secret.
pub const UPSTREAM_CLIENT_SECRET_ENV: &str = "AIRLOCK_UPSTREAM_CLIENT_SECRET";
use airlock_credentials::DEFAULT_AUTHORITY_HOST;

/// The environment variables `kind = "default"` reads.
const DEFAULT_CHAIN_VARIABLES: [&str; 8] = [
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
];

/// An Azure cloud: the defaults of every endpoint and audience.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cloud {
    /// Azure (public): `management.azure.com`, `login.microsoftonline.com`.
    #[default]
    Public,
    /// Azure US Government: `management.usgovcloudapi.net`, `login.microsoftonline.us`.
    UsGovernment,
    /// Azure operated by 21Vianet (China): `management.chinacloudapi.cn`, `login.chinacloudapi.cn`.
    China,
}

/// The endpoints and audiences of one cloud.
pub(crate) struct CloudEndpoints {
    pub(crate) arm: &'static str,
    pub(crate) key_vault: &'static str,
    key_vault_audience: &'static str,
    pub(crate) blob: &'static str,
    pub(crate) authority: &'static str,
}

impl Cloud {
    /// Entra's authority host in this cloud (`https://login.microsoftonline.com`).
    pub fn authority_host(self) -> &'static str {
        self.endpoints().authority
    }

    pub(crate) fn endpoints(self) -> CloudEndpoints {
        match self {
            Cloud::Public => CloudEndpoints {
                arm: "https://management.azure.com",
                key_vault: "https://{vault}.vault.azure.net",
                key_vault_audience: "https://vault.azure.net",
                blob: "https://{account}.blob.core.windows.net",
                authority: DEFAULT_AUTHORITY_HOST,
            },
            Cloud::UsGovernment => CloudEndpoints {
                arm: "https://management.usgovcloudapi.net",
                key_vault: "https://{vault}.vault.usgovcloudapi.net",
                key_vault_audience: "https://vault.usgovcloudapi.net",
                blob: "https://{account}.blob.core.usgovcloudapi.net",
                authority: "https://login.microsoftonline.us",
            },
            Cloud::China => CloudEndpoints {
                arm: "https://management.chinacloudapi.cn",
                key_vault: "https://{vault}.vault.azure.cn",
                key_vault_audience: "https://vault.azure.cn",
                blob: "https://{account}.blob.core.chinacloudapi.cn",
                authority: "https://login.chinacloudapi.cn",
            },
        }
    }
}

/// `[upstream]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// The Azure cloud whose endpoints every unset key defaults to:
    /// `public` (default), `us_government`, `china`.
    #[serde(default)]
    pub cloud: Cloud,
    /// ARM base URL: public cloud by default; sovereign clouds, private
    /// endpoints and test doubles by configuration.
    #[serde(default = "default_arm_url")]
    pub arm_url: String,
    /// Audience of the gateway's token for ARM.
    #[serde(default = "default_arm_audience")]
    pub arm_audience: String,
    /// Key Vault data plane.
    #[serde(default)]
    pub key_vault: KeyVaultConfig,
    /// Storage data plane (the Blob service).
    #[serde(default)]
    pub storage: StorageConfig,
    /// Extra CA certificates (PEM) to trust for upstream TLS, besides the system roots.
    pub ca_file: Option<PathBuf>,
    /// Allow `http://` upstreams. For tests and local doubles only; logged loudly.
    #[serde(default)]
    pub allow_insecure_http: bool,
    /// Time to establish an upstream connection.
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Time for Azure to answer with response headers.
    #[serde(default = "default_read_timeout", with = "humantime_serde")]
    pub read_timeout: Duration,
    /// The gateway's own Azure credential: the `default` identity.
    pub credential: CredentialConfig,
    /// More Azure identities (`[[upstream.identities]]`), each serving the
    /// agents its `serves` selects, or only approvals that elevate to it.
    #[serde(default)]
    pub identities: Vec<IdentityConfig>,
}

/// `[[upstream.identities]]`: another Azure identity the gateway acts as.
///
/// ```toml
/// [[upstream.identities]]
/// name = "reader"                       # audit events and elevate_to name it
/// serves = { groups = ["read-only-agents"] }
/// credential = { kind = "client_secret", tenant_id = "…", client_id = "…", client_secret_file = "/run/secrets/reader" }
///
/// [[upstream.identities]]
/// name = "contributor"                  # no `serves`: only for approved, elevated requests
/// credential = { kind = "managed_identity", client_id = "…" }
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// Its name: letters, digits, `-` and `_`; not `default`.
    pub name: String,
    /// The principals it serves (first match in file order wins; the
    /// `default` identity serves everyone else). Absent: it serves only
    /// requests an approve rule elevates to it (`elevate_to`).
    #[serde(default)]
    pub serves: Option<airlock_core::PrincipalSelector>,
    /// How it authenticates; every kind of `[upstream.credential]`. A
    /// secret is best given as `client_secret_file` or the variable
    /// `AIRLOCK_UPSTREAM_<NAME>_CLIENT_SECRET` (`<NAME>` upper-cased, `-` as `_`).
    /// Required, except with `forward_caller_token`.
    #[serde(default)]
    pub credential: Option<CredentialConfig>,
    /// Act as the caller: the principals it serves (people, and agents
    /// acting for people) reach Azure with their own token, which this
    /// identity's app registration (`credential.kind = "client_secret"`,
    /// the gateway's app that callers get tokens for) exchanges through
    /// Entra's on-behalf-of grant; Azure's RBAC applies their own roles and
    /// the Activity Log names them. Never an `elevate_to` target.
    #[serde(default)]
    pub on_behalf_of: bool,
    /// Act as the caller by forwarding their own token unchanged, after
    /// every check: forward-proxy clients (`az`, the Azure SDKs) already get
    /// tokens for Azure's audience. A token issued for another audience
    /// than the destination's is refused, never forwarded. No credential.
    #[serde(default)]
    pub forward_caller_token: bool,
}

impl IdentityConfig {
    /// `AIRLOCK_UPSTREAM_<NAME>_<what>`, for this identity's secrets.
    pub fn env_name(&self, what: &str) -> String {
        format!(
            "AIRLOCK_UPSTREAM_{}_{what}",
            self.name.to_ascii_uppercase().replace('-', "_")
        )
    }
}

/// `[upstream.key_vault]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyVaultConfig {
    /// Vault URL template; `{vault}` is the vault name.
    #[serde(default = "default_key_vault_endpoint")]
    pub endpoint: String,
    /// Audience of the gateway's token for Key Vault.
    #[serde(default = "default_key_vault_audience")]
    pub audience: String,
    /// The vaults clients may reach. Empty: no Key Vault access.
    #[serde(default)]
    pub vaults: Vec<String>,
}

impl Default for KeyVaultConfig {
    fn default() -> Self {
        Self {
            endpoint: default_key_vault_endpoint(),
            audience: default_key_vault_audience(),
            vaults: Vec::new(),
        }
    }
}

/// `[upstream.storage]`: the storage accounts whose Blob service clients
/// may reach through the gateway.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Blob service URL template; `{account}` is the account name.
    #[serde(default = "default_blob_endpoint")]
    pub blob_endpoint: String,
    /// Audience of the gateway's token for Storage.
    #[serde(default = "default_storage_audience")]
    pub audience: String,
    /// The accounts clients may reach. Empty: no Storage data plane access.
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Accounts the gateway signs for with their account key (Shared Key)
    /// instead of an Entra token: agents still present only their own token.
    #[serde(default)]
    pub shared_keys: std::collections::BTreeMap<String, SharedKeyConfig>,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            blob_endpoint: default_blob_endpoint(),
            audience: default_storage_audience(),
            accounts: Vec::new(),
            shared_keys: std::collections::BTreeMap::new(),
        }
    }
}

/// `[upstream.storage.shared_keys.<account>]`: where an account key comes
/// from; exactly one of `key_file` (preferred), `key_env`, `key`.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedKeyConfig {
    /// A file holding the base64 key (surrounding whitespace ignored).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// An environment variable holding it.
    #[serde(default)]
    pub key_env: Option<String>,
    /// The key itself (development only: configuration files get copied).
    #[serde(default)]
    pub key: Option<String>,
    /// The value `key_env` named, read at start.
    #[serde(skip)]
    pub from_env: Option<String>,
}

impl std::fmt::Debug for SharedKeyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedKeyConfig")
            .field("key_file", &self.key_file)
            .field("key_env", &self.key_env)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl SharedKeyConfig {
    /// The key's base64 text, read from wherever it is configured.
    ///
    /// # Errors
    ///
    /// The file cannot be read, or the variable is unset.
    pub fn read(&self) -> Result<String, String> {
        if let Some(file) = &self.key_file {
            return std::fs::read_to_string(file)
                .map(|key| key.trim().to_owned())
                .map_err(|e| format!("cannot read {}: {e}", file.display()));
        }
        if let Some(name) = &self.key_env {
            return self
                .from_env
                .clone()
                .ok_or_else(|| format!("the environment variable {name} is not set"));
        }
        Ok(self.key.clone().unwrap_or_default())
    }
}

/// `[upstream.credential]`: how the gateway authenticates to Azure.
#[derive(Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CredentialConfig {
    /// A fixed bearer token (development, simulated Azure).
    Static {
        /// The token; prefer the `AIRLOCK_UPSTREAM_TOKEN` environment variable.
        #[serde(default)]
        token: Option<String>,
    },
    /// An app registration signing in with a client secret (client
    /// credentials), tokens cached and refreshed ahead of expiry.
    ClientSecret {
        /// The directory (tenant) id of the app registration.
        tenant_id: String,
        /// Its application (client) id.
        client_id: String,
        /// The secret; prefer `AIRLOCK_UPSTREAM_CLIENT_SECRET` or `client_secret_file`.
        #[serde(default)]
        client_secret: Option<String>,
        /// A file holding the secret (surrounding whitespace ignored).
        #[serde(default)]
        client_secret_file: Option<PathBuf>,
        /// Entra's authority host: `https://login.microsoftonline.com`
        /// (public cloud), `https://login.microsoftonline.us` (US
        /// Government), `https://login.chinacloudapi.cn` (China).
        #[serde(default = "default_authority_host")]
        authority_host: String,
    },
    /// An app registration signing in with a certificate (a signed
    /// `client_assertion`), tokens cached and refreshed ahead of expiry.
    ClientCertificate {
        /// The directory (tenant) id.
        tenant_id: String,
        /// The application (client) id.
        client_id: String,
        /// A PEM file with the certificate, and its RSA private key unless
        /// `key_file` names another.
        certificate_file: PathBuf,
        /// The private key's PEM file, when apart from the certificate.
        #[serde(default)]
        key_file: Option<PathBuf>,
        /// `PS256` (default) or `RS256`.
        #[serde(default = "default_assertion_algorithm")]
        algorithm: String,
        /// Entra's authority host.
        #[serde(default = "default_authority_host")]
        authority_host: String,
    },
    /// Whoever ran `az login` on this machine (development only).
    AzureCli {
        /// The Azure CLI program (default `az` on `PATH`).
        #[serde(default)]
        az_path: Option<PathBuf>,
        /// Tokens of this tenant (`--tenant`).
        #[serde(default)]
        tenant_id: Option<String>,
    },
    /// The first credential the environment supports, tried at start in
    /// order: a client secret (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`,
    /// `AZURE_CLIENT_SECRET`) or certificate (`AZURE_CLIENT_CERTIFICATE_PATH`), workload identity
    /// (`AZURE_FEDERATED_TOKEN_FILE`), the managed identity, the Azure CLI.
    Default {
        /// IMDS somewhere else than `http://169.254.169.254/…` (tests).
        #[serde(default)]
        imds_endpoint: Option<String>,
        /// The Azure CLI program (default `az` on `PATH`).
        #[serde(default)]
        az_path: Option<PathBuf>,
        /// The variables the chain reads, from the environment.
        #[serde(skip)]
        environment: Vec<(String, String)>,
    },
    /// Workload identity federation (AKS, GitHub Actions): the platform's
    /// token file traded for Azure tokens. Each key defaults to the
    /// variable the platform sets: `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`,
    /// `AZURE_FEDERATED_TOKEN_FILE`, `AZURE_AUTHORITY_HOST`.
    WorkloadIdentity {
        /// The directory (tenant) id.
        #[serde(default)]
        tenant_id: Option<String>,
        /// The application (client) id the federated credential is on.
        #[serde(default)]
        client_id: Option<String>,
        /// The federated token file, read again on every refresh.
        #[serde(default)]
        token_file: Option<PathBuf>,
        /// Entra's authority host.
        #[serde(default)]
        authority_host: Option<String>,
    },
    /// The managed identity of the VM or app the gateway runs on: the
    /// App Service endpoint when the platform sets `IDENTITY_ENDPOINT` and
    /// `IDENTITY_HEADER`, else IMDS. System-assigned unless one of
    /// `client_id`, `object_id`, `resource_id` names a user-assigned one.
    ManagedIdentity {
        /// A user-assigned identity's client id.
        #[serde(default)]
        client_id: Option<String>,
        /// A user-assigned identity's object (principal) id.
        #[serde(default)]
        object_id: Option<String>,
        /// A user-assigned identity's ARM resource id.
        #[serde(default)]
        resource_id: Option<String>,
        /// IMDS somewhere else than `http://169.254.169.254/…` (tests).
        #[serde(default)]
        imds_endpoint: Option<String>,
        /// `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`, from the environment.
        #[serde(skip)]
        app_service: Option<(String, String)>,
    },
}

impl CredentialConfig {
    /// Fills what the environment gives: the token or secret from the
    /// variables named, and the platform's variables for the kinds that read them.
    fn apply_env(
        &mut self,
        env: &impl Fn(&str) -> Option<String>,
        token_env: &str,
        secret_env: &str,
    ) {
        match self {
            CredentialConfig::Static { token } => {
                if let Some(from_env) = env(token_env).filter(|t| !t.is_empty()) {
                    *token = Some(from_env);
                }
            }
            CredentialConfig::ClientSecret { client_secret, .. } => {
                if let Some(from_env) = env(secret_env).filter(|t| !t.is_empty()) {
                    *client_secret = Some(from_env);
                }
            }
            CredentialConfig::AzureCli { .. } | CredentialConfig::ClientCertificate { .. } => {}
            CredentialConfig::Default { environment, .. } => {
                *environment = DEFAULT_CHAIN_VARIABLES
                    .iter()
                    .filter_map(|name| {
                        env(name)
                            .filter(|v| !v.is_empty())
                            .map(|value| ((*name).to_owned(), value))
                    })
                    .collect();
            }
            CredentialConfig::WorkloadIdentity {
                tenant_id,
                client_id,
                token_file,
                authority_host,
            } => {
                let from = |name: &str| env(name).filter(|v| !v.is_empty());
                tenant_id.get_or_insert_with(|| from("AZURE_TENANT_ID").unwrap_or_default());
                client_id.get_or_insert_with(|| from("AZURE_CLIENT_ID").unwrap_or_default());
                if token_file.is_none() {
                    *token_file = from("AZURE_FEDERATED_TOKEN_FILE").map(PathBuf::from);
                }
                authority_host.get_or_insert_with(|| {
                    from("AZURE_AUTHORITY_HOST").unwrap_or_else(|| DEFAULT_AUTHORITY_HOST.into())
                });
            }
            CredentialConfig::ManagedIdentity { app_service, .. } => {
                if let (Some(endpoint), Some(header)) = (
                    env("IDENTITY_ENDPOINT").filter(|v| !v.is_empty()),
                    env("IDENTITY_HEADER").filter(|v| !v.is_empty()),
                ) {
                    *app_service = Some((endpoint, header));
                }
            }
        }
    }
}

impl std::fmt::Debug for CredentialConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CredentialConfig::Static { token } => f
                .debug_struct("Static")
                .field("token", &token.as_ref().map(|_| "<redacted>"))
                .finish(),
            CredentialConfig::ClientSecret {
                tenant_id,
                client_id,
                client_secret,
                client_secret_file,
                authority_host,
            } => f
                .debug_struct("ClientSecret")
                .field("tenant_id", tenant_id)
                .field("client_id", client_id)
                .field(
                    "client_secret",
                    &client_secret.as_ref().map(|_| "<redacted>"),
                )
                .field("client_secret_file", client_secret_file)
                .field("authority_host", authority_host)
                .finish(),
            CredentialConfig::ClientCertificate {
                tenant_id,
                client_id,
                certificate_file,
                key_file,
                algorithm,
                authority_host,
            } => f
                .debug_struct("ClientCertificate")
                .field("tenant_id", tenant_id)
                .field("client_id", client_id)
                .field("certificate_file", certificate_file)
                .field("key_file", key_file)
                .field("algorithm", algorithm)
                .field("authority_host", authority_host)
                .finish(),
            CredentialConfig::AzureCli { az_path, tenant_id } => f
                .debug_struct("AzureCli")
                .field("az_path", az_path)
                .field("tenant_id", tenant_id)
                .finish(),
            CredentialConfig::Default {
                imds_endpoint,
                az_path,
                environment,
            } => f
                .debug_struct("Default")
                .field("imds_endpoint", imds_endpoint)
                .field("az_path", az_path)
                .field(
                    "environment",
                    &environment.iter().map(|(name, _)| name).collect::<Vec<_>>(),
                )
                .finish(),
            CredentialConfig::WorkloadIdentity {
                tenant_id,
                client_id,
                token_file,
                authority_host,
            } => f
                .debug_struct("WorkloadIdentity")
                .field("tenant_id", tenant_id)
                .field("client_id", client_id)
                .field("token_file", token_file)
                .field("authority_host", authority_host)
                .finish(),
            CredentialConfig::ManagedIdentity {
                client_id,
                object_id,
                resource_id,
                imds_endpoint,
                app_service,
            } => f
                .debug_struct("ManagedIdentity")
                .field("client_id", client_id)
                .field("object_id", object_id)
                .field("resource_id", resource_id)
                .field("imds_endpoint", imds_endpoint)
                .field(
                    "app_service",
                    &app_service.as_ref().map(|(endpoint, _)| endpoint),
                )
                .finish(),
        }
    }
}

/// A value of `[upstream]` that cannot be used: the key, the problem, the fix.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {problem}; fix: {fix}")]
pub struct InvalidConfig {
    /// Dotted key, e.g. `upstream.arm_url`.
    pub key: &'static str,
    /// What is wrong with it.
    pub problem: String,
    /// What to do.
    pub fix: String,
}

fn invalid(key: &'static str, problem: impl Into<String>, fix: impl Into<String>) -> InvalidConfig {
    InvalidConfig {
        key,
        problem: problem.into(),
        fix: fix.into(),
    }
}

impl UpstreamConfig {
    /// Applies `AIRLOCK_UPSTREAM_TOKEN` (a static token),
    /// `AIRLOCK_UPSTREAM_CLIENT_SECRET` (the secret of `kind =
    /// "client_secret"`) and the platform's `IDENTITY_ENDPOINT` and
    /// `IDENTITY_HEADER` (`kind = "managed_identity"`) from `env`, when set;
    /// for each of `[[upstream.identities]]`, the same with its name:
    /// `AIRLOCK_UPSTREAM_<NAME>_TOKEN`, `AIRLOCK_UPSTREAM_<NAME>_CLIENT_SECRET`.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) {
        self.credential
            .apply_env(&env, UPSTREAM_TOKEN_ENV, UPSTREAM_CLIENT_SECRET_ENV);
        for identity in &mut self.identities {
            let (token, secret) = (
                identity.env_name("TOKEN"),
                identity.env_name("CLIENT_SECRET"),
            );
            if let Some(credential) = &mut identity.credential {
                credential.apply_env(&env, &token, &secret);
            }
        }
        for key in self.storage.shared_keys.values_mut() {
            if let Some(name) = &key.key_env {
                key.from_env = env(name).filter(|v| !v.is_empty());
            }
        }
        self.apply_cloud();
    }

    /// Points every endpoint, audience and authority host left at its
    /// public-cloud default at `cloud`'s instead (a value set explicitly is
    /// kept; Storage's audience is `https://storage.azure.com` in every
    /// cloud). [`apply_env`](Self::apply_env) does this last.
    ///
    /// ```
    /// let mut config: airlock_upstream::UpstreamConfig = toml::from_str(r#"
    ///     cloud = "us_government"
    ///     credential = { kind = "client_secret", tenant_id = "t", client_id = "c" }
    /// "#).unwrap();
    /// config.apply_env(|_| None);
    /// assert_eq!(config.arm_url, "https://management.usgovcloudapi.net");
    /// assert_eq!(config.key_vault.endpoint, "https://{vault}.vault.usgovcloudapi.net");
    /// ```
    pub fn apply_cloud(&mut self) {
        let (public, cloud) = (Cloud::Public.endpoints(), self.cloud.endpoints());
        let retarget = |value: &mut String, from: &str, to: &str| {
            if value == from {
                *value = to.to_owned();
            }
        };
        retarget(&mut self.arm_url, public.arm, cloud.arm);
        retarget(&mut self.arm_audience, public.arm, cloud.arm);
        retarget(
            &mut self.key_vault.endpoint,
            public.key_vault,
            cloud.key_vault,
        );
        retarget(
            &mut self.key_vault.audience,
            public.key_vault_audience,
            cloud.key_vault_audience,
        );
        retarget(&mut self.storage.blob_endpoint, public.blob, cloud.blob);
        let credentials = std::iter::once(&mut self.credential).chain(
            self.identities
                .iter_mut()
                .filter_map(|i| i.credential.as_mut()),
        );
        for credential in credentials {
            match credential {
                CredentialConfig::ClientSecret { authority_host, .. }
                | CredentialConfig::ClientCertificate { authority_host, .. } => {
                    retarget(authority_host, public.authority, cloud.authority);
                }
                CredentialConfig::WorkloadIdentity {
                    authority_host: Some(authority_host),
                    ..
                } => retarget(authority_host, public.authority, cloud.authority),
                _ => {}
            }
        }
    }

    /// Azure's own host names (ARM's host, the vault and blob suffixes of
    /// `cloud`) with the audience of the gateway's tokens for each: what a
    /// client addressing Azure directly (forward-proxy mode) is challenged for.
    ///
    /// ```
    /// let config: airlock_upstream::UpstreamConfig =
    ///     toml::from_str("credential = { kind = \"static\", token = \"t\" }").unwrap();
    /// assert_eq!(config.azure_audiences()[1], ("vault.azure.net".to_owned(), "https://vault.azure.net".to_owned()));
    /// ```
    pub fn azure_audiences(&self) -> Vec<(String, String)> {
        let cloud = self.cloud.endpoints();
        let host = |template: &str, placeholder: &str| {
            template
                .trim_start_matches("https://")
                .trim_start_matches(placeholder)
                .trim_start_matches('.')
                .to_owned()
        };
        vec![
            (host(cloud.arm, ""), self.arm_audience.clone()),
            (
                host(cloud.key_vault, "{vault}"),
                self.key_vault.audience.clone(),
            ),
            (host(cloud.blob, "{account}"), self.storage.audience.clone()),
        ]
    }

    /// Checks every value that parsing alone cannot.
    ///
    /// # Errors
    ///
    /// The first unusable value.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        self.arm_endpoint()?;
        self.key_vault_endpoint()?;
        for vault in &self.key_vault.vaults {
            if !valid_vault_name(vault) {
                return Err(invalid(
                    "upstream.key_vault.vaults",
                    format!("'{vault}' is not a Key Vault name"),
                    "use the vault's name (3-24 letters, digits and hyphens, starting with a letter), not its URL",
                ));
            }
        }
        self.validate_storage()?;
        self.validate_credential(
            &self.credential,
            UPSTREAM_TOKEN_ENV,
            UPSTREAM_CLIENT_SECRET_ENV,
        )?;
        self.validate_identities()?;
        for (key, value) in [
            ("upstream.connect_timeout", self.connect_timeout),
            ("upstream.read_timeout", self.read_timeout),
        ] {
            if value.is_zero() {
                return Err(invalid(
                    key,
                    "must be longer than zero",
                    "give a duration such as \"30s\"",
                ));
            }
        }
        if let Some(ca) = &self.ca_file
            && !ca.is_file()
        {
            return Err(invalid(
                "upstream.ca_file",
                format!("{} does not exist or is not a file", ca.display()),
                "point it at a PEM file of CA certificates, or remove the key",
            ));
        }
        Ok(())
    }

    /// The ARM upstream, validated.
    ///
    /// # Errors
    ///
    /// Not an http(s) base URL, or plain http without `allow_insecure_http`.
    pub fn arm_endpoint(&self) -> Result<Endpoint, InvalidConfig> {
        let endpoint = Endpoint::parse(&self.arm_url).map_err(|problem| {
            invalid(
                "upstream.arm_url",
                problem.to_string(),
                "write the base URL only, e.g. https://management.azure.com",
            )
        })?;
        self.check_scheme("upstream.arm_url", endpoint.scheme())?;
        Ok(endpoint)
    }

    /// The Key Vault upstream template, validated.
    ///
    /// # Errors
    ///
    /// Not a `scheme://{vault}.suffix` template, or plain http without `allow_insecure_http`.
    pub fn key_vault_endpoint(&self) -> Result<HostTemplate, InvalidConfig> {
        self.host_template(
            "upstream.key_vault.endpoint",
            &self.key_vault.endpoint,
            "{vault}",
            "https://{vault}.vault.azure.net",
        )
    }

    /// `text` (the value of `key`) as a template whose host begins with
    /// `placeholder`, with an allowed scheme; errors show `example`.
    fn host_template(
        &self,
        key: &'static str,
        text: &str,
        placeholder: &str,
        example: &str,
    ) -> Result<HostTemplate, InvalidConfig> {
        let endpoint = HostTemplate::parse(text, placeholder).map_err(|problem| {
            invalid(key, problem.to_string(), format!("write it as {example}"))
        })?;
        self.check_scheme(key, endpoint.scheme())?;
        Ok(endpoint)
    }

    /// Checks one credential; `token_env` and `secret_env` are the
    /// variables that could have given its token or secret.
    fn validate_credential(
        &self,
        credential: &CredentialConfig,
        token_env: &str,
        secret_env: &str,
    ) -> Result<(), InvalidConfig> {
        match credential {
            CredentialConfig::Static { token } => {
                if token.as_deref().is_none_or(str::is_empty) {
                    return Err(invalid(
                        "upstream.credential.token",
                        "no token is configured",
                        format!(
                            "set {token_env} in the environment (preferred) or upstream.credential.token"
                        ),
                    ));
                }
            }
            CredentialConfig::ClientSecret {
                tenant_id,
                client_id,
                client_secret,
                client_secret_file,
                authority_host,
            } => {
                check_ids(tenant_id, client_id)?;
                match (
                    client_secret.as_deref().filter(|s| !s.is_empty()),
                    client_secret_file,
                ) {
                    (None, None) => {
                        return Err(invalid(
                            "upstream.credential.client_secret",
                            "no client secret is configured",
                            format!(
                                "set {secret_env} in the environment (preferred), or upstream.credential.client_secret_file"
                            ),
                        ));
                    }
                    (Some(_), Some(_)) => {
                        return Err(invalid(
                            "upstream.credential.client_secret_file",
                            "both a secret and a secret file are configured",
                            "keep one",
                        ));
                    }
                    (None, Some(file)) if !file.is_file() => {
                        return Err(invalid(
                            "upstream.credential.client_secret_file",
                            format!("{} does not exist or is not a file", file.display()),
                            "point it at a file holding the secret",
                        ));
                    }
                    _ => {}
                }
                self.check_authority(authority_host)?;
            }
            CredentialConfig::WorkloadIdentity {
                tenant_id,
                client_id,
                token_file,
                authority_host,
            } => {
                for (key, value, variable) in [
                    (
                        "upstream.credential.tenant_id",
                        tenant_id,
                        "AZURE_TENANT_ID",
                    ),
                    (
                        "upstream.credential.client_id",
                        client_id,
                        "AZURE_CLIENT_ID",
                    ),
                ] {
                    if value
                        .as_deref()
                        .is_none_or(|v| v.trim().is_empty() || v.contains(['/', '?', '#', ' ']))
                    {
                        return Err(invalid(
                            key,
                            "no usable id is configured",
                            format!("set it, or run where the platform sets {variable}"),
                        ));
                    }
                }
                if token_file.is_none() {
                    return Err(invalid(
                        "upstream.credential.token_file",
                        "no federated token file is configured",
                        "set it, or run where the platform sets AZURE_FEDERATED_TOKEN_FILE (AKS workload identity)",
                    ));
                }
                self.check_authority(authority_host.as_deref().unwrap_or(DEFAULT_AUTHORITY_HOST))?;
            }
            CredentialConfig::AzureCli { .. } => {}
            CredentialConfig::ClientCertificate {
                tenant_id,
                client_id,
                certificate_file,
                key_file,
                algorithm,
                authority_host,
            } => {
                check_ids(tenant_id, client_id)?;
                for (key, file) in [
                    (
                        "upstream.credential.certificate_file",
                        Some(certificate_file),
                    ),
                    ("upstream.credential.key_file", key_file.as_ref()),
                ] {
                    if let Some(file) = file
                        && !file.is_file()
                    {
                        return Err(invalid(
                            key,
                            format!("{} does not exist or is not a file", file.display()),
                            "point it at the PEM file (certificate and RSA private key)",
                        ));
                    }
                }
                if !matches!(algorithm.as_str(), "PS256" | "RS256") {
                    return Err(invalid(
                        "upstream.credential.algorithm",
                        format!("'{algorithm}' is not an assertion algorithm Entra takes"),
                        "use PS256 (default) or RS256",
                    ));
                }
                self.check_authority(authority_host)?;
            }
            CredentialConfig::Default { imds_endpoint, .. } => {
                check_imds(imds_endpoint.as_deref())?;
            }
            CredentialConfig::ManagedIdentity {
                client_id,
                object_id,
                resource_id,
                imds_endpoint,
                ..
            } => {
                let named = [client_id, object_id, resource_id]
                    .iter()
                    .filter(|id| id.is_some())
                    .count();
                if named > 1 {
                    return Err(invalid(
                        "upstream.credential.client_id",
                        "more than one of client_id, object_id and resource_id is set",
                        "name the user-assigned identity one way, or none for the system-assigned identity",
                    ));
                }
                check_imds(imds_endpoint.as_deref())?;
            }
        }
        Ok(())
    }

    /// The Blob service template, validated.
    ///
    /// # Errors
    ///
    /// Not a `scheme://{account}.suffix` template, or plain http without `allow_insecure_http`.
    pub fn blob_endpoint(&self) -> Result<HostTemplate, InvalidConfig> {
        self.host_template(
            "upstream.storage.blob_endpoint",
            &self.storage.blob_endpoint,
            "{account}",
            "https://{account}.blob.core.windows.net",
        )
    }

    /// Account names are names, and each shared key has one source and is
    /// for a listed account.
    fn validate_storage(&self) -> Result<(), InvalidConfig> {
        self.blob_endpoint()?;
        if let Some(bad) = self
            .storage
            .accounts
            .iter()
            .find(|a| !valid_account_name(a))
        {
            return Err(invalid(
                "upstream.storage.accounts",
                format!("'{bad}' is not a storage account name"),
                "use the account's name (3-24 lower-case letters and digits), not its URL",
            ));
        }
        for (account, key) in &self.storage.shared_keys {
            if !self.storage.accounts.contains(account) {
                return Err(invalid(
                    "upstream.storage.shared_keys",
                    format!("'{account}' is not in upstream.storage.accounts"),
                    "list the account in upstream.storage.accounts, or remove its key",
                ));
            }
            let sources = [
                key.key_file.is_some(),
                key.key_env.is_some(),
                key.key.as_deref().is_some_and(|k| !k.is_empty()),
            ];
            if sources.iter().filter(|s| **s).count() != 1 {
                return Err(invalid(
                    "upstream.storage.shared_keys",
                    format!("the key of '{account}' needs exactly one of key_file, key_env, key"),
                    "point key_file at a file holding the account key (preferred), or name the variable in key_env",
                ));
            }
            if let Some(name) = &key.key_env
                && key.from_env.is_none()
            {
                return Err(invalid(
                    "upstream.storage.shared_keys",
                    format!("the key of '{account}' is to come from {name}, which is not set"),
                    format!("set {name} to the account key"),
                ));
            }
        }
        Ok(())
    }

    /// Names are usable and unique, selectors select someone, credentials are complete.
    fn validate_identities(&self) -> Result<(), InvalidConfig> {
        let mut seen = std::collections::HashSet::new();
        for identity in &self.identities {
            let name = identity.name.as_str();
            let problem = if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                Some(format!("'{name}' is not a usable name"))
            } else if name.eq_ignore_ascii_case(crate::DEFAULT_IDENTITY) {
                Some("'default' is the name of [upstream.credential]".to_owned())
            } else if !seen.insert(name.to_ascii_lowercase()) {
                Some(format!("two identities are named '{name}'"))
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(invalid(
                    "upstream.identities.name",
                    problem,
                    "give each identity its own name of letters, digits, '-' and '_'; rules name it in elevate_to, audit events record it",
                ));
            }
            check_acting_as_caller(identity)?;
            if let Some(serves) = &identity.serves {
                serves
                    .validate(&format!("upstream.identities.serves of '{name}'"))
                    .map_err(|problem| {
                        invalid(
                            "upstream.identities.serves",
                            problem,
                            "list who it serves, or remove serves to use it only for elevation",
                        )
                    })?;
            }
            let Some(credential) = &identity.credential else {
                continue;
            };
            self.validate_credential(
                credential,
                &identity.env_name("TOKEN"),
                &identity.env_name("CLIENT_SECRET"),
            )
            .map_err(|inner| InvalidConfig {
                key: "upstream.identities.credential",
                problem: format!(
                    "identity '{name}': {}: {}",
                    inner.key.replacen("upstream.credential", "credential", 1),
                    inner.problem
                ),
                fix: inner.fix,
            })?;
        }
        Ok(())
    }

    fn check_authority(&self, authority_host: &str) -> Result<(), InvalidConfig> {
        let authority = Endpoint::parse(authority_host).map_err(|problem| {
            invalid(
                "upstream.credential.authority_host",
                problem.to_string(),
                format!("write the base URL only, e.g. {DEFAULT_AUTHORITY_HOST}"),
            )
        })?;
        self.check_scheme("upstream.credential.authority_host", authority.scheme())
    }

    fn check_scheme(&self, key: &'static str, scheme: &str) -> Result<(), InvalidConfig> {
        if scheme == "http" && !self.allow_insecure_http {
            return Err(invalid(
                key,
                "plain http:// would send the gateway's Azure token unencrypted",
                "use https://, or set upstream.allow_insecure_http = true for a local test double only",
            ));
        }
        Ok(())
    }

    /// The static upstream token, if the credential is one.
    pub fn static_token(&self) -> Option<&str> {
        match &self.credential {
            CredentialConfig::Static { token } => token.as_deref(),
            _ => None,
        }
    }
}

/// A tenant id and a client id, as the portal shows them.
fn check_ids(tenant_id: &str, client_id: &str) -> Result<(), InvalidConfig> {
    for (key, value) in [
        ("upstream.credential.tenant_id", tenant_id),
        ("upstream.credential.client_id", client_id),
    ] {
        if value.trim().is_empty() || value.contains(['/', '?', '#', ' ']) {
            return Err(invalid(
                key,
                format!("'{value}' is not an id"),
                "give the app registration's directory (tenant) id and application (client) id, as the Azure portal shows them",
            ));
        }
    }
    Ok(())
}

fn default_assertion_algorithm() -> String {
    "PS256".into()
}

/// An `imds_endpoint` must be an http(s) URL.
fn check_imds(url: Option<&str>) -> Result<(), InvalidConfig> {
    match url {
        Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => Err(invalid(
            "upstream.credential.imds_endpoint",
            format!("'{url}' is not an http(s) URL"),
            "remove it to use IMDS at http://169.254.169.254",
        )),
        _ => Ok(()),
    }
}

fn default_authority_host() -> String {
    DEFAULT_AUTHORITY_HOST.into()
}
fn default_arm_url() -> String {
    "https://management.azure.com".into()
}
fn default_arm_audience() -> String {
    "https://management.azure.com".into()
}
fn default_key_vault_endpoint() -> String {
    "https://{vault}.vault.azure.net".into()
}
fn default_key_vault_audience() -> String {
    "https://vault.azure.net".into()
}
fn default_blob_endpoint() -> String {
    "https://{account}.blob.core.windows.net".into()
}
fn default_storage_audience() -> String {
    "https://storage.azure.com".into()
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_read_timeout() -> Duration {
    Duration::from_secs(60)
}

/// An identity acting as the caller needs a credential exactly when it
/// exchanges: a client secret for on-behalf-of, none for forwarding; one
/// that holds its own credential needs one. On-behalf-of serves only
/// principals whose tokens are delegated (the grant refuses app-only
/// tokens); forwarding serves whom `serves` names.
fn check_acting_as_caller(identity: &IdentityConfig) -> Result<(), InvalidConfig> {
    let name = &identity.name;
    let credential_problem = match (
        identity.on_behalf_of,
        identity.forward_caller_token,
        &identity.credential,
    ) {
        (true, true, _) => Some((
            "upstream.identities.forward_caller_token",
            format!(
                "identity '{name}' both exchanges (on_behalf_of) and forwards the caller's token"
            ),
            "keep one of on_behalf_of and forward_caller_token",
        )),
        (true, false, Some(CredentialConfig::ClientSecret { .. })) | (false, true, None) => None,
        (true, false, _) => Some((
            "upstream.identities.on_behalf_of",
            format!(
                "identity '{name}' acts on the caller's behalf but its credential is not a client secret"
            ),
            "give it credential.kind = \"client_secret\" of the gateway's own app registration (the one agents get tokens for)",
        )),
        (false, true, Some(_)) => Some((
            "upstream.identities.credential",
            format!("identity '{name}' forwards the caller's own token, so it takes no credential"),
            "remove its credential",
        )),
        (false, false, None) => Some((
            "upstream.identities.credential",
            format!("identity '{name}' has no credential"),
            "add credential = { kind = … } (as [upstream.credential] takes), or act as the caller with on_behalf_of or forward_caller_token",
        )),
        (false, false, Some(_)) => return Ok(()),
    };
    if let Some((key, problem, fix)) = credential_problem {
        return Err(invalid(key, problem, fix));
    }
    if identity.forward_caller_token {
        // Any caller's own token for Azure may go on (an agent's or a
        // managed identity's too); but it acts only for whom it serves.
        if identity.serves.is_none() {
            return Err(invalid(
                "upstream.identities.serves",
                format!("identity '{name}' forwards callers' own tokens but serves no one"),
                "add serves (e.g. kinds = [\"agent\", \"user\"]): it is never an elevation target",
            ));
        }
        return Ok(());
    }
    let delegated = ["user", "agent_for_user", "agent_user"];
    let kinds = identity
        .serves
        .as_ref()
        .map(|s| s.kinds.as_slice())
        .unwrap_or_default();
    if kinds.is_empty() || kinds.iter().any(|k| !delegated.contains(&k.as_str())) {
        return Err(invalid(
            "upstream.identities.serves",
            format!(
                "identity '{name}' acts on the caller's behalf (on-behalf-of), so it can serve only callers with delegated tokens"
            ),
            "add serves.kinds with only \"user\", \"agent_for_user\" and \"agent_user\" (applications, managed identities and agents alone have no user to act for; forward_caller_token can forward their own tokens)",
        ));
    }
    Ok(())
}
