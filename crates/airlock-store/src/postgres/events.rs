//! Other replicas' approval events, for this replica's notifiers: the
//! approval page served here shows an approval asked for, decided or
//! expired through another replica as it happens.

use std::sync::Arc;

use airlock_approval::{ApprovalEvent, ApprovalState, ApprovalStore as _, Notifier};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use super::PostgresStore;

/// Forwards other replicas' events while it lives; see
/// [`PostgresStore::forward_events`].
#[derive(Debug)]
#[must_use = "forwarding stops when this is dropped"]
pub struct EventForwarding {
    task: JoinHandle<()>,
}

impl Drop for EventForwarding {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PostgresStore {
    /// Tells `notifier` of the approvals other replicas create
    /// ([`ApprovalEvent::New`]), decide ([`ApprovalEvent::Decided`]) and
    /// expire ([`ApprovalEvent::Expired`]), read from the database when
    /// their notification arrives. Give it what shows approvals live (the
    /// approval page's feed), not what must hear of each approval once
    /// (webhooks, metrics): the replica where it happened tells those.
    pub fn forward_events(&self, notifier: Arc<dyn Notifier>) -> EventForwarding {
        let mut changes = self.changes.subscribe();
        let store = self.clone();
        let task = tokio::spawn(async move {
            loop {
                let (id, state) = match changes.recv().await {
                    Ok(change) => change,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(
                            missed,
                            "fell behind other replicas' approval changes; a reload of the approval page shows them"
                        );
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                };
                let event: fn(_) -> _ = match state {
                    ApprovalState::Pending => ApprovalEvent::New,
                    ApprovalState::Approved | ApprovalState::Denied => ApprovalEvent::Decided,
                    ApprovalState::Expired => ApprovalEvent::Expired,
                    _ => continue,
                };
                match store.get(id).await {
                    Ok(Some(request)) => notifier.notify(event(request)),
                    Ok(None) => {}
                    Err(error) => {
                        tracing::debug!(%error, approval_id = %id, "cannot read another replica's approval");
                    }
                }
            }
        });
        EventForwarding { task }
    }
}
