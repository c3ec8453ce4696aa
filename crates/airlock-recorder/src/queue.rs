//! [`Queue`]: the bounded way from requests to the writer task, and the
//! health every request checks before it is served.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use airlock_core::BoxFuture;
use tokio::sync::{mpsc, oneshot};

use crate::stats::{Counters, Throttle};
use crate::{AuditEvent, RecorderConfig, RecorderError};

/// Tells a waiting response whether its event was stored.
pub(crate) type Ack = oneshot::Sender<Result<(), RecorderError>>;

/// One event on its way to the writer, with what the writer needs to place
/// it in a session.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The event, its `session_id` still empty.
    pub(crate) event: AuditEvent,
    /// The verified principal's id.
    pub(crate) principal: Option<String>,
    /// The `x-airlock-session` header as sent (checked by the writer).
    pub(crate) session_header: Option<String>,
    /// When the request arrived.
    pub(crate) arrived: Instant,
    /// Whoever waits for the event to be stored (fail-closed).
    pub(crate) ack: Option<Ack>,
}

/// What the writer reports to everyone else. The writer holds this, not the
/// [`Queue`], so it stops once the last sender is gone.
#[derive(Debug)]
pub(crate) struct WriterStatus {
    pub(crate) counters: Counters,
    /// Whether the sink stored the last batch (or answered the last probe).
    sink_ok: AtomicBool,
}

impl WriterStatus {
    pub(crate) fn set_sink_ok(&self, ok: bool) {
        self.sink_ok.store(ok, Ordering::Release);
    }
}

/// Shared by the recorder and its layers: the sending side.
#[derive(Debug)]
pub(crate) struct Queue {
    sender: mpsc::Sender<Entry>,
    pub(crate) config: RecorderConfig,
    pub(crate) status: Arc<WriterStatus>,
    drop_warning: Throttle,
    refusal_warning: Throttle,
}

impl Queue {
    pub(crate) fn new(config: RecorderConfig) -> (Arc<Self>, mpsc::Receiver<Entry>) {
        let (sender, receiver) = mpsc::channel(config.queue_capacity.max(1));
        let queue = Self {
            sender,
            config,
            status: Arc::new(WriterStatus {
                counters: Counters::default(),
                sink_ok: AtomicBool::new(true),
            }),
            drop_warning: Throttle::default(),
            refusal_warning: Throttle::default(),
        };
        (Arc::new(queue), receiver)
    }

    /// Whether an event could be taken and stored now.
    pub(crate) fn health(&self) -> Result<(), RecorderError> {
        if self.sender.is_closed() {
            Err(RecorderError::ShutDown)
        } else if !self.status.sink_ok.load(Ordering::Acquire) {
            Err(RecorderError::SinkFailing)
        } else if self.sender.capacity() == 0 {
            Err(RecorderError::QueueFull)
        } else {
            Ok(())
        }
    }

    /// Events waiting for the writer.
    pub(crate) fn queued(&self) -> usize {
        self.capacity() - self.sender.capacity()
    }

    /// How many events the queue holds at most.
    pub(crate) fn capacity(&self) -> usize {
        self.sender.max_capacity()
    }

    /// Whether a new request may be served: always when fail-open, only
    /// while [`health`](Self::health) is good when fail-closed.
    pub(crate) fn admits(&self) -> Result<(), RecorderError> {
        if self.config.fail_closed {
            self.health()
        } else {
            Ok(())
        }
    }

    /// [`admits`](Self::admits), warning (at most once a second) when it
    /// refuses.
    pub(crate) fn admit(&self) -> Result<(), RecorderError> {
        let health = self.admits();
        if let Err(problem) = &health
            && self.refusal_warning.ready()
        {
            tracing::warn!(%problem, "audit is fail-closed: refusing requests with 503");
        }
        health
    }

    /// Queues `entry` and resolves once the writer has stored it, or failed
    /// to. The event is queued even if the future is dropped (the client
    /// went away while waiting): it still belongs in the trail.
    pub(crate) fn store(
        self: &Arc<Self>,
        mut entry: Entry,
    ) -> BoxFuture<'static, Result<(), RecorderError>> {
        let (ack, stored) = oneshot::channel();
        entry.ack = Some(ack);
        let queued = self.submit(entry);
        Box::pin(async move {
            queued?;
            // Unanswered: it never reached a writer (the recorder shut down).
            stored.await.unwrap_or(Err(RecorderError::ShutDown))
        })
    }

    /// Queues `entry` without waiting for it to be stored. A full queue
    /// drops it when fail-open; when fail-closed, a task waits for room.
    /// The error says why it was dropped at once.
    pub(crate) fn submit(self: &Arc<Self>, entry: Entry) -> Result<(), RecorderError> {
        let problem = match self.sender.try_send(entry) {
            Ok(()) => return Ok(()),
            Err(mpsc::error::TrySendError::Full(entry)) if self.config.fail_closed => {
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    let queue = Arc::clone(self);
                    runtime.spawn(async move {
                        if queue.sender.send(entry).await.is_err() {
                            queue.lost(&RecorderError::ShutDown);
                        }
                    });
                    return Ok(());
                }
                RecorderError::QueueFull
            }
            Err(mpsc::error::TrySendError::Full(_)) => RecorderError::QueueFull,
            Err(mpsc::error::TrySendError::Closed(_)) => RecorderError::ShutDown,
        };
        self.lost(&problem);
        Err(problem)
    }

    /// Counts an event that never reached the writer, and warns (at most
    /// once a second).
    fn lost(&self, why: &RecorderError) {
        self.status.counters.dropped(1);
        if self.drop_warning.ready() {
            tracing::warn!(
                reason = %why,
                dropped_total = self.status.counters.snapshot().dropped,
                "audit event dropped"
            );
        }
    }
}
