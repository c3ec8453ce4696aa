//! A simulated Azure, and a development Entra-style token issuer.
//!
//! [`SimAzure`] serves a small, faithful subset of Azure Resource Manager
//! (subscriptions, resource groups, storage accounts, virtual machines,
//! long-running operations, paging) and the Key Vault secrets API on one
//! loopback port, seeded with a known inventory. It answers the way Azure
//! does (ARM error envelopes, `WWW-Authenticate` challenges, absolute
//! `nextLink`/`Location`/`Azure-AsyncOperation` URLs) and records every
//! request it receives, so tests can assert what reached "Azure".
//!
//! [`DevIssuer`] is a tiny OpenID Connect provider that mints RS256 access
//! tokens shaped like Entra ID's, publishes its keys as a JWKS, and can
//! rotate keys or go down on demand.
//!
//! ```
//! use airlock_sim::{RESOURCE_GROUP, SUBSCRIPTION_ID, SimAzure};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let sim = SimAzure::builder().expected_token("dev-token").start().await?;
//!
//! let mut stream = tokio::net::TcpStream::connect(sim.addr()).await?;
//! let request = format!(
//!     "GET /subscriptions/{SUBSCRIPTION_ID}/resourcegroups/{RESOURCE_GROUP}?api-version=2021-04-01 HTTP/1.1\r\n\
//!      Host: management.azure.com\r\nAuthorization: Bearer dev-token\r\nConnection: close\r\n\r\n"
//! );
//! stream.write_all(request.as_bytes()).await?;
//! let mut answer = String::new();
//! stream.read_to_string(&mut answer).await?;
//!
//! assert!(answer.starts_with("HTTP/1.1 200"));
//! assert!(answer.contains(r#""provisioningState":"Succeeded""#));
//! assert_eq!(sim.requests()[0].uri.path(), format!("/subscriptions/{SUBSCRIPTION_ID}/resourcegroups/demo-rg"));
//! sim.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod arm;
mod arm_error;
mod auth;
mod blob;
mod compute;
mod deployments;
mod inventory;
mod issuer;
mod key_vault;
mod loopback_client;
mod managed_identity;
mod obo;
mod operations;
mod paging;
mod rbac;
mod recorded;
mod reply;
mod resource_groups;
mod role_definitions;
mod routing;
mod server;
mod sign_in;
mod state;
mod storage;
mod subscriptions;
mod timestamp;
mod token_spec;

pub use blob::STORAGE_AUDIENCE;
pub use issuer::{DevIssuer, FEDERATED_AUDIENCE, IssuerHandle, TokenRejection, TokenVerifier};
pub use loopback_client::LoopbackClient;
pub use rbac::Role;
pub use recorded::RecordedRequest;
pub use server::{SimAzure, SimBuilder, SimHandle};
pub use token_spec::{AGENTS_GROUP, APPROVERS_GROUP, TokenSpec, TokenVersion};

/// The one subscription the simulated Azure knows.
pub const SUBSCRIPTION_ID: &str = "11111111-1111-1111-1111-111111111111";
/// The tenant of the subscription and of the development issuer.
pub const TENANT_ID: &str = "22222222-2222-2222-2222-222222222222";
/// The seeded resource group, in `westeurope`.
pub const RESOURCE_GROUP: &str = "demo-rg";
/// The seeded storage account in [`RESOURCE_GROUP`] (one of five, so listings span pages).
pub const STORAGE_ACCOUNT: &str = "demostore";
/// The seeded virtual machines in [`RESOURCE_GROUP`].
pub const VIRTUAL_MACHINES: [&str; 2] = ["vm1", "vm2"];
/// The seeded Key Vault, holding the secret [`SECRET_NAME`].
pub const VAULT: &str = "demo-vault";
/// The seeded secret in [`VAULT`].
pub const SECRET_NAME: &str = "db-password";
/// The value of [`SECRET_NAME`].
pub const SECRET_VALUE: &str = "s3cr3t-Passw0rd!";
/// The storage accounts seeded in [`RESOURCE_GROUP`], [`STORAGE_ACCOUNT`] first.
pub const STORAGE_ACCOUNTS: [&str; 5] = [
    STORAGE_ACCOUNT,
    "demologs",
    "demobackup",
    "demodata",
    "demoarchive",
];
