//! Secrets in Azure's answers never reach the agent, and never the logs:
//! through the gateway, Key Vault values and storage keys come back as
//! stable masked tokens.

#![allow(clippy::unwrap_used)]

use airlock_masking::{MASKED_HEADER, is_masked_token};

use crate::logs::captured_logs;
use airlock_tests::{Harness, UPSTREAM_TOKEN, rg_path};
use http::{Method, StatusCode};

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
    let logged = logs.text();
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

/// The review's attack (issue 24, finding 1): an agent that knows a
/// secret's token gets candidate values masked, hoping one comes back with
/// the same token. Every way it can get a value of its choosing masked (a
/// URL or query Azure echoes in an error, a tag it reads back, the value
/// stored under another name) must leave nothing to compare.
#[tokio::test]
async fn a_masked_value_confirms_no_guess() {
    let h = Harness::start().await;
    let secret = h.agent.get(&h.secret_url()).await.unwrap();
    let token = secret.json()["value"].as_str().unwrap().to_owned();
    assert!(is_masked_token(&token), "{token}");
    let guess = airlock_sim::SECRET_VALUE; // the right guess, among wrong ones
    let confirms = |body: &[u8]| String::from_utf8_lossy(body).contains(token.as_str());

    // 1. A query Azure echoes in its 404, with several guesses in one request.
    let echo = h
        .agent
        .get(&format!(
            "{}/resources?api-version=2021-04-01&q=Password=hunter2;Password={guess};Pwd={guess}",
            rg_path()
        ))
        .await
        .unwrap();
    assert_eq!(echo.status, StatusCode::NOT_FOUND);
    let message = echo.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("q=Password=***MASKED***;Password=***MASKED***;Pwd=***MASKED***"),
        "{message}"
    );
    assert!(
        !confirms(&echo.body) && !message.contains(guess),
        "{message}"
    );

    // 2. A tag it writes and reads back, and 3. the guess stored as another
    // secret's value: the rule masks it, with a token of another resource.
    let other = format!("{}/secrets/guess?api-version=7.4", h.vault_url());
    let body = serde_json::json!({"value": guess, "tags": {"note": format!("Password={guess};")}});
    let put = h
        .agent
        .send(Method::PUT, &other, &[], Some(body.to_string().into()))
        .await
        .unwrap();
    assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);
    let read = h.agent.get(&other).await.unwrap();
    assert_eq!(read.status, StatusCode::OK);
    for answer in [&put, &read] {
        let json = answer.json();
        assert_eq!(json["tags"]["note"], "Password=***MASKED***;");
        let stored = json["value"].as_str().unwrap();
        assert!(is_masked_token(stored), "{stored}");
        assert_ne!(stored, token, "a token of another resource");
        assert!(!confirms(&answer.body));
    }

    // What a token is for still works: the same secret, read again by the
    // same agent, gives the same token.
    let again = h.agent.get(&h.secret_url()).await.unwrap();
    assert_eq!(again.json()["value"], token.as_str());
    h.shutdown().await;
}
