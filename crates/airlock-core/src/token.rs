//! The gateway's own Azure credential: the trait upstream services and group
//! resolvers ask for bearer tokens.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::HeaderValue;

/// A boxed, sendable future, for object-safe async traits.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A bearer token for one audience. Its `Debug` never shows the secret;
/// clones share it (a cache hands out clones on every request).
#[derive(Clone)]
pub struct AccessToken {
    secret: Arc<str>,
    /// `Bearer <secret>`, built once per token rather than per request (a
    /// token is ~1.5 KB to copy and check); `None` when the secret cannot
    /// be a header value.
    authorization: Option<HeaderValue>,
    expires_at: Option<SystemTime>,
}

impl AccessToken {
    /// A token and, if known, when it expires.
    pub fn new(secret: impl Into<String>, expires_at: Option<SystemTime>) -> Self {
        let secret: Arc<str> = Arc::from(secret.into());
        let authorization = HeaderValue::from_maybe_shared(Bytes::from(format!("Bearer {secret}")))
            .ok()
            .map(|mut value| {
                value.set_sensitive(true);
                value
            });
        Self {
            secret,
            authorization,
            expires_at,
        }
    }
    /// The bearer value; put it in a header, never in a log.
    pub fn secret(&self) -> &str {
        &self.secret
    }
    /// `Bearer <secret>` as an `Authorization` header value, marked
    /// sensitive; `None` when the secret has bytes a header cannot carry.
    ///
    /// ```
    /// use airlock_core::AccessToken;
    ///
    /// let token = AccessToken::new("eyJ0eXAi.e30.c2ln", None);
    /// let value = token.authorization().unwrap();
    /// assert_eq!(value, "Bearer eyJ0eXAi.e30.c2ln");
    /// assert!(value.is_sensitive());
    /// assert!(AccessToken::new("line\nbreak", None).authorization().is_none());
    /// ```
    pub fn authorization(&self) -> Option<&HeaderValue> {
        self.authorization.as_ref()
    }
    /// When the token expires, if known.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("secret", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Why a token could not be obtained.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TokenError(pub String);

/// Supplies the gateway's bearer token for an audience
/// (`https://management.azure.com`, `https://vault.azure.net`, …).
///
/// Implementations cache and refresh; the gateway calls this on every
/// upstream request.
///
/// ```
/// use airlock_core::{StaticTokenProvider, TokenProvider};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let provider = StaticTokenProvider::new("dev-token");
/// let token = provider.token("https://management.azure.com").await.unwrap();
/// assert_eq!(token.secret(), "dev-token");
/// assert!(!format!("{token:?}").contains("dev-token"));
/// # });
/// ```
pub trait TokenProvider: Send + Sync + 'static {
    /// A valid token for `audience`.
    fn token<'a>(&'a self, audience: &'a str) -> BoxFuture<'a, Result<AccessToken, TokenError>>;

    /// Azure refused `token`, which this provider gave for `audience`
    /// (`401`: revoked, or signed with a key Azure no longer accepts).
    /// Whether the next [`token`](Self::token) call gives another one, so
    /// that the request is worth sending once more; a cache forgets the
    /// refused token. By default `false`: without a cache there is nothing
    /// to forget.
    fn rejected(&self, audience: &str, token: &AccessToken) -> bool {
        let _ = (audience, token);
        false
    }
}

/// Trades the caller's own token for the caller's token for an Azure
/// audience (Entra's on-behalf-of grant), so that Azure's RBAC applies the
/// caller's own roles: an upstream identity that acts as the caller.
pub trait TokenExchange: Send + Sync + 'static {
    /// The caller's token for `audience`, given the token they presented.
    fn exchange<'a>(
        &'a self,
        caller: &'a CallerToken,
        audience: &'a str,
    ) -> BoxFuture<'a, Result<AccessToken, TokenError>>;

    /// Azure refused `token`, which this exchange gave `caller` for
    /// `audience` (`401`); whether the next [`exchange`](Self::exchange)
    /// gives another, as [`TokenProvider::rejected`]. By default `false`.
    fn rejected(&self, caller: &CallerToken, audience: &str, token: &AccessToken) -> bool {
        let _ = (caller, audience, token);
        false
    }
}

/// The bearer token the caller presented, kept in the request's
/// extensions by the identity layer only when an upstream identity acts on
/// the caller's behalf ([`TokenExchange`]); never in `Debug` output.
///
/// ```
/// let token = airlock_core::CallerToken::new("eyJ…");
/// assert_eq!(token.as_str(), "eyJ…");
/// assert!(!format!("{token:?}").contains("eyJ"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct CallerToken(std::sync::Arc<str>);

impl CallerToken {
    /// Wraps a verified caller's token.
    pub fn new(token: &str) -> Self {
        Self(token.into())
    }
    /// The token.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CallerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallerToken(<redacted>)")
    }
}

/// A fixed token for every audience: for development and the simulated Azure.
#[derive(Clone)]
pub struct StaticTokenProvider {
    token: AccessToken,
}

impl StaticTokenProvider {
    /// Always answers `secret`.
    pub fn new(secret: impl Into<String>) -> Self {
        Self {
            token: AccessToken::new(secret, None),
        }
    }
}

impl fmt::Debug for StaticTokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticTokenProvider")
            .finish_non_exhaustive()
    }
}

impl TokenProvider for StaticTokenProvider {
    fn token<'a>(&'a self, _audience: &'a str) -> BoxFuture<'a, Result<AccessToken, TokenError>> {
        Box::pin(async move { Ok(self.token.clone()) })
    }
}
