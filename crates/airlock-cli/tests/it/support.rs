//! What several of these tests need: a free port, and a gateway process
//! that does not outlive its test.

use std::process::Child;

/// A policy that allows every action and data action.
pub(crate) const ALLOW_ALL: &str = "[[rule]]\nname = \"allow-all\"\neffect = \"allow\"\nactions = [\"*\"]\ndata_actions = [\"*\"]\n";

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
    /// Starts `airlock serve --config {dir}/airlock.toml` as `launch` says (logging to
    /// `{dir}/airlock.log`) and waits until `base_url` answers `/readyz`.
    pub(crate) async fn launch(dir: &std::path::Path, base_url: &str, launch: Launch) -> Self {
        use std::time::{Duration, Instant};
        let log_path = dir.join("airlock.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut command = launch.command();
        command
            .args(["serve", "--config"])
            .arg(dir.join("airlock.toml"))
            .stdout(std::process::Stdio::null())
            .stderr(log);
        let mut gateway = Gateway(command.spawn().unwrap());
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

/// How the `airlock` process is started.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Launch {
    /// As it is, logging warnings only.
    Plain,
    /// Pinned to one CPU (`taskset -c 0`), logging at `info`.
    OneCpu,
}

impl Launch {
    /// The command up to `airlock`'s arguments.
    pub(crate) fn command(self) -> std::process::Command {
        let airlock = env!("CARGO_BIN_EXE_airlock");
        match self {
            Self::Plain => {
                let mut command = std::process::Command::new(airlock);
                command.env("RUST_LOG", "warn");
                command
            }
            Self::OneCpu => {
                let mut command = std::process::Command::new("taskset");
                command.args(["-c", "0", airlock]).env("RUST_LOG", "info");
                command
            }
        }
    }
}

/// A simulated Azure and its token issuer, and an `airlock serve` process
/// in front of them, in a temporary directory with `policy`: what the
/// process-level tests share.
pub(crate) struct Stack {
    pub(crate) sim: airlock_sim::SimHandle,
    pub(crate) issuer: airlock_sim::IssuerHandle,
    pub(crate) dir: tempfile::TempDir,
    /// The gateway's base URL.
    pub(crate) url: String,
    /// Its admin listener's base URL (`/metrics`).
    pub(crate) admin_url: String,
    pub(crate) gateway: Gateway,
}

impl Stack {
    /// Starts all three; `edit` may change the rendered configuration first.
    pub(crate) async fn start(
        upstream_token: &str,
        policy: &str,
        edit: impl FnOnce(String) -> String,
    ) -> Self {
        Self::launch(upstream_token, policy, edit, Launch::Plain).await
    }

    /// As [`Stack::start`], the gateway launched as `launch` says.
    pub(crate) async fn launch(
        upstream_token: &str,
        policy: &str,
        edit: impl FnOnce(String) -> String,
        launch: Launch,
    ) -> Self {
        let sim = airlock_sim::SimAzure::builder()
            .expected_token(upstream_token)
            .start()
            .await
            .unwrap();
        let issuer = airlock_sim::DevIssuer::start(airlock_sim::TENANT_ID)
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("policy.toml"), policy).unwrap();
        let (port, admin) = (free_port(), free_port());
        let config = airlock_demo::LocalConfig::new(&sim, &issuer, dir.path(), upstream_token)
            .listen(format!("127.0.0.1:{port}"))
            .admin(format!("127.0.0.1:{admin}"))
            .render();
        std::fs::write(dir.path().join("airlock.toml"), edit(config)).unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let gateway = Gateway::launch(dir.path(), &url, launch).await;
        Self {
            sim,
            issuer,
            dir,
            url,
            admin_url: format!("http://127.0.0.1:{admin}"),
            gateway,
        }
    }

    /// A file in the stack's directory (`airlock.toml`, `airlock.db`, …).
    pub(crate) fn file(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// Kills the gateway process (no drain, no flush) and waits for it.
    pub(crate) fn kill_gateway(&mut self) {
        let _ = self.gateway.0.kill();
        let _ = self.gateway.0.wait();
    }

    /// Stops the sim and the issuer; the gateway is killed with the stack.
    pub(crate) async fn shutdown(mut self) {
        self.kill_gateway();
        self.sim.shutdown().await;
        self.issuer.shutdown().await;
    }
}

/// Verifies the SQLite trail at `database` and asserts that each of
/// `request_ids` has exactly one event in it.
pub(crate) async fn assert_each_recorded_once(database: &std::path::Path, request_ids: &[String]) {
    let store = airlock_store::SqliteStore::open(database).await.unwrap();
    let report = store.verify().await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    let mut pages = store.events_since(std::time::UNIX_EPOCH);
    let mut stored: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    while let Some(page) = pages.next_page().await.unwrap() {
        for chained in page {
            *stored
                .entry(chained.event.request_id.unwrap_or_default())
                .or_default() += 1;
        }
    }
    assert_counted_once(&stored, request_ids);
}

/// Asserts that `stored` (request id → events stored with it) counts each
/// of `request_ids` exactly once.
pub(crate) fn assert_counted_once(
    stored: &std::collections::HashMap<String, usize>,
    request_ids: &[String],
) {
    let missing: Vec<_> = request_ids
        .iter()
        .filter(|id| stored.get(*id) != Some(&1))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} completed responses have no (or more than one) event: {:?}",
        missing.len(),
        request_ids.len(),
        &missing[..missing.len().min(5)]
    );
}
