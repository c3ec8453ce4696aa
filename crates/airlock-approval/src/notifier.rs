//! [`Notifier`]: telling approvers (and anyone else) about approvals.

use tokio::sync::watch;

use crate::ApprovalRequest;

/// Something that happened to an approval request.
#[derive(Clone, Debug)]
pub enum ApprovalEvent {
    /// A request now waits for approvers.
    New(ApprovalRequest),
    /// Approvers approved or denied it.
    Decided(ApprovalRequest),
    /// Nobody decided in time.
    Expired(ApprovalRequest),
}

impl ApprovalEvent {
    /// The request the event is about.
    pub fn request(&self) -> &ApprovalRequest {
        match self {
            ApprovalEvent::New(r) | ApprovalEvent::Decided(r) | ApprovalEvent::Expired(r) => r,
        }
    }
}

/// Tells people about approvals (webhooks, chat, the web page).
///
/// Each event is announced once, by whoever caused it: the [`ApprovalLayer`](crate::ApprovalLayer)
/// announces new approvals, the [`ApprovalApi`](crate::ApprovalApi) decisions, and
/// whoever calls [`ApprovalStore::expire_due`](crate::ApprovalStore::expire_due)
/// (the gateway's sweeper, or a poll of an expired operation) expirations.
///
/// Called on the request path: implementations must not block; hand slow
/// work to a task.
pub trait Notifier: Send + Sync + 'static {
    /// Delivers one event.
    fn notify(&self, event: ApprovalEvent);
}

/// Logs every event with `tracing`: ids, names and states, never bodies or justifications.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogNotifier;

impl Notifier for LogNotifier {
    fn notify(&self, event: ApprovalEvent) {
        let kind = match &event {
            ApprovalEvent::New(_) => "new",
            ApprovalEvent::Decided(_) => "decided",
            ApprovalEvent::Expired(_) => "expired",
        };
        let r = event.request();
        tracing::info!(
            event = kind,
            approval_id = %r.id,
            state = %r.state,
            requester = %r.requester.id,
            operation = %r.operation.name,
            scope = %r.operation.scope,
            rule = %r.rule,
            "approval event"
        );
    }
}

/// Tells every one of several notifiers, in order.
///
/// ```
/// use std::sync::Arc;
/// use airlock_approval::{LogNotifier, Notifier, Notifiers, RecordingNotifier};
///
/// let recording = Arc::new(RecordingNotifier::new());
/// let all = Notifiers::new(vec![Arc::new(LogNotifier), recording.clone()]);
/// # drop(all);
/// ```
#[derive(Clone, Default)]
pub struct Notifiers(Vec<std::sync::Arc<dyn Notifier>>);

impl Notifiers {
    /// All of `notifiers`.
    pub fn new(notifiers: Vec<std::sync::Arc<dyn Notifier>>) -> Self {
        Self(notifiers)
    }
}

impl std::fmt::Debug for Notifiers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifiers")
            .field("count", &self.0.len())
            .finish()
    }
}

impl Notifier for Notifiers {
    fn notify(&self, event: ApprovalEvent) {
        for notifier in &self.0 {
            notifier.notify(event.clone());
        }
    }
}

/// Keeps every event, for tests: wait for the ones you expect with
/// [`wait_for`](Self::wait_for) instead of sleeping.
#[derive(Debug)]
pub struct RecordingNotifier {
    events: watch::Sender<Vec<ApprovalEvent>>,
}

impl Default for RecordingNotifier {
    fn default() -> Self {
        Self {
            events: watch::Sender::new(Vec::new()),
        }
    }
}

impl RecordingNotifier {
    /// No events yet.
    pub fn new() -> Self {
        Self::default()
    }
    /// Every event so far, in order.
    pub fn events(&self) -> Vec<ApprovalEvent> {
        self.events.borrow().clone()
    }
    /// Waits until `done` holds for the events, up to `timeout`; returns
    /// the events then, or `None` on timeout.
    pub async fn wait_for(
        &self,
        timeout: std::time::Duration,
        mut done: impl FnMut(&[ApprovalEvent]) -> bool,
    ) -> Option<Vec<ApprovalEvent>> {
        let mut rx = self.events.subscribe();
        let waited = tokio::time::timeout(timeout, rx.wait_for(|events| done(events))).await;
        match waited {
            Ok(Ok(events)) => Some(events.clone()),
            _ => None,
        }
    }
}

impl Notifier for RecordingNotifier {
    fn notify(&self, event: ApprovalEvent) {
        self.events.send_modify(|events| events.push(event));
    }
}
