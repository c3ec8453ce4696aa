//! `[log] format = "json"`: `airlock serve` writes one JSON object per log
//! line on standard error, for a log pipeline.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use airlock_demo::{AgentClient, LocalConfig};
use airlock_sim::{DevIssuer, SimAzure};
use http::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line() {
    let sim = SimAzure::builder().start().await.unwrap();
    let issuer = DevIssuer::start(airlock_sim::TENANT_ID).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("policy.toml"),
        "[[rule]]\nname = \"read\"\neffect = \"allow\"\nactions = [\"*/read\"]\n",
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = LocalConfig::new(&sim, &issuer, dir.path(), "token")
        .listen(format!("127.0.0.1:{port}"))
        .extra_toml("[log]\nformat = \"json\"\n")
        .render();
    let file = dir.path().join("airlock.toml");
    std::fs::write(&file, config).unwrap();
    let log = dir.path().join("airlock.log");
    let mut gateway = Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args(["serve", "--config"])
        .arg(&file)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let probe = AgentClient::new(&format!("http://127.0.0.1:{port}"), None).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !probe
        .get("/readyz")
        .await
        .is_ok_and(|ready| ready.status == StatusCode::OK)
    {
        assert!(Instant::now() < deadline, "not ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gateway.kill().unwrap();
    gateway.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert!(!lines.is_empty(), "the gateway logged at start");
    assert!(
        lines
            .iter()
            .all(|line| line["level"].is_string() && line["timestamp"].is_string()),
        "{text}"
    );
    sim.shutdown().await;
    issuer.shutdown().await;
}
