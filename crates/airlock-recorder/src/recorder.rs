//! [`Recorder`]: the writer task, its queue, and the layers that feed it.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::queue::Queue;
use crate::sessions::Sessions;
use crate::writer::Writer;
use crate::{
    AuditSink, RecorderConfig, RecorderError, RecorderLayer, RecorderMonitor, RecorderStats,
    SinkError,
};

/// Owns the one writer task that places events in sessions, chains them and
/// appends them to an [`AuditSink`] in batches, fed through a bounded queue
/// by its [`RecorderLayer`]s.
///
/// ```
/// use std::sync::Arc;
/// use airlock_recorder::{MemorySink, Recorder, RecorderConfig, RecorderStats};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let sink = Arc::new(MemorySink::new());
/// let recorder = Recorder::start(sink, RecorderConfig::default()).await.unwrap();
/// let layer = recorder.layer(); // for the gateway's ServiceBuilder
/// # drop(layer);
/// assert!(recorder.health().is_ok());
/// // On the way out, after the server stopped taking requests:
/// let stats = recorder.shutdown().await;
/// assert_eq!(stats, RecorderStats::default());
/// # });
/// ```
pub struct Recorder {
    queue: Arc<Queue>,
    shutdown: Arc<Notify>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("config", &self.queue.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Reads the sink's [`head`](AuditSink::head), so the chain continues
    /// where it ended, and starts the writer task on the current tokio
    /// runtime.
    ///
    /// # Errors
    ///
    /// The sink's error if it cannot say where its chain ends (or when
    /// called outside a tokio runtime).
    pub async fn start(
        sink: Arc<dyn AuditSink>,
        config: RecorderConfig,
    ) -> Result<Self, SinkError> {
        let head = sink.head().await?.unwrap_or_default();
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| SinkError("the recorder must be started inside a tokio runtime".into()))?;
        let (queue, receiver) = Queue::new(config);
        let shutdown = Arc::new(Notify::new());
        tracing::info!(head = head.seq, "audit recorder started");
        let writer = Writer {
            receiver,
            sink,
            status: Arc::clone(&queue.status),
            head,
            sessions: Sessions::new(queue.config.session_idle),
            max_batch: queue.config.max_batch.max(1),
            shutdown: Arc::clone(&shutdown),
        };
        let writer = runtime.spawn(writer.run());
        Ok(Self {
            queue,
            shutdown,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// The layer that records requests through this recorder.
    pub fn layer(&self) -> RecorderLayer {
        RecorderLayer {
            queue: Arc::clone(&self.queue),
        }
    }

    /// A view of this recorder's counters and health that can outlive a
    /// borrow of it (for `/metrics` and readiness handlers).
    pub fn monitor(&self) -> RecorderMonitor {
        RecorderMonitor {
            queue: Arc::clone(&self.queue),
        }
    }

    /// What has been stored and lost so far.
    pub fn stats(&self) -> RecorderStats {
        self.monitor().stats()
    }

    /// Whether an event could be taken and stored now: the problem a
    /// fail-closed layer would refuse requests with. See
    /// [`RecorderMonitor::admits`] for readiness checks.
    ///
    /// # Errors
    ///
    /// The sink failed its last batch, the queue is full, or the recorder
    /// has shut down.
    pub fn health(&self) -> Result<(), RecorderError> {
        self.queue.health()
    }

    /// Closes the queue (from then on, fail-closed layers refuse requests
    /// and fail-open ones drop their events), lets the writer store
    /// everything already queued, and returns the final stats. Call it after
    /// the server has drained its requests. Calling it again only returns
    /// the stats.
    pub async fn shutdown(&self) -> RecorderStats {
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(writer) = writer {
            self.shutdown.notify_one();
            if writer.await.is_err() {
                tracing::error!("the audit writer task failed");
            }
            tracing::info!(stats = ?self.stats(), "audit recorder stopped");
        }
        self.stats()
    }
}
