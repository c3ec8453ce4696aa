//! Key Vault secrets, reached by vault host name.

use airlock_sim::{SECRET_NAME, SECRET_VALUE, SimAzure, SimHandle, TENANT_ID, VAULT};
use http::{Method, StatusCode};

use crate::client::{Http, TOKEN};

const API: &str = "api-version=7.4";

async fn sim() -> SimHandle {
    SimAzure::builder()
        .expected_token(TOKEN)
        .start()
        .await
        .unwrap()
}

#[tokio::test]
async fn requests_without_a_token_get_the_challenge() {
    let sim = sim().await;
    let http = Http::new();
    let url = format!("{}/secrets/{SECRET_NAME}?{API}", sim.vault_url(VAULT));
    let answer = http.send(Method::GET, &url, &[], None).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.header("www-authenticate").unwrap(),
        format!(
            "Bearer authorization=\"https://login.windows.net/{TENANT_ID}\", resource=\"https://vault.azure.net\""
        )
    );
    assert_eq!(
        answer.json(),
        serde_json::json!({"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}})
    );
    let wrong = http
        .send(
            Method::GET,
            &url,
            &[("authorization", "Bearer wrong")],
            None,
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.header("www-authenticate").is_some());
    sim.shutdown().await;
}

#[tokio::test]
async fn get_a_secret_by_name_and_version() {
    let sim = sim().await;
    let http = Http::new();
    let vault = sim.vault_url(VAULT);
    assert_eq!(
        vault,
        format!("http://{VAULT}.vault.localhost:{}", sim.addr().port())
    );
    assert_eq!(
        sim.key_vault_endpoint(),
        format!("http://{{vault}}.vault.localhost:{}", sim.addr().port())
    );

    let answer = http
        .get(&format!("{vault}/secrets/{SECRET_NAME}?{API}"))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert!(answer.header("x-ms-request-id").is_some());
    let json = answer.json();
    assert_eq!(json["value"], SECRET_VALUE);
    let id = json["id"].as_str().unwrap();
    let version = id
        .strip_prefix(&format!("{vault}/secrets/{SECRET_NAME}/"))
        .unwrap();
    assert_eq!(version.len(), 32);
    assert!(version.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(json["attributes"]["enabled"], true);
    assert_eq!(json["attributes"]["recoveryLevel"], "Recoverable+Purgeable");
    assert!(json["attributes"]["created"].is_u64() && json["attributes"]["updated"].is_u64());
    assert_eq!(json["tags"], serde_json::json!({}));

    let by_version = http
        .get(&format!("{vault}/secrets/{SECRET_NAME}/{version}?{API}"))
        .await;
    assert_eq!(by_version.json()["value"], SECRET_VALUE);

    // The real host name reaches the same vault; ids stay on the simulator's vault URL.
    let auth = format!("Bearer {TOKEN}");
    let real_host = [
        ("authorization", auth.as_str()),
        ("host", "demo-vault.vault.azure.net"),
    ];
    let via_real_host = http
        .send(
            Method::GET,
            &format!("{}/secrets/{SECRET_NAME}?{API}", sim.arm_url()),
            &real_host,
            None,
        )
        .await;
    assert_eq!(via_real_host.json()["id"], id);

    let missing = http.get(&format!("{vault}/secrets/nosuch?{API}")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let error = missing.json();
    assert_eq!(error["error"]["code"], "SecretNotFound");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("A secret with (name/id) nosuch was not found in this key vault.")
    );
    let missing_version = http
        .get(&format!(
            "{vault}/secrets/{SECRET_NAME}/{}?{API}",
            "0".repeat(32)
        ))
        .await;
    assert_eq!(missing_version.json()["error"]["code"], "SecretNotFound");
    sim.shutdown().await;
}

#[tokio::test]
async fn set_then_list_without_values() {
    let sim = sim().await;
    let http = Http::new();
    let vault = sim.vault_url(VAULT);
    let set = http
        .call(
            Method::PUT,
            &format!("{vault}/secrets/api-key?{API}"),
            Some(r#"{"value":"v1","contentType":"text/plain","tags":{"env":"dev"}}"#),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK);
    let first = set.json();
    assert_eq!(first["value"], "v1");
    assert_eq!(first["contentType"], "text/plain");
    assert_eq!(first["tags"]["env"], "dev");
    let second = http
        .call(
            Method::PUT,
            &format!("{vault}/secrets/api-key?{API}"),
            Some(r#"{"value":"v2"}"#),
        )
        .await
        .json();
    assert_ne!(first["id"], second["id"]);
    assert_eq!(
        http.get(&format!("{vault}/secrets/api-key?{API}"))
            .await
            .json()["value"],
        "v2"
    );
    assert_eq!(
        http.get(&format!("{}?{API}", first["id"].as_str().unwrap()))
            .await
            .json()["value"],
        "v1"
    );

    let list = http.get(&format!("{vault}/secrets?{API}")).await;
    assert_eq!(list.status, StatusCode::OK);
    let json = list.json();
    assert!(json["nextLink"].is_null());
    let ids: Vec<&str> = json["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            format!("{vault}/secrets/api-key"),
            format!("{vault}/secrets/{SECRET_NAME}")
        ]
    );
    assert!(
        !String::from_utf8_lossy(&list.body).contains("\"value\":\"v"),
        "lists carry no secret values"
    );
    assert!(
        json["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s.get("value").is_none() && s["attributes"]["enabled"] == true)
    );

    let versions = http
        .get(&format!("{vault}/secrets/api-key/versions?{API}"))
        .await;
    let json = versions.json();
    let items = json["value"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|v| v.get("value").is_none()));
    assert_eq!(items[0]["id"], first["id"]);

    let bad = http
        .call(
            Method::PUT,
            &format!("{vault}/secrets/no_underscores?{API}"),
            Some(r#"{"value":"x"}"#),
        )
        .await;
    assert_eq!(bad.json()["error"]["code"], "BadParameter");
    let no_value = http
        .call(
            Method::PUT,
            &format!("{vault}/secrets/ok?{API}"),
            Some("{}"),
        )
        .await;
    assert_eq!(no_value.status, StatusCode::BAD_REQUEST);
    sim.shutdown().await;
}

#[tokio::test]
async fn delete_recover_and_purge() {
    let sim = sim().await;
    let http = Http::new();
    let vault = sim.vault_url(VAULT);
    let deleted = http
        .call(
            Method::DELETE,
            &format!("{vault}/secrets/{SECRET_NAME}?{API}"),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    let json = deleted.json();
    assert_eq!(
        json["recoveryId"],
        format!("{vault}/deletedsecrets/{SECRET_NAME}")
    );
    assert!(json.get("value").is_none());
    assert_eq!(
        http.get(&format!("{vault}/secrets/{SECRET_NAME}?{API}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        http.get(&format!("{vault}/deletedsecrets/{SECRET_NAME}?{API}"))
            .await
            .status,
        StatusCode::OK
    );
    let reuse = http
        .call(
            Method::PUT,
            &format!("{vault}/secrets/{SECRET_NAME}?{API}"),
            Some(r#"{"value":"x"}"#),
        )
        .await;
    assert_eq!(reuse.status, StatusCode::CONFLICT);

    let recovered = http
        .call(
            Method::POST,
            &format!("{vault}/deletedsecrets/{SECRET_NAME}/recover?{API}"),
            None,
        )
        .await;
    assert_eq!(recovered.status, StatusCode::OK);
    assert_eq!(
        http.get(&format!("{vault}/secrets/{SECRET_NAME}?{API}"))
            .await
            .json()["value"],
        SECRET_VALUE
    );

    http.call(
        Method::DELETE,
        &format!("{vault}/secrets/{SECRET_NAME}?{API}"),
        None,
    )
    .await;
    let purged = http
        .call(
            Method::DELETE,
            &format!("{vault}/deletedsecrets/{SECRET_NAME}?{API}"),
            None,
        )
        .await;
    assert_eq!(purged.status, StatusCode::NO_CONTENT);
    assert_eq!(
        http.get(&format!("{vault}/deletedsecrets?{API}"))
            .await
            .json()["value"],
        serde_json::json!([])
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn api_version_and_unknown_vaults() {
    let sim = sim().await;
    let http = Http::new();
    let vault = sim.vault_url(VAULT);
    let no_version = http.get(&format!("{vault}/secrets/{SECRET_NAME}")).await;
    assert_eq!(no_version.status, StatusCode::BAD_REQUEST);
    assert_eq!(no_version.json()["error"]["code"], "BadParameter");
    let old = http
        .get(&format!(
            "{vault}/secrets/{SECRET_NAME}?api-version=2021-04-01"
        ))
        .await;
    assert_eq!(old.status, StatusCode::BAD_REQUEST);
    let unknown = http
        .get(&format!("{}/secrets/x?{API}", sim.vault_url("other-vault")))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.json()["error"]["code"], "VaultNotFound");
    assert_eq!(sim.requests().len(), 3);
    sim.shutdown().await;
}
