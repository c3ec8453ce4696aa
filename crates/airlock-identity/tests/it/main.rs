//! The identity layer against a real issuer: the development Entra-style
//! issuer (`airlock_sim::DevIssuer`) serves discovery and a JWKS over HTTP on
//! loopback, signs with real RSA keys, rotates them and goes down on demand.

#![allow(clippy::unwrap_used)]

mod corpus;
mod groups;
mod keys;
mod layer;
mod properties;
mod providers;
mod proxy;
mod support;
mod tokens;
