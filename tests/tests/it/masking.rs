//! Secrets in Azure's answers never reach the agent, and never the logs:
//! through the gateway, Key Vault values and storage keys come back as
//! stable masked tokens.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use airlock_masking::{MASKED_HEADER, is_masked_token};
use airlock_tests::{Harness, UPSTREAM_TOKEN, rg_path};
use http::{Method, StatusCode};

/// Everything every test in this binary logs, at trace level for Airlock's crates.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        tracing_subscriber::fmt()
            .with_env_filter("info,airlock_gateway=trace,airlock_identity=trace,airlock_azure=trace,airlock_policy=trace,airlock_masking=trace,tower_http=trace")
            .with_writer(move || Sink(sink.clone()))
            .with_ansi(false)
            .init();
        logs
    })
    .clone()
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

/// The storage keys the simulated Azure really returns, asked directly.
async fn real_storage_keys(h: &Harness, path: &str) -> Vec<String> {
    let direct = airlock_demo::AgentClient::new(&h.sim.arm_url(), None)
        .unwrap()
        .with_token(UPSTREAM_TOKEN);
    let keys = direct
        .send(
            Method::POST,
            &format!("{}{path}", h.sim.arm_url()),
            &[],
            None,
        )
        .await
        .unwrap();
    h.sim.clear_requests();
    keys.json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["value"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn secrets_come_back_masked_and_stay_out_of_the_logs() {
    let logs = captured_logs();
    let h = Harness::start().await;
    let list_keys = format!(
        "{}/providers/Microsoft.Storage/storageAccounts/{}/listKeys?api-version=2023-05-01",
        rg_path(),
        airlock_sim::STORAGE_ACCOUNT
    );
    let real_keys = real_storage_keys(&h, &list_keys).await;
    assert_eq!(real_keys.len(), 2);

    let secret = h.agent.get(&h.secret_url()).await.unwrap();
    assert_eq!(secret.status, StatusCode::OK);
    let token = secret.json()["value"].as_str().unwrap().to_owned();
    assert!(is_masked_token(&token), "{token}");
    assert_eq!(secret.header(MASKED_HEADER), Some("1"));
    assert!(
        secret
            .header("content-length")
            .is_none_or(|len| len == secret.body.len().to_string())
    );
    // The rest of the answer is untouched.
    assert!(
        secret.json()["id"]
            .as_str()
            .unwrap()
            .contains(airlock_sim::SECRET_NAME)
    );

    // Stable: the same secret gives the same token.
    let again = h.agent.get(&h.secret_url()).await.unwrap();
    assert_eq!(again.json()["value"], token.as_str());

    let keys = h
        .agent
        .send(Method::POST, &list_keys, &[], None)
        .await
        .unwrap();
    assert_eq!(keys.status, StatusCode::OK);
    let json = keys.json();
    let values: Vec<String> = json["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["value"].as_str().unwrap().to_owned())
        .collect();
    assert!(values.iter().all(|v| is_masked_token(v)), "{values:?}");
    assert_ne!(values[0], values[1], "different secrets, different tokens");
    assert_eq!(keys.header(MASKED_HEADER), Some("2"));

    let answers = format!(
        "{}{}",
        String::from_utf8_lossy(&secret.body),
        String::from_utf8_lossy(&keys.body)
    );
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(logged.contains("request"), "the capture works: {logged}");
    for leaked in [
        airlock_sim::SECRET_VALUE,
        &real_keys[0],
        &real_keys[1],
        &h.agent_token,
        UPSTREAM_TOKEN,
    ] {
        assert!(!answers.contains(leaked), "a secret reached the agent");
        assert!(!logged.contains(leaked), "a secret or token was logged");
    }
    h.shutdown().await;
}
