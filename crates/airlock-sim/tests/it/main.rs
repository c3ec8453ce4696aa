//! The simulated Azure and the development issuer, spoken to over real HTTP.

#![allow(clippy::unwrap_used)]

mod arm;
mod client;
mod issuer;
mod key_vault;
