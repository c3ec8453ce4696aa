//! [`LogCapture`]: what a `tracing` subscriber writes, kept in memory, for
//! tests of what a layer logs (above all, of what it must never log:
//! tokens, secrets, keys).

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

/// A writer that keeps every byte a log subscriber writes, shared between
/// its clones: give a clone to the subscriber, read the text from another.
///
/// ```
/// use airlock_core::LogCapture;
///
/// let logs = LogCapture::default();
/// let writer = logs.clone();
/// let subscriber = tracing_subscriber::fmt()
///     .with_ansi(false)
///     .with_writer(move || writer.clone())
///     .finish();
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info!(masked = 2, "answer masked");
/// });
/// assert!(logs.text().contains("answer masked masked=2"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// Everything written so far, as text (invalid UTF-8 replaced).
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl Write for LogCapture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
