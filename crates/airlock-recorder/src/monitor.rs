//! [`RecorderMonitor`]: a recorder's counters and health, for metrics and
//! readiness endpoints.

use std::sync::Arc;

use crate::queue::Queue;
use crate::{RecorderError, RecorderStats};

/// A cheap, cloneable view of one [`Recorder`](crate::Recorder): what it
/// stored and lost, how full its queue is, and whether it would admit a
/// request now. It keeps no writer alive and never changes what the
/// recorder does.
///
/// ```
/// use std::sync::Arc;
/// use airlock_recorder::{MemorySink, Recorder, RecorderConfig};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let recorder = Recorder::start(Arc::new(MemorySink::new()), RecorderConfig::default())
///     .await
///     .unwrap();
/// let monitor = recorder.monitor(); // move it into a /metrics handler
/// assert_eq!(monitor.queued(), 0);
/// assert_eq!(monitor.capacity(), 8192);
/// assert!(monitor.admits().is_ok());
/// recorder.shutdown().await;
/// // Fail-closed, a recorder that has shut down refuses requests.
/// assert!(monitor.admits().is_err());
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct RecorderMonitor {
    pub(crate) queue: Arc<Queue>,
}

impl RecorderMonitor {
    /// What has been stored and lost so far.
    pub fn stats(&self) -> RecorderStats {
        self.queue.status.counters.snapshot()
    }

    /// Whether an event could be taken and stored now.
    ///
    /// # Errors
    ///
    /// The sink failed its last batch, the queue is full, or the recorder
    /// has shut down.
    pub fn health(&self) -> Result<(), RecorderError> {
        self.queue.health()
    }

    /// Whether the recorder's layers serve a new request now: always when
    /// fail-open, only while [`health`](Self::health) is good when
    /// fail-closed. This is what a readiness probe should report.
    ///
    /// # Errors
    ///
    /// Fail-closed only: the problem requests are refused with.
    pub fn admits(&self) -> Result<(), RecorderError> {
        self.queue.admits()
    }

    /// Events waiting for the writer.
    pub fn queued(&self) -> usize {
        self.queue.queued()
    }

    /// How many events the queue holds at most.
    pub fn capacity(&self) -> usize {
        self.queue.capacity()
    }

    /// Whether the recorder refuses requests it cannot record.
    pub fn fail_closed(&self) -> bool {
        self.queue.config.fail_closed
    }
}
