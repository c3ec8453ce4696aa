//! [`QuotaStore`]: where quota use is counted, and [`MemoryQuotaStore`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use airlock_core::BoxFuture;

/// Whose use of which quota.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct QuotaKey {
    /// The quota's name.
    pub quota: String,
    /// Its subject: an object id, or `group:<id>` ([`Quota::subject`](crate::Quota::subject)).
    pub subject: String,
}

/// One [`QuotaStore::take`]: `amount` of `limit` within `window` before `now`.
#[derive(Clone, Copy, Debug)]
pub struct Take<'a> {
    /// Whose allowance.
    pub key: &'a QuotaKey,
    /// How much to take; 0 only asks whether anything is left.
    pub amount: u64,
    /// The most the window may hold.
    pub limit: u64,
    /// How far back use counts.
    pub window: Duration,
    /// The time of the request.
    pub now: SystemTime,
}

/// A subject's use of a quota within its window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Usage {
    /// The subject ([`QuotaKey::subject`]).
    pub subject: String,
    /// How much was used within the window (after a successful take, with it).
    pub used: u64,
    /// The oldest use still in the window: when it leaves, room frees up.
    pub oldest: Option<SystemTime>,
}

/// What a [`QuotaStore::take`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Taken {
    /// Whether the amount was taken (or, for 0, whether anything is left).
    pub granted: bool,
    /// The subject's use, as it is now.
    pub usage: Usage,
}

/// The store could not count: the quota layer refuses the request (fail closed).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the quota store failed: {0}")]
pub struct QuotaError(pub String);

/// Counts quota use in sliding windows. Implemented by the SQLite and
/// PostgreSQL stores (`airlock-store`), whose counts replicas share, and by
/// [`MemoryQuotaStore`] for one process.
///
/// Every use is kept with its time, and a window counts the uses within it,
/// so a window slides: nothing resets all at once.
pub trait QuotaStore: Send + Sync + 'static {
    /// Takes `take.amount` of the key's allowance unless the use within the
    /// window plus the amount would pass the limit (an amount of 0 is
    /// granted while the use is below the limit). Atomic per key: concurrent
    /// takes never overshoot together.
    fn take<'a>(&'a self, take: Take<'a>) -> BoxFuture<'a, Result<Taken, QuotaError>>;

    /// Adds a use already made (the bytes of an answer sent), whatever the limit.
    fn add<'a>(
        &'a self,
        key: &'a QuotaKey,
        amount: u64,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<(), QuotaError>>;

    /// Gives back one use of `amount` taken at `at` (a request counted at
    /// the quota step that then got no answer from Azure). Giving back a
    /// use that is not there (it left the window) does nothing.
    fn give_back<'a>(
        &'a self,
        key: &'a QuotaKey,
        amount: u64,
        at: SystemTime,
    ) -> BoxFuture<'a, Result<(), QuotaError>>;

    /// Every subject's use of `quota` within `window` before `now`, for
    /// `airlock quota show`; subjects with none are left out.
    fn usage<'a>(
        &'a self,
        quota: &'a str,
        window: Duration,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Vec<Usage>, QuotaError>>;
}

/// Quota use in this process's memory: for embedding one gateway, and tests.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::time::{Duration, SystemTime};
/// use airlock_policy::{MemoryQuotaStore, QuotaKey, QuotaStore, Take};
///
/// let store = MemoryQuotaStore::default();
/// let key = QuotaKey { quota: "reads".into(), subject: "agent".into() };
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
/// let take = |now| Take { key: &key, amount: 1, limit: 2, window: Duration::from_secs(60), now };
/// assert!(store.take(take(now)).await.unwrap().granted);
/// assert!(store.take(take(now)).await.unwrap().granted);
/// assert!(!store.take(take(now)).await.unwrap().granted, "a third within the minute");
/// assert!(store.take(take(now + Duration::from_secs(61))).await.unwrap().granted, "the window slid");
/// # });
/// ```
#[derive(Debug, Default)]
pub struct MemoryQuotaStore {
    uses: Mutex<HashMap<QuotaKey, VecDeque<(SystemTime, u64)>>>,
}

/// The uses within `window` before `now`, dropping older ones: (sum, oldest).
fn within(
    uses: &mut VecDeque<(SystemTime, u64)>,
    window: Duration,
    now: SystemTime,
) -> (u64, Option<SystemTime>) {
    let start = now.checked_sub(window).unwrap_or(SystemTime::UNIX_EPOCH);
    while uses.front().is_some_and(|(at, _)| *at <= start) {
        uses.pop_front();
    }
    let used = uses
        .iter()
        .fold(0u64, |sum, (_, amount)| sum.saturating_add(*amount));
    (used, uses.front().map(|(at, _)| *at))
}

impl QuotaStore for MemoryQuotaStore {
    fn take<'a>(&'a self, take: Take<'a>) -> BoxFuture<'a, Result<Taken, QuotaError>> {
        let mut all = self.uses.lock().unwrap_or_else(PoisonError::into_inner);
        let uses = all.entry(take.key.clone()).or_default();
        let (used, oldest) = within(uses, take.window, take.now);
        let granted = granted(used, take.amount, take.limit);
        let usage = if granted && take.amount > 0 {
            uses.push_back((take.now, take.amount));
            Usage {
                subject: take.key.subject.clone(),
                used: used.saturating_add(take.amount),
                oldest: oldest.or(Some(take.now)),
            }
        } else {
            Usage {
                subject: take.key.subject.clone(),
                used,
                oldest,
            }
        };
        Box::pin(std::future::ready(Ok(Taken { granted, usage })))
    }

    fn add<'a>(
        &'a self,
        key: &'a QuotaKey,
        amount: u64,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<(), QuotaError>> {
        let mut all = self.uses.lock().unwrap_or_else(PoisonError::into_inner);
        all.entry(key.clone()).or_default().push_back((now, amount));
        Box::pin(std::future::ready(Ok(())))
    }

    fn give_back<'a>(
        &'a self,
        key: &'a QuotaKey,
        amount: u64,
        at: SystemTime,
    ) -> BoxFuture<'a, Result<(), QuotaError>> {
        let mut all = self.uses.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(uses) = all.get_mut(key)
            && let Some(found) = uses.iter().position(|&used| used == (at, amount))
        {
            uses.remove(found);
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn usage<'a>(
        &'a self,
        quota: &'a str,
        window: Duration,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Vec<Usage>, QuotaError>> {
        let mut all = self.uses.lock().unwrap_or_else(PoisonError::into_inner);
        let mut found: Vec<Usage> = all
            .iter_mut()
            .filter(|(key, _)| key.quota == quota)
            .filter_map(|(key, uses)| {
                let (used, oldest) = within(uses, window, now);
                (used > 0).then(|| Usage {
                    subject: key.subject.clone(),
                    used,
                    oldest,
                })
            })
            .collect();
        found.sort_by(|a, b| a.subject.cmp(&b.subject));
        Box::pin(std::future::ready(Ok(found)))
    }
}

/// Whether `amount` more fits: within `limit`, and for 0, something is left.
pub fn granted(used: u64, amount: u64, limit: u64) -> bool {
    if amount == 0 {
        used < limit
    } else {
        used.saturating_add(amount) <= limit
    }
}
