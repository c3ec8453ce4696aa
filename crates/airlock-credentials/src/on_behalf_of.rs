//! [`OnBehalfOf`]: the caller's own Azure rights upstream, through Entra's
//! on-behalf-of grant (a user's token, or an agent's acting for a user,
//! traded by the gateway's app registration for the same caller's token for
//! ARM or Key Vault).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use airlock_core::{AccessToken, BoxFuture, CallerToken, HttpClient, TokenError, TokenExchange};
use sha2::{Digest, Sha256};

use crate::{ClientSecret, SourceError, entra};

/// Tokens are not handed out closer than this to their expiry.
const MARGIN: Duration = Duration::from_secs(60);

/// Trades a caller's token (issued to the gateway's app: `aud` = its client
/// id or App ID URI) for that caller's token for an Azure audience:
/// `POST {authority}/{tenant}/oauth2/v2.0/token` with
/// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`,
/// `requested_token_use=on_behalf_of`, the gateway's client secret, the
/// caller's token as `assertion` and `scope={audience}/.default`. Azure's
/// RBAC then applies the caller's own roles, and the Activity Log names the
/// caller.
///
/// Each answer is cached per caller token (kept only as its SHA-256) and
/// audience until a minute before it expires, up to `capacity` entries.
/// Neither the secret nor a caller's token ever appears in `Debug` output,
/// logs or errors. Concurrent first requests with one token may each
/// exchange it (Entra answers both).
#[derive(Debug)]
pub struct OnBehalfOf {
    /// The gateway's app registration, which callers' tokens are issued to.
    client: ClientSecret,
    capacity: usize,
    /// A token Azure refuses younger than this is kept (see
    /// [`rejected`](TokenExchange::rejected)).
    keep_refused_for: Duration,
    cache: Mutex<HashMap<Key, Cached>>,
}

/// A caller token's SHA-256 and an audience.
type Key = ([u8; 32], String);

/// Where `caller_token`'s exchange for `audience` is cached.
fn key(caller_token: &str, audience: &str) -> Key {
    (
        Sha256::digest(caller_token.as_bytes()).into(),
        audience.to_owned(),
    )
}

/// One exchanged token and when it was had.
#[derive(Debug)]
struct Cached {
    token: AccessToken,
    at: SystemTime,
}

impl OnBehalfOf {
    /// Exchanges as `client_id` of `tenant_id` at `authority_host`, keeping
    /// up to 10 000 tokens.
    pub fn new(
        http: Arc<dyn HttpClient>,
        authority_host: &str,
        tenant_id: &str,
        client_id: &str,
        secret: impl Into<String>,
    ) -> Self {
        Self {
            client: ClientSecret::new(http, authority_host, tenant_id, client_id, secret),
            capacity: 10_000,
            keep_refused_for: Duration::from_secs(30),
            cache: Mutex::default(),
        }
    }

    /// Keeps at most `capacity` tokens (0: exchange on every request).
    #[must_use]
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// A token Azure refuses is exchanged anew only once it is this old
    /// (default 30 s): an Azure that refuses every token costs Entra one
    /// exchange per caller and audience per period, not one per request.
    #[must_use]
    pub fn keep_refused_for(mut self, period: Duration) -> Self {
        self.keep_refused_for = period;
        self
    }

    /// The caller's token for `audience`, from the cache or a new exchange.
    ///
    /// # Errors
    ///
    /// Entra's refusal (`invalid_grant` for an expired or foreign caller
    /// token: permanent) or an unreachable endpoint (transient), without
    /// the secret or the caller's token in the message.
    pub async fn token(
        &self,
        caller_token: &str,
        audience: &str,
    ) -> Result<AccessToken, SourceError> {
        let key = key(caller_token, audience);
        let now = SystemTime::now();
        let usable = |token: &AccessToken| token.expires_at().is_some_and(|at| now + MARGIN < at);
        if let Some(cached) = self.lock().get(&key).filter(|c| usable(&c.token)) {
            return Ok(cached.token.clone());
        }
        let scope = entra::scope(audience);
        let grant = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("requested_token_use", "on_behalf_of"),
            ("assertion", caller_token),
            ("scope", scope.as_str()),
        ];
        let fetched = self
            .client
            .request(&grant, Some((caller_token, "<caller token>")))
            .await
            .map_err(|e| SourceError {
                message: format!(
                    "on-behalf-of exchange as client {}: {}",
                    self.client.client_id(),
                    e.message
                ),
                transient: e.transient,
            })?;
        if self.capacity > 0 && usable(&fetched.token) {
            let mut cache = self.lock();
            cache.retain(|_, cached| usable(&cached.token));
            if cache.len() >= self.capacity
                && let Some(evicted) = cache.keys().next().cloned()
            {
                cache.remove(&evicted);
            }
            let cached = Cached {
                token: fetched.token.clone(),
                at: now,
            };
            cache.insert(key, cached);
        }
        Ok(fetched.token)
    }

    /// How many tokens are cached.
    pub fn cached(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Cached>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl TokenExchange for OnBehalfOf {
    fn exchange<'a>(
        &'a self,
        caller: &'a CallerToken,
        audience: &'a str,
    ) -> BoxFuture<'a, Result<AccessToken, TokenError>> {
        Box::pin(async move {
            self.token(caller.as_str(), audience)
                .await
                .map_err(|e| TokenError(e.message))
        })
    }

    /// Forgets `token` if it is still the one cached for `caller` and
    /// `audience` and was had at least [`keep_refused_for`](OnBehalfOf::keep_refused_for) ago.
    fn rejected(&self, caller: &CallerToken, audience: &str, token: &AccessToken) -> bool {
        let key = key(caller.as_str(), audience);
        let mut cache = self.lock();
        let Some(cached) = cache.get(&key) else {
            // Forgotten already, or never kept: the next call exchanges.
            return true;
        };
        if cached.token.secret() != token.secret() {
            return true;
        }
        let old_enough = SystemTime::now()
            .duration_since(cached.at)
            .is_ok_and(|age| age >= self.keep_refused_for);
        if old_enough {
            cache.remove(&key);
        }
        old_enough
    }
}
