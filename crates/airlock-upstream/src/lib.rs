//! The innermost service of the Airlock gateway: it forwards an allowed
//! request to Azure and brings the answer back.
//!
//! - [`Routes`]: which Azure endpoint a request is for, from the host it
//!   addressed and configuration alone (no open proxy, no SSRF);
//! - [`Upstream`]: the `tower::Service` that refuses anything without an
//!   allowing decision, presents the gateway's own token for the endpoint's
//!   audience, sends over [`airlock_http`]'s pooled client and rewrites
//!   Azure's absolute URLs back onto the gateway;
//! - [`UpstreamConfig`]: the `[upstream]` table it is built from.
//!
//! ```
//! use airlock_upstream::{Endpoint, GatewayHosts, Routes, UpstreamConfig};
//! use airlock_azure::AzureEndpoint;
//!
//! let config: UpstreamConfig = toml::from_str(r#"
//!     key_vault.vaults = ["kv1"]
//!     credential = { kind = "static", token = "dev" }
//! "#).unwrap();
//! config.validate().unwrap();
//! let gateway = GatewayHosts::new(Endpoint::parse("https://airlock.example").unwrap());
//! let routes = Routes::new(&config, &gateway).unwrap();
//! let vault = AzureEndpoint::KeyVault { vault: "kv1".into() };
//! assert_eq!(
//!     routes.upstream_uri(&vault, &"/secrets?api-version=7.4".parse().unwrap()).unwrap(),
//!     "https://kv1.vault.azure.net/secrets?api-version=7.4",
//! );
//! ```

mod config;
mod headers;
mod identities;
mod rewrite;
mod routing;
mod service;

pub use config::{
    Cloud, CredentialConfig, IdentityConfig, InvalidConfig, KeyVaultConfig, SharedKeyConfig,
    StorageConfig, UPSTREAM_CLIENT_SECRET_ENV, UPSTREAM_TOKEN_ENV, UpstreamConfig,
};
pub use identities::{DEFAULT_IDENTITY, Selected, UpstreamIdentities};
pub use routing::{
    Endpoint, EndpointError, Face, GatewayHosts, HostTemplate, Routes, valid_account_name,
    valid_vault_name,
};
pub use service::{FromUpstream, Upstream, request_body_error};
