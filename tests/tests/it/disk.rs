//! The disk (issue 24, finding 2): approvals are bounded so that they cannot
//! fill it, and when it is full anyway the gateway refuses clearly and
//! acknowledges nothing it did not record.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use airlock_sim::{AGENTS_GROUP, APPROVERS_GROUP};
use airlock_tests::{Harness, Options, assert_airlock_error, rg_path};
use bytes::Bytes;
use http::{Method, StatusCode};

fn policy() -> String {
    format!(
        r#"
[[rule]]
name = "agents-read"
effect = "allow"
actions = ["*/read"]
[rule.principals]
groups = ["{AGENTS_GROUP}"]

[[rule]]
name = "storage-writes-need-approval"
effect = "approve"
actions = ["Microsoft.Storage/storageAccounts/write"]
[rule.approval]
groups = ["{APPROVERS_GROUP}"]
"#
    )
}

fn account_path(name: &str) -> String {
    format!(
        "{}/providers/Microsoft.Storage/storageAccounts/{name}?api-version=2023-05-01",
        rg_path()
    )
}

fn new_account(padding: usize) -> Bytes {
    Bytes::from(format!(
        r#"{{"location":"westeurope","sku":{{"name":"Standard_LRS"}},"kind":"StorageV2","tags":{{"pad":"{}"}}}}"#,
        "x".repeat(padding)
    ))
}

async fn put_account(h: &Harness, name: &str, padding: usize) -> airlock_demo::AgentResponse {
    h.agent
        .send(
            Method::PUT,
            &account_path(name),
            &[],
            Some(new_account(padding)),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn pending_approvals_are_capped_and_their_stored_bodies_bounded() {
    let h = Harness::start_with(Options {
        policy: Some(policy()),
        approval_toml:
            "max_pending_per_principal = 1\nmax_pending = 1\nmax_stored_body_bytes = 4096".into(),
        ..Options::default()
    })
    .await;
    let too_large = put_account(&h, "big", 8192).await;
    let json = assert_airlock_error(
        &too_large,
        StatusCode::PAYLOAD_TOO_LARGE,
        "AirlockApprovalBodyTooLarge",
    );
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_stored_body_bytes"),
        "{json}"
    );

    let first = put_account(&h, "first", 0).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let operation = first.header("azure-asyncoperation").unwrap().to_owned();
    let second = put_account(&h, "second", 0).await;
    let json = assert_airlock_error(
        &second,
        StatusCode::TOO_MANY_REQUESTS,
        "AirlockTooManyPendingApprovals",
    );
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_pending_per_principal = 1"),
        "{json}"
    );
    // The first request again joins its approval, cap or no cap.
    let again = put_account(&h, "first", 0).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(
        again.header("azure-asyncoperation"),
        Some(operation.as_str())
    );
    h.shutdown().await;
}

#[tokio::test]
async fn below_the_disk_floor_new_approvals_are_refused_and_reads_go_on() {
    let h = Harness::start_with(Options {
        policy: Some(policy()),
        // A floor no disk clears.
        store_toml: "min_free_bytes = 9223372036854775807".into(),
        ..Options::default()
    })
    .await;
    let refused = put_account(&h, "blocked", 0).await;
    let json = assert_airlock_error(
        &refused,
        StatusCode::SERVICE_UNAVAILABLE,
        "AirlockApprovalStoreFull",
    );
    let message = json["error"]["message"].as_str().unwrap();
    assert!(message.contains("min_free_bytes"), "{message}");
    let read = h
        .agent
        .get(&account_path(airlock_sim::STORAGE_ACCOUNT))
        .await
        .unwrap();
    assert_eq!(read.status, StatusCode::OK);
    assert!(h.sim.requests().iter().all(|r| r.method != Method::PUT));

    let trail = h.audit_trail().await;
    let recorded = trail
        .iter()
        .find(|e| e.event.status == 503)
        .expect("the refusal is recorded");
    assert_eq!(
        recorded.event.error_code.as_deref(),
        Some("AirlockApprovalStoreFull")
    );
    assert!(recorded.event.principal.is_some());
    h.shutdown().await;
}

/// A small tmpfs, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Self {
        std::fs::create_dir_all(at).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs failed: this test needs root (CI runs as root)"
        );
        Self(at.to_owned())
    }

    /// Fills it to the last byte with `filler`.
    fn fill(&self, filler: &Path) {
        let mut file = std::fs::File::create(filler).unwrap();
        for chunk in [64 * 1024, 4096, 512, 1] {
            let bytes = vec![0u8; chunk];
            while file.write_all(&bytes).is_ok() {}
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test]
async fn a_full_disk_is_a_clear_503_and_nothing_unrecorded_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&dir.path().join("disk"), "8m");
    let h = Harness::start_with(Options {
        database: Some(disk.0.join("airlock.db")),
        ..Options::default()
    })
    .await;
    let path = format!("{}?api-version=2022-09-01", rg_path());
    let mut acknowledged = Vec::new();
    let get = async |acknowledged: &mut Vec<String>| {
        let answer = h.agent.get(&path).await;
        if let Ok(answer) = &answer
            && answer.status == StatusCode::OK
        {
            acknowledged.push(answer.header("x-airlock-request-id").unwrap().to_owned());
        }
        answer
    };
    assert_eq!(get(&mut acknowledged).await.unwrap().status, StatusCode::OK);

    let filler = disk.0.join("filler");
    disk.fill(&filler);
    // Until the trail cannot grow, requests are recorded (the WAL may have
    // room left); then the gateway refuses.
    let mut refused = None;
    for _ in 0..5000 {
        if let Ok(answer) = get(&mut acknowledged).await
            && answer.status == StatusCode::SERVICE_UNAVAILABLE
        {
            refused = Some(answer);
            break;
        }
    }
    let refused = refused.expect("a full disk stops the gateway from answering");
    assert_airlock_error(
        &refused,
        StatusCode::SERVICE_UNAVAILABLE,
        "AirlockAuditUnavailable",
    );
    // While the disk stays full, every request gets the same clear answer,
    // across the recorder's retries.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let answer = get(&mut acknowledged).await.unwrap();
        assert_airlock_error(
            &answer,
            StatusCode::SERVICE_UNAVAILABLE,
            "AirlockAuditUnavailable",
        );
    }

    // Space returns: so does the service, by itself.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = get(&mut acknowledged).await;
        if answer.is_ok_and(|a| a.status == StatusCode::OK) {
            break;
        }
        assert!(Instant::now() < deadline, "the gateway did not come back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Nothing was acknowledged that is not in the trail.
    let trail = h.audit_trail().await;
    let recorded: std::collections::HashSet<_> = trail
        .iter()
        .filter_map(|e| e.event.request_id.clone())
        .collect();
    for id in &acknowledged {
        assert!(
            recorded.contains(id),
            "request {id} was answered 200 but not recorded"
        );
    }
    h.shutdown().await;
    drop(disk);
}
