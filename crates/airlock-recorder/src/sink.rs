//! [`AuditSink`]: where audit events go.

use airlock_core::BoxFuture;

use crate::chain::{ChainHead, ChainedEvent};

/// Why a sink could not take events.
#[derive(Debug, thiserror::Error)]
#[error("audit sink failed: {0}")]
pub struct SinkError(pub String);

/// Where audit events go: a database, a file, a SIEM.
///
/// The recorder calls [`append`](Self::append) from one writer task, off the
/// request path, with batches in chain order; a sink never reorders them.
///
/// ```
/// use airlock_core::BoxFuture;
/// use airlock_recorder::{AuditSink, ChainHead, ChainedEvent, SinkError};
///
/// /// JSON lines on standard output.
/// struct Stdout;
///
/// impl AuditSink for Stdout {
///     fn append<'a>(&'a self, events: &'a [ChainedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
///         for event in events {
///             println!("{}", serde_json::to_string(event).unwrap_or_default());
///         }
///         Box::pin(std::future::ready(Ok(())))
///     }
///     fn head(&self) -> BoxFuture<'_, Result<Option<ChainHead>, SinkError>> {
///         // Keeps nothing to continue from: each run starts a new chain.
///         Box::pin(std::future::ready(Ok(None)))
///     }
/// }
/// ```
pub trait AuditSink: Send + Sync + 'static {
    /// Stores `events` (consecutive links of the chain), all or none.
    fn append<'a>(&'a self, events: &'a [ChainedEvent]) -> BoxFuture<'a, Result<(), SinkError>>;

    /// The last link stored, so the chain continues across restarts; `None`
    /// if the sink keeps no chain (the recorder starts from genesis).
    fn head(&self) -> BoxFuture<'_, Result<Option<ChainHead>, SinkError>>;

    /// Whether the sink can take events again after an append failed: the
    /// recorder asks (then reads [`head`](Self::head)) before it admits
    /// requests again. A sink that can tell it has no room (a full disk)
    /// refuses here, so that requests keep getting a clear 503 rather than
    /// being forwarded and failing to be recorded. By default: ready.
    fn ready(&self) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(std::future::ready(Ok(())))
    }
}
