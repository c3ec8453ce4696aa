//! What several of these tests need: a free port, and a gateway process
//! that does not outlive its test.

use std::process::Child;

/// A loopback port nobody listens on right now.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An `airlock` process, killed if the test ends (or fails) before it does.
pub(crate) struct Gateway(pub(crate) Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Gateway {
    /// Starts `airlock serve --config {dir}/airlock.toml` (logging to
    /// `{dir}/airlock.log`) and waits until `base_url` answers `/readyz`.
    pub(crate) async fn serve(dir: &std::path::Path, base_url: &str) -> Self {
        use std::time::{Duration, Instant};
        let log_path = dir.join("airlock.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut gateway = Gateway(
            std::process::Command::new(env!("CARGO_BIN_EXE_airlock"))
                .args(["serve", "--config"])
                .arg(dir.join("airlock.toml"))
                .env("RUST_LOG", "warn")
                .stdout(std::process::Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        let log_text = || std::fs::read_to_string(&log_path).unwrap_or_default();
        let probe = airlock_demo::AgentClient::new(base_url, None).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(ready) = probe.get("/readyz").await
                && ready.status == http::StatusCode::OK
            {
                return gateway;
            }
            assert!(
                gateway.0.try_wait().unwrap().is_none(),
                "the gateway exited:\n{}",
                log_text()
            );
            assert!(Instant::now() < deadline, "not ready:\n{}", log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
