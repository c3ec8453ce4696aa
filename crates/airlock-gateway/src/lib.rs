//! The Airlock gateway: configuration, the middleware stack, the upstream
//! client to Azure, and the `airlock` binary.
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
pub mod approvals_cli;
pub mod arm_errors;
pub mod audit_cli;
mod classify;
pub mod config;
pub mod demo;
mod error;
pub mod explain;
mod health;
mod identity;
pub mod masking;
pub mod routing;
mod server;
pub mod stack;
pub mod tls;
pub mod upstream;

pub use config::{Config, ConfigError};
pub use error::StartError;
pub use routing::Routes;
pub use server::{Gateway, RunningGateway};
