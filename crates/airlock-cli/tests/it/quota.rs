//! Quotas through a real gateway process: a quota of five secret reads per
//! hour stops the sixth with a clear error, the refusal is in the audit
//! trail, and `airlock quota show` lists the use from the store; a quota
//! with a two-second window has room again once its window slides past
//! (the hour-long window's slide is tested on a fake clock, in
//! `airlock-policy`'s `quotas` tests).

use airlock_demo::AgentClient;
use airlock_sim::TokenSpec;
use airlock_store::SqliteStore;
use http::StatusCode;

use crate::support::Stack;

const UPSTREAM_TOKEN: &str = "quota-test-upstream-token";
const POLICY: &str = r#"[[rule]]
name = "allow-all"
effect = "allow"
actions = ["*"]
data_actions = ["*"]

[[quota]]
name = "secret-reads"
operations = ["Microsoft.KeyVault/vaults/secrets/getSecret/action"]
max_requests = 5
window = "1h"

[[quota]]
name = "secret-lists"
operations = ["Microsoft.KeyVault/vaults/secrets/readMetadata/action"]
max_requests = 2
window = "2s"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_of_five_secret_reads_stops_the_sixth_and_quota_show_lists_the_use() {
    let mut stack = Stack::start(UPSTREAM_TOKEN, POLICY, |config| config).await;
    let agent = AgentClient::new(&stack.url, None)
        .unwrap()
        .with_token(stack.issuer.mint(&TokenSpec::agent()));
    let port = stack.url.rsplit(':').next().unwrap().to_owned();
    let secret = format!(
        "http://{}.localhost:{port}/secrets/{}?api-version=7.4",
        airlock_sim::VAULT,
        airlock_sim::SECRET_NAME
    );
    for read in 1..=5 {
        let answer = agent.get(&secret).await.unwrap();
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "read {read}: {:?}",
            answer.body
        );
    }
    let sixth = agent.get(&secret).await.unwrap();
    assert_eq!(sixth.status, StatusCode::FORBIDDEN);
    let error = sixth.json();
    assert_eq!(error["error"]["code"], "AirlockQuotaExceeded");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("quota 'secret-reads' (5 operations per 1h per principal) is used up")
            && message.contains("5 of 5 operations"),
        "{message}"
    );
    // Other operations are not counted against it; lists have their own
    // quota, whose short window slides while the test waits.
    let lists = format!(
        "http://{}.localhost:{port}/secrets?api-version=7.4",
        airlock_sim::VAULT
    );
    let first_list = std::time::Instant::now();
    for list in 1..=2 {
        let answer = agent.get(&lists).await.unwrap();
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "list {list}: {:?}",
            answer.body
        );
    }
    let third = agent.get(&lists).await.unwrap();
    assert_eq!(third.status, StatusCode::FORBIDDEN, "{:?}", third.body);
    assert!(
        third.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("quota 'secret-lists'"),
        "{:?}",
        third.body
    );
    tokio::time::sleep(
        std::time::Duration::from_millis(2_100).saturating_sub(first_list.elapsed()),
    )
    .await;
    let after = agent.get(&lists).await.unwrap();
    assert_eq!(
        after.status,
        StatusCode::OK,
        "room again after the window: {:?}",
        after.body
    );

    let show = |format: &str| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_airlock"))
            .args(["quota", "show", "--format", format, "--config"])
            .arg(stack.file("airlock.toml"))
            .current_dir(stack.dir.path())
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let text = show("text");
    let agent_id = TokenSpec::agent().object_id;
    assert!(
        text.contains("secret-reads: 5 operations per 1h (sliding)"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|line| line.contains(&agent_id) && line.contains("5 / 5  FULL")),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&show("json")).unwrap();
    assert_eq!(json[0]["quota"], "secret-reads");
    assert_eq!(json[0]["subjects"][0]["subject"], agent_id.as_str());
    assert_eq!(json[0]["subjects"][0]["used"], 5);
    let metrics = AgentClient::new(&stack.admin_url, None)
        .unwrap()
        .get("/metrics")
        .await
        .unwrap();
    let metrics = String::from_utf8_lossy(&metrics.body);
    for series in [
        r#"airlock_quota_exceeded_total{quota="secret-reads",outcome="refused"} 1"#,
        r#"airlock_quota_exceeded_total{quota="secret-lists",outcome="refused"} 1"#,
        "airlock_quota_unavailable_total 0",
    ] {
        assert!(metrics.contains(series), "{series} missing:\n{metrics}");
    }
    stack.kill_gateway();

    let store = SqliteStore::open(stack.file("airlock.db")).await.unwrap();
    let mut pages = store.events_since(std::time::UNIX_EPOCH);
    let mut codes = Vec::new();
    while let Some(page) = pages.next_page().await.unwrap() {
        codes.extend(page.into_iter().map(|c| c.event.error_code));
    }
    drop(store);
    assert_eq!(
        codes
            .iter()
            .filter(|code| code.as_deref() == Some("AirlockQuotaExceeded"))
            .count(),
        2,
        "{codes:?}"
    );
    stack.shutdown().await;
}
