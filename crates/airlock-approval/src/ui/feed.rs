//! [`ApprovalFeed`]: approval events for the page's live queue.

use tokio::sync::{broadcast, watch};

use crate::{ApprovalEvent, Notifier};

/// How many events a slow page may fall behind before it is told to reload.
const CAPACITY: usize = 256;

/// A [`Notifier`] that hands every event to the open approval pages (their
/// server-sent event streams). Add it to the gateway's notifiers; each page
/// subscribes. A page that falls more than 256 events behind is told to
/// reload rather than shown a queue with holes.
///
/// Events are this process's notifiers'. With several replicas on
/// PostgreSQL the gateway also forwards the other replicas' events into it
/// (`airlock_store::PostgresStore::forward_events`), so each page shows
/// every replica's approvals live.
///
/// [`close`](Self::close) ends every page's stream (a shutting-down server
/// would otherwise wait for them: they never end on their own).
#[derive(Clone, Debug)]
pub struct ApprovalFeed {
    sender: broadcast::Sender<ApprovalEvent>,
    closed: watch::Sender<bool>,
}

impl Default for ApprovalFeed {
    fn default() -> Self {
        Self::new()
    }
}

impl ApprovalFeed {
    /// A feed nobody listens to yet.
    pub fn new() -> Self {
        Self {
            sender: broadcast::channel(CAPACITY).0,
            closed: watch::Sender::new(false),
        }
    }

    /// Ends the open pages' streams, now and for pages that connect later.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Resolves once the feed is closed.
    pub(crate) fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut closed = self.closed.subscribe();
        async move {
            // An error means the feed is gone: closed as well.
            let _ = closed.wait_for(|closed| *closed).await;
        }
    }

    /// The events from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<ApprovalEvent> {
        self.sender.subscribe()
    }
}

impl Notifier for ApprovalFeed {
    fn notify(&self, event: ApprovalEvent) {
        // No open page: nobody to tell.
        let _ = self.sender.send(event);
    }
}
