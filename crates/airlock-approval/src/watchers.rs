//! [`StateWatchers`]: in-process channels that tell waiters when an
//! approval's state changes.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

use crate::{ApprovalId, ApprovalState};

/// One watch channel per approval somebody waits on. Stores call
/// [`publish`](Self::publish) after every committed change; channels nobody
/// listens to any more are dropped then.
///
/// ```
/// use airlock_approval::{ApprovalId, ApprovalState, StateWatchers};
///
/// let watchers = StateWatchers::default();
/// let id = ApprovalId::new();
/// let rx = watchers.subscribe(id, ApprovalState::Pending);
/// watchers.publish(id, ApprovalState::Approved);
/// assert_eq!(*rx.borrow(), ApprovalState::Approved);
/// ```
#[derive(Debug, Default)]
pub struct StateWatchers {
    channels: Mutex<HashMap<ApprovalId, watch::Sender<ApprovalState>>>,
}

impl StateWatchers {
    fn lock(&self) -> MutexGuard<'_, HashMap<ApprovalId, watch::Sender<ApprovalState>>> {
        self.channels.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A receiver for `id`'s state, which is `current` now.
    pub fn subscribe(
        &self,
        id: ApprovalId,
        current: ApprovalState,
    ) -> watch::Receiver<ApprovalState> {
        let mut channels = self.lock();
        let sender = channels
            .entry(id)
            .or_insert_with(|| watch::Sender::new(current));
        sender.send_if_modified(|state| {
            let changed = *state != current;
            *state = current;
            changed
        });
        sender.subscribe()
    }

    /// The approvals somebody waits on, each with the state its waiters
    /// last saw: what a store polls while it cannot be told of changes
    /// made elsewhere.
    ///
    /// ```
    /// use airlock_approval::{ApprovalId, ApprovalState, StateWatchers};
    ///
    /// let watchers = StateWatchers::default();
    /// let id = ApprovalId::new();
    /// let _rx = watchers.subscribe(id, ApprovalState::Pending);
    /// assert_eq!(watchers.watched(), vec![(id, ApprovalState::Pending)]);
    /// ```
    pub fn watched(&self) -> Vec<(ApprovalId, ApprovalState)> {
        self.lock()
            .iter()
            .filter(|(_, sender)| sender.receiver_count() > 0)
            .map(|(id, sender)| (*id, *sender.borrow()))
            .collect()
    }

    /// Tells `id`'s waiters its state is now `state`.
    pub fn publish(&self, id: ApprovalId, state: ApprovalState) {
        let mut channels = self.lock();
        if let Some(sender) = channels.get(&id) {
            sender.send_replace(state);
            if sender.receiver_count() == 0 || state.is_final() {
                channels.remove(&id);
            }
        }
    }
}
