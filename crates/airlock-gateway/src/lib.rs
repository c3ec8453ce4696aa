//! The Airlock gateway: configuration, the middleware stack in front of
//! [`airlock_upstream`], the listeners (agents' and admin), health and TLS.
//! The `airlock` binary that runs it lives in `airlock-cli`.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = airlock_gateway::Config::load("airlock.toml".as_ref())?;
//! let gateway = airlock_gateway::Gateway::start(config).await?;
//! println!("serving on {}", gateway.url());
//! tokio::signal::ctrl_c().await?;
//! gateway.shutdown().await; // drains in-flight requests
//! # Ok(()) }
//! ```

mod admin;
mod approval;
mod arm_errors;
mod classify;
pub mod config;
mod connections;
mod credential;
mod error;
mod forward_proxy;
mod health;
mod identity;
mod masking;
mod preview;
mod runtime;
mod server;
mod sni;
mod stack;
pub mod tls;

pub use config::{Config, ConfigError};
pub use error::StartError;
pub use forward_proxy::generate_ca;
pub use masking::default_rules;
pub use runtime::runtime;
pub use server::{Gateway, RunningGateway};
