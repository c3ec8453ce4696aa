//! Everything every test in this binary logs, at trace level for Airlock's
//! crates, so tests can search it for secrets.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// The log captured so far (one subscriber for the whole binary).
pub(crate) fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        tracing_subscriber::fmt()
            .with_env_filter("info,airlock_gateway=trace,airlock_identity=trace,airlock_azure=trace,airlock_policy=trace,airlock_masking=trace,airlock_credentials=trace,airlock_upstream=trace,tower_http=trace")
            .with_writer(move || Sink(sink.clone()))
            .with_ansi(false)
            .init();
        logs
    })
    .clone()
}

/// The captured log as text.
pub(crate) fn logged() -> String {
    String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned()
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
