//! [`RecorderConfig`]: queue, batching, failure mode, sessions and excerpts.

use std::time::Duration;

/// How the [`Recorder`](crate::Recorder) queues, writes and groups events.
///
/// ```
/// use std::time::Duration;
/// use airlock_recorder::RecorderConfig;
///
/// let config = RecorderConfig {
///     fail_closed: false,
///     session_idle: Duration::from_secs(10 * 60),
///     ..RecorderConfig::default()
/// };
/// assert_eq!(config.queue_capacity, 8192);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecorderConfig {
    /// Events waiting for the writer (default 8192; 0 is taken as 1). When
    /// it is full, a fail-closed recorder refuses new requests (503) and a
    /// fail-open one drops events.
    pub queue_capacity: usize,
    /// The most events written in one [`AuditSink::append`](crate::AuditSink::append)
    /// call (default 512; 0 is taken as 1). The writer takes whatever is
    /// queued, up to this, per call (group commit).
    pub max_batch: usize,
    /// Refuse requests (`503 AirlockAuditUnavailable`) while their events
    /// could not be stored, and hold back the end of every response until
    /// its event is stored (default `true`). When `false`, requests are
    /// always served and events that cannot be queued are dropped (counted
    /// in [`RecorderStats::dropped`](crate::RecorderStats::dropped)).
    pub fail_closed: bool,
    /// A principal's requests without an `x-airlock-session` header belong
    /// to one session until it has been idle this long (default 30 min);
    /// the next request starts a new one.
    pub session_idle: Duration,
    /// The cap, in characters, of the request and response body excerpts
    /// stored in an event (default 8192; 0 stores none).
    pub max_body_chars: usize,
    /// The replica id written into every event (default none): set it when
    /// several gateways share one database, each with its own chain.
    pub replica: Option<String>,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 8192,
            max_batch: 512,
            fail_closed: true,
            session_idle: Duration::from_secs(30 * 60),
            max_body_chars: 8192,
            replica: None,
        }
    }
}
