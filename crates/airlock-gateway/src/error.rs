//! Why the gateway could not start.

use std::net::SocketAddr;

/// A start-up failure; the message names the cause and the fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] crate::ConfigError),
    /// TLS could not be set up.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The upstream client could not be built.
    #[error("upstream.ca_file: {0}")]
    Client(#[from] airlock_http::ClientError),
    /// The token validator could not start (typically: the identity provider
    /// could not be reached for its signing keys).
    #[error(
        "identity: {0}; fix: check [identity] (discovery, jwks_url or jwks_file) and that the identity provider is reachable from the gateway"
    )]
    Identity(airlock_identity::BuildError),
    /// The policy file is missing or invalid.
    #[error(
        "policy.file: {0}; fix: correct the file (`airlock policy check FILE` shows every problem)"
    )]
    Policy(airlock_policy::PolicyError),
    /// Approvers' sign-in could not be set up (typically: the identity
    /// provider's discovery could not be read).
    #[error(
        "admin.sign_in: {0}; fix: check [admin.sign_in] and that the identity provider is reachable from the gateway"
    )]
    SignIn(String),
    /// The recorder could not start (its sink did not answer).
    #[error("audit: {0}; fix: check [store].database")]
    Audit(String),
    /// The masking layer could not be set up.
    #[error("masking: {0}")]
    Masking(String),
    /// The listen address is taken or not ours.
    #[error("cannot listen on {address}: {source}; fix: choose a free address in listen.address")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}
