//! [`TokenSource`]: where tokens come from.

use std::time::Duration;

use airlock_core::{AccessToken, BoxFuture};

/// A token a source fetched, with Entra's refresh hint when it sent one.
#[derive(Clone, Debug)]
pub struct FetchedToken {
    /// The token; its expiry should be known (a token without one is
    /// refreshed every 5 minutes).
    pub token: AccessToken,
    /// `refresh_in`: when Entra suggests asking again.
    pub refresh_in: Option<Duration>,
}

impl FetchedToken {
    /// A token without a refresh hint.
    pub fn new(token: AccessToken) -> Self {
        Self {
            token,
            refresh_in: None,
        }
    }
}

/// Why a source could not fetch a token. The message must never hold a
/// secret: it reaches logs and, through the gateway's 502, clients.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    /// What went wrong, for an operator.
    pub message: String,
    /// Whether asking again may succeed (a timeout, a 5xx or 429), as
    /// opposed to a refusal that will not change by itself (`invalid_client`).
    pub transient: bool,
}

impl SourceError {
    /// A failure worth retrying.
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            transient: true,
        }
    }

    /// A refusal that retrying will not change.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            transient: false,
        }
    }
}

/// Signs in as one Azure identity and fetches tokens for an audience
/// (`https://management.azure.com`, `https://vault.azure.net`, …). The
/// [`TokenCache`](crate::TokenCache) in front of it decides when.
pub trait TokenSource: Send + Sync + 'static {
    /// Who it signs in as, for errors and logs (never a secret): e.g.
    /// `client 00000000-… in tenant 22222222-… (client secret)`.
    fn identity(&self) -> &str;

    /// A new token for `audience`.
    fn fetch<'a>(&'a self, audience: &'a str) -> BoxFuture<'a, Result<FetchedToken, SourceError>>;
}
