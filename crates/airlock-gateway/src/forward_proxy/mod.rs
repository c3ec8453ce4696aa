//! Forward-proxy mode: tools that can only be pointed at Azure through
//! `HTTPS_PROXY` (the Azure CLI, SDKs in any language, Terraform, the Azure
//! MCP Server) reach it through the gateway unchanged.
//!
//! A `CONNECT host:443` goes through the stack like any request (so it is
//! recorded, served or refused): [`ConnectLayer`] serves the Azure hosts the
//! routing table knows (intercepted: TLS is terminated with a certificate
//! minted for the host from the configured CA, and every request inside runs
//! through the whole stack with its real host) and the sign-in hosts in
//! `forward_proxy.tunnel_hosts` (passed through blind); anything else is
//! refused with 403 before a byte is tunnelled. [`ProxyService`], at the
//! listener, carries the tunnel out once the stack has said yes.

mod connect;
mod mint;
mod tunnel;

pub(crate) use connect::{ConnectLayer, Targets};
pub(crate) use mint::Minter;
pub use mint::generate_ca;
pub(crate) use tunnel::{Admission, ProxyContext, ProxyService};
