//! [`ApprovalMetrics`]: approvals asked for and decided, and requests held.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::{ApprovalEvent, ApprovalState, Notifier};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabel {
    event: &'static str,
    kind: &'static str,
}

/// Counts approvals and the requests waiting for them. It is a
/// [`Notifier`]: add it to the notifiers of the [`ApprovalLayer`](crate::ApprovalLayer)
/// and the [`ApprovalApi`](crate::ApprovalApi) to count each approval
/// `requested`, `approved`, `denied` and `expired`, by its
/// [`kind`](crate::ApprovalRequest::kind) (each event is announced
/// once, by the replica that caused it, so a sum over replicas counts each
/// approval once); give it to [`ApprovalLayer::metrics`](crate::ApprovalLayer::metrics)
/// to count the requests held open waiting for a decision; and to
/// [`ExpirySweeper::spawn_counting`](crate::ExpirySweeper::spawn_counting)
/// to report how many approvals wait in the store.
///
/// ```
/// use std::sync::Arc;
/// use airlock_approval::{ApprovalLayer, ApprovalMetrics, LogNotifier, MemoryApprovalStore, Notifier, Notifiers};
/// use prometheus_client::registry::Registry;
///
/// let metrics = ApprovalMetrics::new();
/// let mut registry = Registry::default();
/// metrics.register(&mut registry);
/// let notifier = Arc::new(Notifiers::new(vec![Arc::new(LogNotifier), metrics.clone()]));
/// let layer = ApprovalLayer::new(Arc::new(MemoryApprovalStore::new()), notifier).metrics(metrics);
/// # drop(layer);
/// ```
#[derive(Debug, Default)]
pub struct ApprovalMetrics {
    events: Family<EventLabel, Counter>,
    held: Gauge,
    pending: Gauge,
}

impl ApprovalMetrics {
    /// All zero.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Registers `airlock_approvals_total{event, kind}`, `airlock_approvals_held`
    /// and `airlock_approvals_pending`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "airlock_approvals",
            "Approvals requested, approved, denied and expired, by kind: request, reveal, answer, quota (counted by the replica that caused the event)",
            self.events.clone(),
        );
        registry.register(
            "airlock_approvals_held",
            "Requests this replica holds open, waiting for an approver's decision",
            self.held.clone(),
        );
        registry.register(
            "airlock_approvals_pending",
            "Approvals in the store waiting for a decision, all replicas' (as of the last expiry sweep)",
            self.pending.clone(),
        );
    }

    /// How many approvals wait for a decision (see [`ExpirySweeper::spawn_counting`](crate::ExpirySweeper::spawn_counting)).
    pub(crate) fn set_pending(&self, count: usize) {
        self.pending.set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// One more request held until the returned guard is dropped.
    pub(crate) fn hold(&self) -> Held {
        self.held.inc();
        Held(self.held.clone())
    }
}

/// Counts a held request until dropped (answered, or the client gave up).
pub(crate) struct Held(Gauge);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Notifier for ApprovalMetrics {
    fn notify(&self, event: ApprovalEvent) {
        let kind = event.request().kind();
        let event = match &event {
            ApprovalEvent::New(_) => "requested",
            ApprovalEvent::Decided(r) if r.state == ApprovalState::Approved => "approved",
            ApprovalEvent::Decided(_) => "denied",
            ApprovalEvent::Expired(_) => "expired",
        };
        self.events.get_or_create(&EventLabel { event, kind }).inc();
    }
}
