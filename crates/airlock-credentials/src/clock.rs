//! [`Clock`]: what "now" is, so refresh timing can be tested without waiting.

use std::fmt;
use std::time::SystemTime;

/// The time the cache plans refreshes by.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> SystemTime;
}

/// The system's wall clock (token expiry is wall-clock time).
#[derive(Clone, Copy, Default)]
pub struct SystemClock;

impl fmt::Debug for SystemClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SystemClock")
    }
}

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}
