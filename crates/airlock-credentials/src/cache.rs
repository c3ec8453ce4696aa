//! [`TokenCache`]: one token per audience, refreshed ahead of expiry,
//! fetched once however many requests ask.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use airlock_core::{AccessToken, BoxFuture, TokenError, TokenProvider};

use crate::{Clock, CredentialMetrics, FetchedToken, SourceError, SystemClock, TokenSource};

/// Refresh no later than this before expiry (tokens that live long enough).
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// A token is not handed out in its last moments: at most this much early
/// (a tenth of the lifetime for short-lived tokens).
const EXPIRY_SKEW: Duration = Duration::from_secs(30);
/// How often a token without a known expiry is fetched again.
const UNKNOWN_EXPIRY_REFRESH: Duration = Duration::from_secs(5 * 60);
/// Attempts when a caller must wait for a token (none is usable).
const ATTEMPTS_WHEN_EMPTY: u32 = 3;
/// The first pause between attempts; it doubles.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The longest pause between background refreshes that failed.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A token Azure refuses is forgotten at most this often per audience: an
/// Azure that refuses every token (a missing role, a wrong tenant) costs
/// one fetch from Entra per this period, not one per request.
const REJECTION_INTERVAL: Duration = Duration::from_secs(30);

/// Caches a [`TokenSource`]'s tokens per audience; see the
/// [crate docs](crate). Cheap to clone: clones share the cache.
#[derive(Clone)]
pub struct TokenCache {
    inner: Arc<Inner>,
    metrics: Arc<CredentialMetrics>,
}

struct Inner {
    source: Arc<dyn TokenSource>,
    clock: Arc<dyn Clock>,
    entries: RwLock<HashMap<String, Arc<Entry>>>,
}

/// One audience's token.
#[derive(Default)]
struct Entry {
    slot: Mutex<Slot>,
    /// Held while fetching: whoever waits for it finds the fresh token.
    fetching: tokio::sync::Mutex<()>,
    /// A background refresh is under way.
    refreshing: AtomicBool,
}

#[derive(Default)]
struct Slot {
    token: Option<AccessToken>,
    /// Handed out until then.
    usable_until: Option<SystemTime>,
    /// Refreshed in the background from then on.
    refresh_at: Option<SystemTime>,
    /// The pause before the next background attempt after a failure.
    backoff: Duration,
    /// When a token Azure refused was last forgotten.
    forgotten_at: Option<SystemTime>,
}

impl Slot {
    fn usable(&self, now: SystemTime) -> Option<&AccessToken> {
        self.token
            .as_ref()
            .filter(|_| self.usable_until.is_some_and(|until| now < until))
    }

    fn store(&mut self, fetched: FetchedToken, now: SystemTime) {
        let (usable_until, refresh_at) = plan(&fetched, now);
        self.token = Some(fetched.token);
        self.usable_until = Some(usable_until);
        self.refresh_at = Some(refresh_at);
        self.backoff = Duration::ZERO;
    }
}

/// When a token fetched `now` stops being handed out, and when it is refreshed.
fn plan(fetched: &FetchedToken, now: SystemTime) -> (SystemTime, SystemTime) {
    let Some(expires) = fetched.token.expires_at() else {
        let refresh = now + fetched.refresh_in.unwrap_or(UNKNOWN_EXPIRY_REFRESH);
        return (now + Duration::from_secs(365 * 24 * 3600), refresh);
    };
    let lifetime = expires.duration_since(now).unwrap_or_default();
    let usable_until = expires - EXPIRY_SKEW.min(lifetime / 10);
    let planned = now + fetched.refresh_in.unwrap_or(lifetime / 2);
    let latest = if lifetime >= 2 * REFRESH_MARGIN {
        expires - REFRESH_MARGIN
    } else {
        now + lifetime / 2
    };
    (usable_until, planned.min(latest).min(usable_until))
}

fn lock(slot: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("identity", &self.inner.source.identity())
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    /// A cache in front of `source`, on the system clock.
    pub fn new(source: Arc<dyn TokenSource>) -> Self {
        Self::with_clock(source, Arc::new(SystemClock))
    }

    /// A cache planning refreshes by `clock` (tests move time by hand).
    pub fn with_clock(source: Arc<dyn TokenSource>, clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Arc::new(Inner {
                source,
                clock,
                entries: RwLock::default(),
            }),
            metrics: CredentialMetrics::new(),
        }
    }

    /// Counts fetches into `metrics` (default: its own, unregistered);
    /// see [`CredentialMetrics`].
    #[must_use]
    pub fn metrics(mut self, metrics: Arc<CredentialMetrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Who the source signs in as.
    pub fn identity(&self) -> &str {
        self.inner.source.identity()
    }

    fn entry(&self, audience: &str) -> Arc<Entry> {
        let entries = &self.inner.entries;
        if let Some(entry) = entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(audience)
        {
            return entry.clone();
        }
        entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(audience.to_owned())
            .or_default()
            .clone()
    }

    /// A valid token for `audience`; see the [crate docs](crate).
    ///
    /// # Errors
    ///
    /// When no valid token is cached and the source failed (after retries
    /// when its failure was transient): the identity and the source's reason.
    pub async fn get(&self, audience: &str) -> Result<AccessToken, TokenError> {
        let entry = self.entry(audience);
        let now = self.inner.clock.now();
        {
            let slot = lock(&entry.slot);
            if let Some(token) = slot.usable(now) {
                let token = token.clone();
                if slot.refresh_at.is_some_and(|at| now >= at) {
                    drop(slot);
                    self.refresh_in_background(&entry, audience);
                }
                return Ok(token);
            }
        }
        // Nothing usable: wait for one fetch (ours, or the one under way).
        let _fetching = entry.fetching.lock().await;
        if let Some(token) = lock(&entry.slot).usable(self.inner.clock.now()) {
            return Ok(token.clone());
        }
        let fetched = self.fetch_with_retries(audience).await;
        self.metrics.fetched(false, fetched.is_ok());
        match fetched {
            Ok(fetched) => {
                let token = fetched.token.clone();
                lock(&entry.slot).store(fetched, self.inner.clock.now());
                Ok(token)
            }
            Err(error) => {
                tracing::warn!(identity = self.identity(), audience, reason = %error, "no Azure token");
                Err(TokenError(format!(
                    "{} could not get a token for {audience}: {error}",
                    self.identity()
                )))
            }
        }
    }

    async fn fetch_with_retries(&self, audience: &str) -> Result<FetchedToken, SourceError> {
        let mut pause = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            match self.inner.source.fetch(audience).await {
                Err(error) if error.transient && attempt < ATTEMPTS_WHEN_EMPTY => {
                    tracing::info!(identity = self.identity(), audience, attempt, reason = %error, "token fetch failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// Refreshes `audience`'s token in the background, once at a time,
    /// while callers keep getting the current one.
    fn refresh_in_background(&self, entry: &Arc<Entry>, audience: &str) {
        if entry.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (cache, entry, audience) = (self.clone(), entry.clone(), audience.to_owned());
        tokio::spawn(async move {
            let _fetching = entry.fetching.lock().await;
            let due = lock(&entry.slot)
                .refresh_at
                .is_none_or(|at| cache.inner.clock.now() >= at);
            if due {
                let fetched = cache.inner.source.fetch(&audience).await;
                cache.metrics.fetched(true, fetched.is_ok());
                let now = cache.inner.clock.now();
                let mut slot = lock(&entry.slot);
                match fetched {
                    Ok(fetched) => {
                        slot.store(fetched, now);
                        tracing::debug!(
                            identity = cache.identity(),
                            audience,
                            "Azure token refreshed ahead of expiry"
                        );
                    }
                    Err(error) => {
                        // Keep the token in hand; try again later, backing off.
                        slot.backoff =
                            (slot.backoff * 2).clamp(Duration::from_secs(1), MAX_BACKOFF);
                        slot.refresh_at = Some(now + slot.backoff);
                        tracing::warn!(identity = cache.identity(), audience, reason = %error, retry_in = ?slot.backoff, "refreshing the Azure token failed; the current one is still valid");
                    }
                }
            }
            entry.refreshing.store(false, Ordering::Release);
        });
    }
}

impl TokenProvider for TokenCache {
    fn token<'a>(&'a self, audience: &'a str) -> BoxFuture<'a, Result<AccessToken, TokenError>> {
        Box::pin(self.get(audience))
    }

    /// Forgets `token` if it is still the one cached for `audience`, at most
    /// once per 30 s; `true` when the next [`get`](Self::get) gives another.
    fn rejected(&self, audience: &str, token: &AccessToken) -> bool {
        let entry = self.entry(audience);
        let now = self.inner.clock.now();
        let mut slot = lock(&entry.slot);
        match &slot.token {
            Some(cached) if cached.secret() == token.secret() => {}
            // Already replaced or forgotten: the next call gets another.
            Some(_) | None => return true,
        }
        let recently = slot.forgotten_at.is_some_and(|at| {
            now.duration_since(at)
                .is_ok_and(|since| since < REJECTION_INTERVAL)
        });
        if recently {
            return false;
        }
        slot.token = None;
        slot.usable_until = None;
        slot.refresh_at = None;
        slot.forgotten_at = Some(now);
        tracing::info!(
            identity = self.identity(),
            audience,
            "Azure refused the gateway's token; fetching a new one"
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetched(lifetime: Duration, refresh_in: Option<Duration>, now: SystemTime) -> FetchedToken {
        FetchedToken {
            token: AccessToken::new("t", Some(now + lifetime)),
            refresh_in,
        }
    }

    #[test]
    fn refreshes_at_the_hint_else_half_life_and_never_late() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let hour = Duration::from_secs(3600);
        // Half the lifetime.
        assert_eq!(plan(&fetched(hour, None, now), now).1, now + hour / 2);
        // Entra's hint, when earlier than the margin allows.
        let hint = Duration::from_secs(600);
        assert_eq!(plan(&fetched(hour, Some(hint), now), now).1, now + hint);
        // Never later than 5 minutes before expiry, whatever the hint.
        let late = Some(Duration::from_secs(3500));
        assert_eq!(
            plan(&fetched(hour, late, now), now).1,
            now + hour - REFRESH_MARGIN
        );
        // Handed out until 30 s before expiry.
        assert_eq!(
            plan(&fetched(hour, None, now), now).0,
            now + hour - EXPIRY_SKEW
        );
        // Short-lived tokens: at half their life, handed out until 90 % of it.
        let short = Duration::from_secs(60);
        let (until, refresh) = plan(&fetched(short, None, now), now);
        assert_eq!(refresh, now + Duration::from_secs(30));
        assert_eq!(until, now + Duration::from_secs(54));
    }
}
