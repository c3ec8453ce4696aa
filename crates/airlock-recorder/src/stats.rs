//! [`RecorderStats`]: what the recorder stored and lost, counted with atomics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// What the recorder has done since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecorderStats {
    /// Events the sink stored.
    pub recorded: u64,
    /// Events lost: not queued (queue full or closed, fail-open) or in a
    /// batch the sink failed to store.
    pub dropped: u64,
    /// [`AuditSink::append`](crate::AuditSink::append) calls that failed.
    pub failed_batches: u64,
    /// [`AuditSink::append`](crate::AuditSink::append) calls that stored
    /// their events (`recorded / batches` is the mean batch size).
    pub batches: u64,
}

/// The live counters behind [`RecorderStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    recorded: AtomicU64,
    dropped: AtomicU64,
    failed_batches: AtomicU64,
    batches: AtomicU64,
}

impl Counters {
    /// One batch of `events` stored.
    pub(crate) fn recorded(&self, events: usize) {
        self.recorded.fetch_add(events as u64, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn dropped(&self, events: usize) {
        self.dropped.fetch_add(events as u64, Ordering::Relaxed);
    }
    pub(crate) fn failed_batch(&self) {
        self.failed_batches.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn snapshot(&self) -> RecorderStats {
        RecorderStats {
            recorded: self.recorded.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            failed_batches: self.failed_batches.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
        }
    }
}

/// Lets a warning through at most once a second, from any thread.
#[derive(Debug)]
pub(crate) struct Throttle {
    origin: Instant,
    /// Milliseconds after `origin` of the last warning let through, plus one
    /// (0: never).
    last: AtomicU64,
}

impl Default for Throttle {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            last: AtomicU64::new(0),
        }
    }
}

impl Throttle {
    const INTERVAL_MS: u64 = 1000;

    /// Whether a warning may be logged now.
    pub(crate) fn ready(&self) -> bool {
        let now = u64::try_from(self.origin.elapsed().as_millis())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1);
        let last = self.last.load(Ordering::Relaxed);
        if last != 0 && now < last.saturating_add(Self::INTERVAL_MS) {
            return false;
        }
        self.last
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_lets_one_warning_through_per_second() {
        let throttle = Throttle::default();
        assert!(throttle.ready());
        assert!(!throttle.ready());
        assert!(!throttle.ready());
    }

    #[test]
    fn counters_add_up() {
        let counters = Counters::default();
        counters.recorded(3);
        counters.recorded(2);
        counters.dropped(2);
        counters.failed_batch();
        assert_eq!(
            counters.snapshot(),
            RecorderStats {
                recorded: 5,
                dropped: 2,
                failed_batches: 1,
                batches: 2
            }
        );
    }
}
