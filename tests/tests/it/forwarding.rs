//! The gateway forwards to (simulated) Azure and back, over real HTTP.

#![allow(clippy::unwrap_used)]

use airlock_core::REQUEST_ID_HEADER;
use airlock_tests::{Harness, Options, UPSTREAM_TOKEN, rg_path};
use bytes::Bytes;
use http::{Method, StatusCode};

const API: &str = "api-version=2023-05-01";

#[tokio::test]
async fn methods_bodies_and_statuses_pass_through_intact() {
    let h = Harness::start().await;
    let sub = airlock_sim::SUBSCRIPTION_ID;

    // PUT with a body: the body reaches Azure byte for byte, the 201 comes back.
    let body = Bytes::from_static(br#"{"location":"northeurope","tags":{"team":"agents"}}"#);
    let put = h
        .agent
        .send(
            Method::PUT,
            &format!("/subscriptions/{sub}/resourcegroups/e2e-rg?api-version=2021-04-01"),
            &[],
            Some(body.clone()),
        )
        .await
        .unwrap();
    assert_eq!(put.status, StatusCode::CREATED, "{:?}", put.body);
    assert_eq!(put.json()["location"], "northeurope");
    let recorded = h
        .sim
        .requests()
        .into_iter()
        .find(|r| r.method == Method::PUT)
        .unwrap();
    assert_eq!(recorded.body, body);
    assert_eq!(
        recorded.uri.path(),
        format!("/subscriptions/{sub}/resourcegroups/e2e-rg")
    );

    // GET of the new group.
    let get = h
        .agent
        .get(&format!(
            "/subscriptions/{sub}/resourcegroups/e2e-rg?api-version=2021-04-01"
        ))
        .await
        .unwrap();
    assert_eq!(get.status, StatusCode::OK);
    assert_eq!(get.json()["tags"]["team"], "agents");

    // POST action with its JSON answer.
    let keys = h
        .agent
        .send(
            Method::POST,
            &format!(
                "{}/providers/Microsoft.Storage/storageAccounts/demostore/listKeys?{API}",
                rg_path()
            ),
            &[],
            None,
        )
        .await
        .unwrap();
    assert_eq!(keys.status, StatusCode::OK);
    assert_eq!(keys.json()["keys"].as_array().unwrap().len(), 2);

    // DELETE answered as a long-running operation.
    let delete = h
        .agent
        .send(
            Method::DELETE,
            &format!(
                "{}/providers/Microsoft.Compute/virtualMachines/vm2?api-version=2024-07-01",
                rg_path()
            ),
            &[],
            None,
        )
        .await
        .unwrap();
    assert_eq!(delete.status, StatusCode::ACCEPTED);

    // Azure's own errors come back as Azure sent them.
    let missing = h
        .agent
        .get(&format!(
            "{}/providers/Microsoft.Storage/storageAccounts/nosuch?{API}",
            rg_path()
        ))
        .await
        .unwrap();
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json()["error"]["code"], "ResourceNotFound");
    let no_version = h
        .agent
        .get(&format!("/subscriptions/{sub}/resourcegroups"))
        .await
        .unwrap();
    assert_eq!(no_version.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        no_version.json()["error"]["code"],
        "MissingApiVersionParameter"
    );
    // Every answer carries Airlock's request id, and Azure's ids pass through.
    assert!(get.header(REQUEST_ID_HEADER).is_some());
    assert!(get.header("x-ms-request-id").is_some());
    h.shutdown().await;
}

#[tokio::test]
async fn client_credentials_never_reach_azure_and_the_gateway_token_does() {
    let h = Harness::start().await;
    let response = h
        .agent
        .send(
            Method::GET,
            &format!("{}?{API}", rg_path()),
            &[
                ("x-ms-authorization-auxiliary", "Bearer other-tenant-token"),
                ("connection", "x-private-hop"),
                ("x-private-hop", "1"),
                ("x-airlock-session", "s1"),
            ],
            None,
        )
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::OK);
    let requests = h.sim.requests();
    assert_eq!(requests.len(), 1);
    let headers = &requests[0].headers;
    assert_eq!(headers["authorization"], format!("Bearer {UPSTREAM_TOKEN}"));
    assert_eq!(headers.get_all("authorization").iter().count(), 1);
    for stripped in [
        "x-ms-authorization-auxiliary",
        "x-private-hop",
        "x-airlock-session",
        "connection",
    ] {
        assert!(headers.get(stripped).is_none(), "{stripped} reached Azure");
    }
    let everything = format!("{headers:?}");
    assert!(!everything.contains(&h.agent_token) && !everything.contains("other-tenant-token"));
    // The call can be joined with the Azure Activity Log.
    assert_eq!(
        headers["x-ms-client-request-id"],
        response.header(REQUEST_ID_HEADER).unwrap()
    );
    h.shutdown().await;
}

#[tokio::test]
async fn long_running_operations_are_polled_through_the_gateway() {
    let h = Harness::start().await;
    let body = Bytes::from_static(
        br#"{"location":"westeurope","sku":{"name":"Standard_LRS"},"kind":"StorageV2"}"#,
    );
    let account = format!(
        "{}/providers/Microsoft.Storage/storageAccounts/e2elro",
        rg_path()
    );
    let created = h
        .agent
        .send(Method::PUT, &format!("{account}?{API}"), &[], Some(body))
        .await
        .unwrap();
    assert_eq!(created.status, StatusCode::ACCEPTED);
    let base = h.gateway.url().to_owned();
    let async_op = created.header("azure-asyncoperation").unwrap().to_owned();
    let location = created.header("location").unwrap().to_owned();
    assert!(async_op.starts_with(&base), "{async_op}");
    assert!(location.starts_with(&base), "{location}");
    assert!(!async_op.contains(&h.sim.arm_url()));

    let mut states = Vec::new();
    loop {
        let poll = h.agent.get(&async_op).await.unwrap();
        assert_eq!(poll.status, StatusCode::OK);
        let state = poll.json()["status"].as_str().unwrap().to_owned();
        states.push(state.clone());
        if state != "InProgress" {
            break;
        }
        assert!(states.len() < 20, "operation never finished: {states:?}");
    }
    assert_eq!(states.last().unwrap(), "Succeeded");
    let final_result = h.agent.get(&location).await.unwrap();
    assert_eq!(final_result.status, StatusCode::OK);
    assert_eq!(final_result.json()["name"], "e2elro");
    let fetched = h.agent.get(&format!("{account}?{API}")).await.unwrap();
    assert_eq!(
        fetched.json()["properties"]["provisioningState"],
        "Succeeded"
    );
    // Every poll went through the gateway to Azure.
    assert!(
        h.sim
            .requests()
            .iter()
            .filter(|r| r.uri.path().contains("/asyncoperations/"))
            .count()
            >= 2
    );
    h.shutdown().await;
}

#[tokio::test]
async fn next_link_pagination_comes_back_through_the_gateway() {
    let h = Harness::start().await;
    let mut next = Some(format!(
        "{}/providers/Microsoft.Storage/storageAccounts?{API}",
        rg_path()
    ));
    let mut names = Vec::new();
    let mut pages = 0;
    while let Some(url) = next.take() {
        let page = h.agent.get(&url).await.unwrap();
        assert_eq!(page.status, StatusCode::OK, "{url}");
        let json = page.json();
        names.extend(
            json["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["name"].as_str().unwrap().to_owned()),
        );
        next = json["nextLink"].as_str().map(str::to_owned);
        if let Some(link) = &next {
            assert!(
                link.starts_with(h.gateway.url()),
                "nextLink not rewritten: {link}"
            );
        }
        pages += 1;
        assert!(pages < 20);
    }
    assert!(pages > 1, "the listing should span pages");
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        names.len(),
        "an account was listed twice: {names:?}"
    );
    assert!(names.contains(&airlock_sim::STORAGE_ACCOUNT.to_owned()));
    h.shutdown().await;
}

#[tokio::test]
async fn key_vault_is_reached_by_vault_host_name() {
    let h = Harness::start().await;
    let secret = h
        .agent
        .get(&format!(
            "{}/secrets/db-password?api-version=7.4",
            h.vault_url()
        ))
        .await
        .unwrap();
    assert_eq!(secret.status, StatusCode::OK, "{:?}", secret.body);
    // The secret's id points at the real vault, as Azure wrote it; the gateway
    // reached the vault host from its configuration.
    let request = h.sim.requests().pop().unwrap();
    assert_eq!(
        request
            .host
            .as_deref()
            .map(|h| h.split(':').next().unwrap_or_default()),
        Some("demo-vault.vault.localhost")
    );
    assert_eq!(
        request.headers["authorization"],
        format!("Bearer {UPSTREAM_TOKEN}")
    );
    h.shutdown().await;
}

#[tokio::test]
async fn headers_and_status_of_an_http2_tls_connection() {
    let h = Harness::start_with(Options {
        tls: true,
        ..Options::default()
    })
    .await;
    assert!(h.gateway.url().starts_with("https://localhost:"));
    let groups = h
        .agent
        .get(&format!(
            "/subscriptions/{}/resourcegroups?api-version=2021-04-01",
            airlock_sim::SUBSCRIPTION_ID
        ))
        .await
        .unwrap();
    assert_eq!(groups.status, StatusCode::OK);
    assert_eq!(
        groups.version,
        http::Version::HTTP_2,
        "ALPN should pick HTTP/2"
    );
    let secret = h
        .agent
        .get(&format!(
            "{}/secrets/db-password?api-version=7.4",
            h.vault_url()
        ))
        .await
        .unwrap();
    assert_eq!(
        secret.status,
        StatusCode::OK,
        "the certificate must cover vault subdomains"
    );
    // Upstream speaks HTTP/1.1 to the simulator regardless of the client's protocol.
    assert_eq!(h.sim.requests().len(), 2);
    h.shutdown().await;
}

/// The review's finding: Key Vault `id` fields read the internal upstream
/// (`http://demo-vault.vault.localhost:…`). They name the gateway's vault
/// host now, so a client following an `id` comes back through it.
#[tokio::test]
async fn key_vault_ids_name_the_gateway_not_the_upstream() {
    let h = Harness::start().await;
    let secret = h.agent.get(&h.secret_url()).await.unwrap();
    assert_eq!(secret.status, StatusCode::OK, "{:?}", secret.body);
    let id = secret.json()["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with(&h.vault_url()), "{id}");
    let listed = h
        .agent
        .get(&format!("{}/secrets?api-version=7.4", h.vault_url()))
        .await
        .unwrap();
    let body = String::from_utf8_lossy(&listed.body).into_owned();
    assert!(!body.contains(".vault.localhost"), "{body}");
    assert!(body.contains(&h.vault_url()), "{body}");
    // Following the id works: it is the gateway.
    let followed = h.agent.get(&format!("{id}?api-version=7.4")).await.unwrap();
    assert_eq!(followed.status, StatusCode::OK, "{:?}", followed.body);
    h.shutdown().await;
}
