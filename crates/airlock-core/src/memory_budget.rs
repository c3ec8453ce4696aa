//! [`MemoryBudget`]: how much memory the answers Airlock reads whole (to
//! rewrite their links, to mask them) may take at once, shared by every
//! request and every layer given the same budget.
//!
//! An answer of known length (`Content-Length`, or already in memory) waits
//! for its whole share before a byte is read: each waiter takes all it
//! needs at once or nothing, so waiting never deadlocks, and the request
//! timeout bounds the wait. An answer of unknown length (chunked) takes its
//! share frame by frame and cannot wait (two such answers could each hold
//! half and wait for the other): when the budget is spent it is refused,
//! `503 AirlockMemoryBusy`, retryable. The share is held by the body
//! ([`AirlockBody::hold`](crate::AirlockBody::hold)) until it has been sent,
//! and handed on by a layer that rewrites a body already in memory.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use airlock_core::{MemoryBudget, full};
//!
//! let budget = MemoryBudget::new(64 * 1024);
//! let share = budget.wait_for(48 * 1024).await;
//! let answer = full(vec![b'x'; 48 * 1024]).hold(share);
//! let mut chunked = MemoryBudget::empty();
//! assert!(!budget.grow(&mut chunked, 32 * 1024), "16 KiB left: refused, not waited for");
//! drop(answer);
//! assert!(budget.grow(&mut chunked, 32 * 1024));
//! # })
//! ```

use std::sync::Arc;

use bytes::Bytes;
use http::HeaderMap;
use http_body::Body;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::body::collect_frames;
use crate::{BodyError, BoxError, collect_limited, declared_length};

/// Shares are counted in KiB, so a budget of terabytes fits the
/// semaphore's `u32` acquisitions.
const UNIT: u64 = 1024;

/// A bound on the bytes held in memory at once; clones share it.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    semaphore: Arc<Semaphore>,
    /// In units.
    units: u64,
    /// In bytes, as configured.
    bytes: u64,
}

/// A share of a [`MemoryBudget`], returned when dropped.
#[derive(Debug)]
pub struct Share {
    permit: Option<OwnedSemaphorePermit>,
    /// Bytes this share accounts for.
    bytes: u64,
}

impl MemoryBudget {
    /// A budget of `bytes`.
    pub fn new(bytes: u64) -> Self {
        let units = bytes.div_ceil(UNIT).clamp(1, Semaphore::MAX_PERMITS as u64);
        Self {
            semaphore: Arc::new(Semaphore::new(usize::try_from(units).unwrap_or(usize::MAX))),
            units,
            bytes,
        }
    }

    /// The budget in bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// A share of `bytes` (at most the whole budget), waiting for it.
    pub async fn wait_for(&self, bytes: u64) -> Share {
        let units = units(bytes).min(self.units);
        let permit = Arc::clone(&self.semaphore)
            .acquire_many_owned(u32::try_from(units).unwrap_or(u32::MAX))
            .await
            .ok();
        Share { permit, bytes }
    }

    /// An empty share, to grow with [`grow`](Self::grow).
    pub fn empty() -> Share {
        Share {
            permit: None,
            bytes: 0,
        }
    }

    /// Grows `share` to account for `bytes` in all, without waiting; false
    /// when the budget has no room left.
    pub fn grow(&self, share: &mut Share, bytes: u64) -> bool {
        let held = units(share.bytes);
        let wanted = units(bytes);
        if wanted > held {
            let Ok(more) = u32::try_from(wanted - held) else {
                return false;
            };
            let Ok(permit) = Arc::clone(&self.semaphore).try_acquire_many_owned(more) else {
                return false;
            };
            match &mut share.permit {
                Some(held) => held.merge(permit),
                None => share.permit = Some(permit),
            }
        }
        share.bytes = share.bytes.max(bytes);
        true
    }

    /// Bytes not in any share now.
    #[cfg(test)]
    pub(crate) fn available(&self) -> u64 {
        self.semaphore.available_permits() as u64 * UNIT
    }
}

/// Why [`MemoryBudget::collect`] read no whole body.
#[derive(Debug)]
pub enum Uncollected {
    /// Too large, or unreadable.
    Body(BodyError),
    /// The budget has no room left for it.
    Busy,
}

impl MemoryBudget {
    /// Reads `body` whole, within `limit` and within this budget, and
    /// returns it with the share that accounts for it (hold it with the body
    /// made from the bytes: [`AirlockBody::hold`](crate::AirlockBody::hold)).
    /// A known length (declared, or the body's exact size) waits for its
    /// whole share first (one over `limit` is refused unread and needs
    /// none); an unknown one grows its share frame by frame.
    ///
    /// # Errors
    ///
    /// [`Uncollected::Body`] when it is over `limit` or cannot be read,
    /// [`Uncollected::Busy`] when an unknown length finds no room.
    pub async fn collect<B>(
        &self,
        body: B,
        headers: &HeaderMap,
        limit: u64,
    ) -> Result<(Bytes, Share), Uncollected>
    where
        B: Body<Data = Bytes> + 'static,
        B::Error: Into<BoxError>,
    {
        match declared_length(headers).or_else(|| body.size_hint().exact()) {
            Some(length) => {
                let share = if length <= limit {
                    self.wait_for(length).await
                } else {
                    Self::empty()
                };
                let bytes = collect_limited(body, headers, limit)
                    .await
                    .map_err(Uncollected::Body)?;
                Ok((bytes, share))
            }
            None => {
                let mut share = Self::empty();
                let bytes = collect_frames(body, 0, limit, |total| self.grow(&mut share, total))
                    .await
                    .map_err(Uncollected::Body)?
                    .ok_or(Uncollected::Busy)?;
                Ok((bytes, share))
            }
        }
    }
}

fn units(bytes: u64) -> u64 {
    bytes.div_ceil(UNIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_known_length_waits_for_its_whole_share() {
        let budget = MemoryBudget::new(10 * UNIT);
        let first = budget.wait_for(8 * UNIT).await;
        assert_eq!(budget.available(), 2 * UNIT);
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.wait_for(5 * UNIT).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "5 KiB do not fit beside 8 of 10");
        drop(first);
        let second = waiting.await.unwrap();
        assert_eq!(budget.available(), 5 * UNIT);
        drop(second);
        // More than the whole budget takes the whole budget, never forever.
        let all = budget.wait_for(100 * UNIT).await;
        assert_eq!(budget.available(), 0);
        drop(all);
        assert_eq!(budget.available(), 10 * UNIT);
    }

    #[tokio::test]
    async fn an_unknown_length_grows_without_waiting_and_is_refused_past_the_budget() {
        let budget = MemoryBudget::new(4 * UNIT);
        let mut share = MemoryBudget::empty();
        assert!(budget.grow(&mut share, 100));
        assert!(budget.grow(&mut share, UNIT)); // still within the first KiB
        assert_eq!(budget.available(), 3 * UNIT);
        assert!(budget.grow(&mut share, 4 * UNIT));
        assert_eq!(budget.available(), 0);
        let mut other = MemoryBudget::empty();
        assert!(
            !budget.grow(&mut other, 1),
            "nothing left: refused, not waited for"
        );
        drop(share);
        assert!(budget.grow(&mut other, 1));
    }
}
