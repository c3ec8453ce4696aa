//! Everything every test in this binary logs, at trace level for Airlock's
//! crates, so tests can search it for secrets.

use std::sync::OnceLock;

use airlock_core::LogCapture;

/// The log captured so far (one subscriber for the whole binary).
pub(crate) fn captured_logs() -> LogCapture {
    static LOGS: OnceLock<LogCapture> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = LogCapture::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_env_filter("info,airlock_gateway=trace,airlock_identity=trace,airlock_azure=trace,airlock_policy=trace,airlock_masking=trace,airlock_credentials=trace,airlock_upstream=trace,tower_http=trace")
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .init();
        logs
    })
    .clone()
}

/// The captured log as text.
pub(crate) fn logged() -> String {
    captured_logs().text()
}
