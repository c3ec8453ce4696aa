//! `[audit]`: how every request is recorded.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, invalid};

/// `[audit]`. Optional: by default every request is recorded in the
/// database, and the gateway refuses requests (503) when it cannot record.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Record at all. `false` (for benchmarks and throwaway set-ups only)
    /// records nothing and says so loudly at start.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Refuse new requests (503 `AirlockAuditUnavailable`) when events
    /// cannot be written (sink down, queue full), and finish no response
    /// before its event is stored. `false`: keep serving, count and log the
    /// events dropped.
    #[serde(default = "yes")]
    pub fail_closed: bool,
    /// Events waiting to be written, at most.
    #[serde(default = "default_queue")]
    pub queue_capacity: usize,
    /// A principal's requests further apart than this start a new session
    /// (unless the client names its session in `x-airlock-session`).
    #[serde(default = "default_session_idle", with = "humantime_serde")]
    pub session_idle: Duration,
    /// The longest masked body excerpt kept per request, in characters.
    #[serde(default = "default_body_chars")]
    pub max_body_chars: usize,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            fail_closed: true,
            queue_capacity: default_queue(),
            session_idle: default_session_idle(),
            max_body_chars: default_body_chars(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_queue() -> usize {
    8192
}
fn default_session_idle() -> Duration {
    Duration::from_secs(30 * 60)
}
fn default_body_chars() -> usize {
    8192
}

impl AuditConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.queue_capacity == 0 {
            return Err(invalid(
                "audit.queue_capacity",
                "must be above zero",
                "give a number of events, e.g. 8192",
            ));
        }
        if self.session_idle.is_zero() {
            return Err(invalid(
                "audit.session_idle",
                "must be longer than zero",
                "give a duration such as \"30m\"",
            ));
        }
        Ok(())
    }
}
