//! The Blob service through the gateway (issue 14, points 3 and 6): agents
//! reach `{account}.blob.<gateway>` with their own Entra token; the gateway
//! classifies each request as a Storage data action, and presents either its
//! own token for `https://storage.azure.com` or, for an account it holds
//! the key of, a Shared Key signature the simulated Storage checks.

#![allow(clippy::unwrap_used)]

use airlock_demo::AgentClient;
use airlock_sim::{AGENTS_GROUP, IssuerHandle, STORAGE_ACCOUNT, TENANT_ID};
use airlock_tests::{Harness, Options, assert_airlock_error};
use bytes::Bytes;
use http::{Method, StatusCode};

use crate::logs::{captured_logs, logged};

pub(crate) const VERSION: (&str, &str) = ("x-ms-version", "2023-11-03");
pub(crate) const BLOCK_BLOB: (&str, &str) = ("x-ms-blob-type", "BlockBlob");

pub(crate) fn policy() -> String {
    format!(
        r#"
[[rule]]
name = "agents-use-blobs"
effect = "allow"
data_actions = [
  "Microsoft.Storage/storageAccounts/blobServices/containers/write",
  "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
  "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
  "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
]
[rule.principals]
groups = ["{AGENTS_GROUP}"]
"#
    )
}

/// The gateway's app registration, for Storage as for ARM.
pub(crate) fn client_secret(issuer: &IssuerHandle, dir: &std::path::Path) -> String {
    issuer.register_client("airlock-storage-app", "storage-app-secret");
    let file = dir.join("secret");
    std::fs::write(&file, "storage-app-secret").unwrap();
    format!(
        "kind = \"client_secret\"\ntenant_id = \"{TENANT_ID}\"\nclient_id = \"airlock-storage-app\"\nclient_secret_file = \"{}\"\nauthority_host = \"http://{}\"",
        file.display(),
        issuer.addr()
    )
}

async fn harness(extra_toml: String) -> Harness {
    Harness::start_with(Options {
        policy: Some(policy()),
        credential: Some(client_secret),
        extra_toml,
        ..Options::default()
    })
    .await
}

/// The agent's client for `{account}.blob.localhost:<gateway port>`.
pub(crate) fn blobs(h: &Harness, account: &str) -> AgentClient {
    AgentClient::new(
        &format!(
            "http://{account}.blob.localhost:{}",
            h.gateway.local_addr().port()
        ),
        None,
    )
    .unwrap()
    .with_token(h.agent_token.clone())
}

/// Creates container `logs`, uploads a blob, reads it back and lists it.
async fn round_trip(agent: &AgentClient) {
    let created = agent
        .send(Method::PUT, "/logs?restype=container", &[VERSION], None)
        .await
        .unwrap();
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let put = agent
        .send(
            Method::PUT,
            "/logs/2026/build.txt",
            &[VERSION, BLOCK_BLOB, ("content-type", "text/plain")],
            Some(Bytes::from_static(b"build 42 passed")),
        )
        .await
        .unwrap();
    assert_eq!(put.status, StatusCode::CREATED, "{:?}", put.body);
    let read = agent
        .send(Method::GET, "/logs/2026/build.txt", &[VERSION], None)
        .await
        .unwrap();
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(&read.body[..], b"build 42 passed");
    let listed = agent
        .send(
            Method::GET,
            "/logs?restype=container&comp=list",
            &[VERSION],
            None,
        )
        .await
        .unwrap();
    assert_eq!(listed.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&listed.body).contains("<Name>2026/build.txt</Name>"));
}

/// The `Authorization` header of every request the simulated Storage got.
fn storage_authorizations(h: &Harness) -> Vec<String> {
    h.sim
        .requests()
        .iter()
        .filter(|r| r.host.as_deref().is_some_and(|h| h.contains(".blob.")))
        .map(|r| r.headers["authorization"].to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn agents_use_blobs_with_the_gateways_storage_token_and_policy_decides() {
    let h = harness(String::new()).await;
    let agent = blobs(&h, STORAGE_ACCOUNT);
    round_trip(&agent).await;
    let sent = storage_authorizations(&h);
    assert_eq!(sent.len(), 4);
    for authorization in &sent {
        let token = authorization.strip_prefix("Bearer ").unwrap();
        assert_ne!(token, h.agent_token, "the agent's token was forwarded");
        let claims = h
            .issuer
            .verifier()
            .verify(token, airlock_sim::STORAGE_AUDIENCE)
            .unwrap();
        assert_eq!(claims["azp"], "airlock-storage-app");
    }

    // Not allowed by policy: refused, never sent.
    let delete = agent
        .send(Method::DELETE, "/logs/2026/build.txt", &[VERSION], None)
        .await
        .unwrap();
    let json = assert_airlock_error(&delete, StatusCode::FORBIDDEN, "AirlockPolicyDenied");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete"),
        "{json}"
    );
    // A batch carries other requests: unknown, so denied unless named.
    let batch = agent
        .send(
            Method::POST,
            "/logs?restype=container&comp=batch",
            &[VERSION],
            Some(Bytes::from_static(b"--batch\r\n")),
        )
        .await
        .unwrap();
    assert_airlock_error(&batch, StatusCode::FORBIDDEN, "AirlockPolicyDenied");
    // An account not in upstream.storage.accounts: no open proxy.
    let other = blobs(&h, "otherstore")
        .send(Method::GET, "/?comp=list", &[VERSION], None)
        .await
        .unwrap();
    assert_airlock_error(&other, StatusCode::FORBIDDEN, "AirlockHostNotAllowed");
    assert_eq!(
        storage_authorizations(&h).len(),
        4,
        "nothing more reached Storage"
    );

    // Even where policy allows it, a user delegation key (it signs SAS
    // tokens) never reaches the agent: the default pack masks the XML
    // answer's <Value>.
    let delegation = agent
        .send(
            Method::POST,
            "/?restype=service&comp=userdelegationkey",
            &[VERSION],
            Some(Bytes::from_static(
                b"<KeyInfo><Start>2026-12-03T00:00:00Z</Start><Expiry>2026-12-04T00:00:00Z</Expiry></KeyInfo>",
            )),
        )
        .await
        .unwrap();
    assert_eq!(storage_authorizations(&h).len(), 5, "it was sent");
    let text = String::from_utf8_lossy(&delegation.body);
    assert_eq!(delegation.status, StatusCode::OK);
    assert!(
        text.contains("<SignedTid>") && text.contains("<Value>***MASKED:"),
        "{text}"
    );

    let trail = h.audit_trail().await;
    let put = trail
        .iter()
        .find(|e| e.event.method == "PUT" && e.event.path.ends_with("build.txt"))
        .unwrap();
    assert_eq!(
        put.event.operations,
        ["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write"]
    );
    assert_eq!(
        put.event.api_version.as_deref(),
        None,
        "Storage has no api-version query"
    );
    h.shutdown().await;
}

fn key_file_for(h_dir: &std::path::Path, key: &str) -> String {
    let file = h_dir.join("storage-key");
    std::fs::write(&file, format!("{key}\n")).unwrap();
    format!(
        "[upstream.storage.shared_keys.{STORAGE_ACCOUNT}]\nkey_file = \"{}\"\n",
        file.display()
    )
}

#[tokio::test]
async fn for_a_key_only_account_the_gateway_signs_and_the_agent_never_holds_the_key() {
    captured_logs();
    let dir = tempfile::tempdir().unwrap();
    // The sim's key1, as `listKeys` would give it to whoever deploys Airlock.
    let sim = airlock_sim::SimAzure::builder().start().await.unwrap();
    let key = sim.storage_account_key(STORAGE_ACCOUNT);
    sim.shutdown().await;
    let h = harness(key_file_for(dir.path(), &key)).await;
    let agent = blobs(&h, STORAGE_ACCOUNT);
    round_trip(&agent).await;
    let sent = storage_authorizations(&h);
    assert_eq!(sent.len(), 4);
    assert!(
        sent.iter()
            .all(|a| a.starts_with(&format!("SharedKey {STORAGE_ACCOUNT}:"))),
        "{sent:?}"
    );
    let trail = h.audit_trail().await;
    let upstream: Vec<_> = trail
        .iter()
        .filter_map(|e| e.event.upstream_identity.as_deref())
        .collect();
    let expected = format!("shared-key:{STORAGE_ACCOUNT}");
    assert_eq!(upstream, [expected.as_str(); 4]);
    assert!(!logged().contains(&key), "the account key was logged");
    h.shutdown().await;

    // A wrong key: Storage refuses the signature, the agent gets a 502 that
    // says the gateway's credential is at fault.
    let dir = tempfile::tempdir().unwrap();
    let h = harness(key_file_for(dir.path(), "d3Jvbmcta2V5LXdyb25nLWtleQ==")).await;
    let refused = blobs(&h, STORAGE_ACCOUNT)
        .send(Method::PUT, "/logs?restype=container", &[VERSION], None)
        .await
        .unwrap();
    assert_airlock_error(
        &refused,
        StatusCode::BAD_GATEWAY,
        "AirlockUpstreamCredentialFailed",
    );
    h.shutdown().await;
}
