//! Airlock's one HTTPS client.
//!
//! Every outbound call Airlock makes (to Azure, to the identity provider's
//! discovery and JWKS documents, to Microsoft Graph, from the CLI to the
//! admin API, from the demo's scripted agent) goes through the client built
//! here: hyper-util's pooled client over rustls with the aws-lc-rs provider,
//! HTTP/2 where the server offers it, the system's trust roots plus an
//! optional extra CA, and names under `.localhost` resolved to loopback
//! (RFC 6761) without asking DNS.
//!
//! ```
//! use std::time::Duration;
//! use airlock_http::{ClientBuilder, TrustRoots};
//!
//! # fn main() -> Result<(), airlock_http::ClientError> {
//! // The pooled client, for streaming requests (the gateway's upstream).
//! let pooled = ClientBuilder::new(TrustRoots::system())
//!     .connect_timeout(Duration::from_secs(5))
//!     .build()?;
//! // The same pool behind `airlock_core::HttpClient`, for buffered calls
//! // (JWKS, discovery, Graph), each bounded in size and time.
//! let client = airlock_http::HttpsClient::new(pooled, Duration::from_secs(30));
//! # let _ = client; Ok(()) }
//! ```

mod builder;
mod https_client;
mod resolver;
mod trust;

pub use builder::{ClientBuilder, PooledClient, ProxiedClient};
pub use https_client::{HttpsClient, innermost};
pub use resolver::LocalhostResolver;
pub use trust::{ClientError, TrustRoots};
