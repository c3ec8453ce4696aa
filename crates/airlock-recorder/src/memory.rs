//! [`MemorySink`]: an [`AuditSink`] in memory, for tests and examples.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use airlock_core::BoxFuture;

use crate::chain::GENESIS;
use crate::{AuditSink, ChainHead, ChainedEvent, SinkError};

/// Keeps events in a `Vec`. It can be told to fail ([`set_failing`](Self::set_failing))
/// and to be slow ([`set_delay`](Self::set_delay)), and, like a real store,
/// refuses a batch that does not continue its chain.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use airlock_recorder::{AuditSink, MemorySink};
///
/// let sink = MemorySink::new();
/// sink.set_failing(true);
/// assert!(sink.append(&[]).await.is_err());
/// sink.set_failing(false);
/// assert!(sink.append(&[]).await.is_ok());
/// assert_eq!(sink.head().await.unwrap(), None);
/// # });
/// ```
#[derive(Debug, Default)]
pub struct MemorySink {
    events: Mutex<Vec<ChainedEvent>>,
    failing: AtomicBool,
    delay: Mutex<Duration>,
}

impl MemorySink {
    /// An empty sink that works and is fast.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every call fail (`true`) or work again (`false`).
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// Makes every append take `delay` (zero: none).
    pub fn set_delay(&self, delay: Duration) {
        *lock(&self.delay) = delay;
    }

    /// A copy of the events stored, in chain order.
    pub fn events(&self) -> Vec<ChainedEvent> {
        lock(&self.events).clone()
    }

    /// How many events are stored.
    pub fn len(&self) -> usize {
        lock(&self.events).len()
    }

    /// Whether no event is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn check_working(&self) -> Result<(), SinkError> {
        if self.failing.load(Ordering::SeqCst) {
            Err(SinkError("the memory sink was told to fail".into()))
        } else {
            Ok(())
        }
    }
}

impl AuditSink for MemorySink {
    fn append<'a>(&'a self, events: &'a [ChainedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let delay = *lock(&self.delay);
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            self.check_working()?;
            let mut stored = lock(&self.events);
            let (seq, hash) = stored
                .last()
                .map_or((0, GENESIS), |last| (last.seq, last.hash.as_str()));
            if let Some(first) = events.first()
                && (first.seq != seq + 1 || first.prev_hash != hash)
            {
                return Err(SinkError(format!(
                    "event {} does not continue the stored chain, which ends at {seq}",
                    first.seq
                )));
            }
            stored.extend_from_slice(events);
            Ok(())
        })
    }

    fn head(&self) -> BoxFuture<'_, Result<Option<ChainHead>, SinkError>> {
        Box::pin(async move {
            self.check_working()?;
            Ok(lock(&self.events).last().map(|last| ChainHead {
                seq: last.seq,
                hash: last.hash.clone(),
            }))
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
