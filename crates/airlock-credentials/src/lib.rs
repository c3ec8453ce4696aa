//! The gateway's own Azure credentials.
//!
//! A [`TokenSource`] signs in somewhere (Entra's token endpoint with a
//! client secret: [`ClientSecret`]; the platform's managed identity:
//! [`ManagedIdentity`]) and returns a token for one audience. A
//! [`TokenCache`] sits in front of it and is what the gateway asks on every
//! upstream request (it implements [`airlock_core::TokenProvider`]):
//!
//! - one cached token per audience (ARM, Key Vault, Graph, Storage);
//! - refreshed *ahead* of expiry, in the background, while callers keep
//!   the current token: at the `refresh_in` Entra sends, else at half the
//!   lifetime, and never later than 5 minutes before it expires (tokens
//!   living under 10 minutes: at half their lifetime);
//! - single-flight: however many requests need a token at once, the source
//!   is asked once;
//! - a failed refresh is retried with backoff while the token in hand is
//!   valid; when no valid token can be had, the caller gets an error naming
//!   the identity and the source's reason, never a secret.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, SystemTime};
//!
//! use airlock_core::{AccessToken, BoxFuture, TokenProvider};
//! use airlock_credentials::{FetchedToken, SourceError, TokenCache, TokenSource};
//!
//! /// A source that mints a fresh one-hour token each time it is asked.
//! struct OneHour;
//!
//! impl TokenSource for OneHour {
//!     fn identity(&self) -> &str {
//!         "the example identity"
//!     }
//!     fn fetch<'a>(&'a self, audience: &'a str) -> BoxFuture<'a, Result<FetchedToken, SourceError>> {
//!         Box::pin(async move {
//!             let expires = SystemTime::now() + Duration::from_secs(3600);
//!             Ok(FetchedToken::new(AccessToken::new(format!("token-for-{audience}"), Some(expires))))
//!         })
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let cache = TokenCache::new(Arc::new(OneHour));
//! let token = cache.token("https://management.azure.com").await.unwrap();
//! assert_eq!(token.secret(), "token-for-https://management.azure.com");
//! # });
//! ```

mod azure_cli;
mod cache;
mod chain;
mod client_certificate;
mod client_secret;
mod clock;
mod entra;
mod form;
mod managed_identity;
mod metrics;
mod on_behalf_of;
mod shared_key;
mod source;
mod workload_identity;

pub use azure_cli::AzureCli;
pub use cache::TokenCache;
pub use chain::DefaultChain;
pub use client_certificate::ClientCertificate;
pub use client_secret::{ClientSecret, DEFAULT_AUTHORITY_HOST};
pub use clock::{Clock, SystemClock};
pub use managed_identity::{IMDS_ENDPOINT, IdentityEndpoint, ManagedIdentity, UserAssigned};
pub use metrics::CredentialMetrics;
pub use on_behalf_of::OnBehalfOf;
pub use shared_key::{InvalidKey, SharedKey, string_to_sign};
pub use source::{FetchedToken, SourceError, TokenSource};
pub use workload_identity::WorkloadIdentity;
