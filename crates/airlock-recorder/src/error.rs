//! [`RecorderError`]: why an event could not be stored.

use airlock_core::AirlockError;

/// Why the recorder could not take or store an event.
///
/// A response whose event could not be stored (fail-closed) ends with this
/// as its body error; a request refused for it gets
/// `503 AirlockAuditUnavailable` (see [`RecorderError::into_airlock`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecorderError {
    /// The sink failed the last batch (or is still backing off after it).
    #[error("the audit sink is failing to store events")]
    SinkFailing,
    /// The queue to the writer is full: the sink is slower than the traffic.
    #[error("the audit queue is full")]
    QueueFull,
    /// The recorder was shut down (or its writer stopped).
    #[error("the audit recorder has shut down")]
    ShutDown,
}

impl RecorderError {
    /// The error clients see: `503 AirlockAuditUnavailable`, retryable,
    /// naming the problem. Sink details stay in the gateway's log.
    pub fn into_airlock(self) -> AirlockError {
        AirlockError::AuditUnavailable(self.to_string())
    }
}
