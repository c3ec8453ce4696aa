//! ARM: the front door, resource groups, storage accounts, virtual machines,
//! long-running operations, paging and recording.

use std::time::Duration;

use airlock_sim::{
    RESOURCE_GROUP, STORAGE_ACCOUNT, STORAGE_ACCOUNTS, SUBSCRIPTION_ID, SimAzure, SimHandle,
    TENANT_ID,
};
use http::{Method, StatusCode};

use crate::client::{Answer, Http, TOKEN};

const STORAGE_API: &str = "api-version=2023-05-01";

async fn sim() -> SimHandle {
    SimAzure::builder()
        .expected_token(TOKEN)
        .start()
        .await
        .unwrap()
}

fn rg_url(sim: &SimHandle) -> String {
    format!(
        "{}/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}",
        sim.arm_url()
    )
}

fn assert_error(answer: &Answer, status: StatusCode, code: &str) -> serde_json::Value {
    assert_eq!(answer.status, status, "{:?}", answer.body);
    let json = answer.json();
    assert_eq!(json["error"]["code"], code, "{json}");
    json
}

#[tokio::test]
async fn api_version_is_required() {
    let sim = sim().await;
    let answer = Http::new()
        .get(&format!(
            "{}/subscriptions/{SUBSCRIPTION_ID}/resourcegroups",
            sim.arm_url()
        ))
        .await;
    let json = assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "MissingApiVersionParameter",
    );
    assert_eq!(
        json["error"]["message"],
        "The api-version query parameter (?api-version=) is required for all requests."
    );
    assert!(answer.header("x-ms-request-id").is_some());
    sim.shutdown().await;
}

#[tokio::test]
async fn missing_malformed_and_wrong_tokens_are_401() {
    let sim = sim().await;
    let http = Http::new();
    let url = format!("{}?api-version=2021-04-01", rg_url(&sim));

    let missing = http.send(Method::GET, &url, &[], None).await;
    let json = assert_error(&missing, StatusCode::UNAUTHORIZED, "AuthenticationFailed");
    assert_eq!(
        json["error"]["message"],
        "Authentication failed. The 'Authorization' header is missing."
    );
    assert_eq!(
        missing.header("www-authenticate").unwrap(),
        format!(
            "Bearer authorization_uri=\"https://login.windows.net/{TENANT_ID}\", error=\"invalid_token\", error_description=\"The authentication failed because of missing 'Authorization' header.\""
        )
    );

    let malformed = http
        .send(
            Method::GET,
            &url,
            &[("authorization", "Basic dXNlcjpwYXNz")],
            None,
        )
        .await;
    assert_error(&malformed, StatusCode::UNAUTHORIZED, "AuthenticationFailed");

    let wrong = http
        .send(
            Method::GET,
            &url,
            &[("authorization", "Bearer not-the-token")],
            None,
        )
        .await;
    assert_error(
        &wrong,
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
    );
    assert!(
        wrong
            .header("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_token\"")
    );

    assert_eq!(http.get(&url).await.status, StatusCode::OK);
    sim.shutdown().await;

    // Without an expected token, any bearer token will do.
    let open = SimAzure::builder().start().await.unwrap();
    let url = format!("{}?api-version=2021-04-01", rg_url(&open));
    let answer = http
        .send(
            Method::GET,
            &url,
            &[("authorization", "Bearer anything")],
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    open.shutdown().await;
}

#[tokio::test]
async fn request_and_correlation_ids() {
    let sim = sim().await;
    let http = Http::new();
    let url = format!("{}?api-version=2021-04-01", rg_url(&sim));
    let auth = format!("Bearer {TOKEN}");
    let first = http.get(&url).await;
    let second = http.get(&url).await;
    let ids = |a: &Answer| {
        (
            a.header("x-ms-request-id").unwrap().to_owned(),
            a.header("x-ms-correlation-request-id").unwrap().to_owned(),
        )
    };
    let ((request1, correlation1), (request2, correlation2)) = (ids(&first), ids(&second));
    assert_ne!(request1, request2);
    assert_ne!(correlation1, correlation2);
    assert!(uuid::Uuid::parse_str(&request1).is_ok());

    let headers = [
        ("authorization", auth.as_str()),
        ("x-ms-correlation-request-id", "my-correlation"),
        ("x-ms-client-request-id", "my-client-id"),
        ("x-ms-return-client-request-id", "true"),
    ];
    let answer = http.send(Method::GET, &url, &headers, None).await;
    assert_eq!(
        answer.header("x-ms-correlation-request-id"),
        Some("my-correlation")
    );
    assert_eq!(
        answer.header("x-ms-client-request-id"),
        Some("my-client-id")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn resource_group_lifecycle() {
    let sim = sim().await;
    let http = Http::new();
    let api = "api-version=2021-04-01";
    let group = format!(
        "{}/subscriptions/{SUBSCRIPTION_ID}/resourcegroups/team-rg",
        sim.arm_url()
    );

    let created = http
        .call(
            Method::PUT,
            &format!("{group}?{api}"),
            Some(r#"{"location":"northeurope","tags":{"team":"a"}}"#),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let json = created.json();
    assert_eq!(
        json["id"],
        format!("/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/team-rg")
    );
    assert_eq!(json["type"], "Microsoft.Resources/resourceGroups");
    assert_eq!(json["location"], "northeurope");
    assert_eq!(json["properties"]["provisioningState"], "Succeeded");
    assert_eq!(json["tags"]["team"], "a");

    let updated = http
        .call(
            Method::PUT,
            &format!("{group}?{api}"),
            Some(r#"{"location":"northeurope","tags":{}}"#),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK);
    let moved = http
        .call(
            Method::PUT,
            &format!("{group}?{api}"),
            Some(r#"{"location":"eastus"}"#),
        )
        .await;
    assert_error(&moved, StatusCode::CONFLICT, "InvalidResourceGroupLocation");
    let no_location = http
        .call(
            Method::PUT,
            &format!("{group}?{api}"),
            Some(r#"{"tags":{}}"#),
        )
        .await;
    assert_error(&no_location, StatusCode::BAD_REQUEST, "LocationRequired");
    let not_json = http
        .call(Method::PUT, &format!("{group}?{api}"), Some("{location:"))
        .await;
    assert_error(&not_json, StatusCode::BAD_REQUEST, "InvalidRequestContent");

    // Paths compare case-insensitively.
    let upper = format!(
        "{}/SUBSCRIPTIONS/{SUBSCRIPTION_ID}/ResourceGroups/TEAM-RG?{api}",
        sim.arm_url()
    );
    assert_eq!(http.get(&upper).await.json()["name"], "team-rg");
    assert_eq!(
        http.call(Method::HEAD, &format!("{group}?{api}"), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );

    let list = http
        .get(&format!(
            "{}/subscriptions/{SUBSCRIPTION_ID}/resourcegroups?{api}",
            sim.arm_url()
        ))
        .await
        .json();
    let names: Vec<&str> = list["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [RESOURCE_GROUP, "team-rg"]);

    // Deletion is long-running, polled on an absolute Location on the simulator.
    let deleted = http
        .call(Method::DELETE, &format!("{group}?{api}"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED);
    let location = deleted.header("location").unwrap().to_owned();
    assert!(
        location.starts_with(&format!(
            "{}/subscriptions/{SUBSCRIPTION_ID}/operationresults/",
            sim.arm_url()
        )),
        "{location}"
    );
    assert!(location.ends_with(&format!("?{api}")));
    assert_eq!(deleted.header("retry-after"), Some("0"));
    assert_eq!(
        http.get(&format!("{group}?{api}")).await.json()["properties"]["provisioningState"],
        "Deleting"
    );

    let poll = http.get(&location).await;
    assert_eq!(poll.status, StatusCode::ACCEPTED);
    assert_eq!(poll.header("location"), Some(location.as_str()));
    assert_eq!(http.get(&location).await.status, StatusCode::OK);
    let gone = http.get(&format!("{group}?{api}")).await;
    let json = assert_error(&gone, StatusCode::NOT_FOUND, "ResourceGroupNotFound");
    assert_eq!(
        json["error"]["message"],
        "Resource group 'team-rg' could not be found."
    );
    assert_eq!(
        http.call(Method::HEAD, &format!("{group}?{api}"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_error(
        &http
            .call(Method::DELETE, &format!("{group}?{api}"), None)
            .await,
        StatusCode::NOT_FOUND,
        "ResourceGroupNotFound",
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn deleting_a_group_removes_its_contents() {
    let sim = SimAzure::builder()
        .expected_token(TOKEN)
        .lro_polls(0)
        .start()
        .await
        .unwrap();
    let http = Http::new();
    let deleted = http
        .call(
            Method::DELETE,
            &format!("{}?api-version=2021-04-01", rg_url(&sim)),
            None,
        )
        .await;
    assert_eq!(
        http.get(deleted.header("location").unwrap()).await.status,
        StatusCode::OK
    );
    let accounts = http.get(&format!("{}/subscriptions/{SUBSCRIPTION_ID}/providers/Microsoft.Storage/storageAccounts?{STORAGE_API}", sim.arm_url())).await;
    assert_eq!(accounts.json()["value"], serde_json::json!([]));
    let vms = http.get(&format!("{}/subscriptions/{SUBSCRIPTION_ID}/providers/Microsoft.Compute/virtualMachines?api-version=2024-07-01", sim.arm_url())).await;
    assert_eq!(vms.json()["value"], serde_json::json!([]));
    sim.shutdown().await;
}

#[tokio::test]
async fn storage_account_creation_is_a_long_running_operation() {
    let sim = sim().await;
    let http = Http::new();
    // A lower-case provider path works as well.
    let account = format!(
        "{}/subscriptions/{SUBSCRIPTION_ID}/resourcegroups/{RESOURCE_GROUP}/providers/microsoft.storage/storageaccounts/newstore",
        sim.arm_url()
    );
    let body = r#"{"location":"westeurope","sku":{"name":"Standard_LRS"},"kind":"StorageV2"}"#;
    let created = http
        .call(Method::PUT, &format!("{account}?{STORAGE_API}"), Some(body))
        .await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{:?}", created.body);
    assert_eq!(created.header("retry-after"), Some("0"));
    let operations = format!(
        "{}/subscriptions/{SUBSCRIPTION_ID}/providers/Microsoft.Storage/locations/westeurope",
        sim.arm_url()
    );
    let async_operation = created.header("azure-asyncoperation").unwrap().to_owned();
    let location = created.header("location").unwrap().to_owned();
    assert!(
        async_operation.starts_with(&format!("{operations}/asyncoperations/")),
        "{async_operation}"
    );
    assert!(
        location.starts_with(&format!("{operations}/operationResults/")),
        "{location}"
    );
    assert!(async_operation.ends_with(&format!("?{STORAGE_API}")));

    let creating = http.get(&format!("{account}?{STORAGE_API}")).await;
    assert_eq!(creating.status, StatusCode::OK);
    assert_eq!(
        creating.json()["properties"]["provisioningState"],
        "Creating"
    );

    let first = http.get(&async_operation).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.json()["status"], "InProgress");
    let second = http.get(&async_operation).await.json();
    assert_eq!(second["status"], "Succeeded");
    assert!(second["endTime"].is_string());

    let result = http.get(&location).await;
    assert_eq!(result.status, StatusCode::OK);
    let json = result.json();
    assert_eq!(json["name"], "newstore");
    assert_eq!(json["type"], "Microsoft.Storage/storageAccounts");
    assert_eq!(
        json["id"],
        format!(
            "/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Storage/storageAccounts/newstore"
        )
    );
    let fetched = http.get(&format!("{account}?{STORAGE_API}")).await;
    assert_eq!(
        fetched.json()["properties"]["provisioningState"],
        "Succeeded"
    );

    // An existing account is updated synchronously.
    let again = http
        .call(Method::PUT, &format!("{account}?{STORAGE_API}"), Some(body))
        .await;
    assert_eq!(again.status, StatusCode::OK);
    sim.shutdown().await;
}

#[tokio::test]
async fn location_polling_reports_202_until_done() {
    let sim = SimAzure::builder()
        .expected_token(TOKEN)
        .lro_polls(2)
        .start()
        .await
        .unwrap();
    let http = Http::new();
    let account = format!(
        "{}/providers/Microsoft.Storage/storageAccounts/polled?{STORAGE_API}",
        rg_url(&sim)
    );
    let created = http
        .call(Method::PUT, &account, Some(r#"{"location":"westeurope"}"#))
        .await;
    let location = created.header("location").unwrap().to_owned();
    for _ in 0..2 {
        let poll = http.get(&location).await;
        assert_eq!(poll.status, StatusCode::ACCEPTED);
        assert_eq!(poll.header("location"), Some(location.as_str()));
        assert!(poll.body.is_empty());
    }
    let done = http.get(&location).await;
    assert_eq!(done.status, StatusCode::OK);
    assert_eq!(done.json()["properties"]["provisioningState"], "Succeeded");
    sim.shutdown().await;
}

#[tokio::test]
async fn storage_errors() {
    let sim = sim().await;
    let http = Http::new();
    let accounts = format!(
        "{}/providers/Microsoft.Storage/storageAccounts",
        rg_url(&sim)
    );
    let missing = http.get(&format!("{accounts}/nosuch?{STORAGE_API}")).await;
    let json = assert_error(&missing, StatusCode::NOT_FOUND, "ResourceNotFound");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Microsoft.Storage/storageAccounts/nosuch")
    );
    let bad_name = http
        .call(
            Method::PUT,
            &format!("{accounts}/Bad_Name?{STORAGE_API}"),
            Some(r#"{"location":"westeurope"}"#),
        )
        .await;
    assert_error(&bad_name, StatusCode::BAD_REQUEST, "AccountNameInvalid");
    let no_group = http.get(&format!("{}/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/nope/providers/Microsoft.Storage/storageAccounts?{STORAGE_API}", sim.arm_url())).await;
    assert_error(&no_group, StatusCode::NOT_FOUND, "ResourceGroupNotFound");
    let keys_by_get = http
        .get(&format!(
            "{accounts}/{STORAGE_ACCOUNT}/listKeys?{STORAGE_API}"
        ))
        .await;
    assert_error(
        &keys_by_get,
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
    );
    assert_eq!(keys_by_get.header("allow"), Some("POST"));
    sim.shutdown().await;
}

/// Follows `nextLink` from `first`; returns the names and the number of pages.
async fn all_pages(http: &Http, sim: &SimHandle, first: String) -> (Vec<String>, usize) {
    let (mut names, mut pages, mut next) = (Vec::new(), 0, Some(first));
    while let Some(url) = next.take() {
        let page = http.get(&url).await;
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
            assert!(link.starts_with(&sim.arm_url()), "{link}");
            assert!(
                link.contains(STORAGE_API) && link.contains("$skiptoken="),
                "{link}"
            );
        }
        pages += 1;
        assert!(pages < 10);
    }
    (names, pages)
}

#[tokio::test]
async fn storage_lists_page_through_next_links() {
    let sim = sim().await;
    let http = Http::new();
    let mut expected: Vec<String> = STORAGE_ACCOUNTS.iter().map(|s| (*s).to_owned()).collect();
    expected.sort();
    for scope in [
        rg_url(&sim),
        format!("{}/subscriptions/{SUBSCRIPTION_ID}", sim.arm_url()),
    ] {
        let (mut names, pages) = all_pages(
            &http,
            &sim,
            format!("{scope}/providers/Microsoft.Storage/storageAccounts?{STORAGE_API}"),
        )
        .await;
        assert_eq!(pages, 3, "5 accounts in pages of 2");
        names.sort();
        assert_eq!(names, expected, "every account exactly once");
    }
    let bigger = SimAzure::builder().page_size(10).start().await.unwrap();
    let (names, pages) = all_pages(
        &http,
        &bigger,
        format!(
            "{}/providers/Microsoft.Storage/storageAccounts?{STORAGE_API}",
            rg_url(&bigger)
        ),
    )
    .await;
    assert_eq!((names.len(), pages), (5, 1));
    bigger.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn absolute_urls_use_the_simulator_base_not_the_host_header() {
    let sim = sim().await;
    let http = Http::new();
    let auth = format!("Bearer {TOKEN}");
    let headers = [
        ("authorization", auth.as_str()),
        ("host", "management.azure.com"),
    ];
    let url = format!(
        "{}/providers/Microsoft.Storage/storageAccounts?{STORAGE_API}",
        rg_url(&sim)
    );
    let page = http.send(Method::GET, &url, &headers, None).await;
    assert!(
        page.json()["nextLink"]
            .as_str()
            .unwrap()
            .starts_with(&sim.arm_url())
    );
    let account = format!(
        "{}/providers/Microsoft.Storage/storageAccounts/hosted?{STORAGE_API}",
        rg_url(&sim)
    );
    let created = http
        .send(
            Method::PUT,
            &account,
            &headers,
            Some(r#"{"location":"westeurope"}"#),
        )
        .await;
    assert!(
        created
            .header("azure-asyncoperation")
            .unwrap()
            .starts_with(&sim.arm_url())
    );
    assert!(
        created
            .header("location")
            .unwrap()
            .starts_with(&sim.arm_url())
    );
    assert_eq!(
        sim.requests()[0].host.as_deref(),
        Some("management.azure.com")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn list_keys_shape() {
    let sim = sim().await;
    let http = Http::new();
    let url = format!(
        "{}/providers/Microsoft.Storage/storageAccounts/{STORAGE_ACCOUNT}/listKeys?{STORAGE_API}",
        rg_url(&sim)
    );
    let answer = http.call(Method::POST, &url, None).await;
    assert_eq!(answer.status, StatusCode::OK);
    let json = answer.json();
    let keys = json["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    for (key, name) in keys.iter().zip(["key1", "key2"]) {
        assert_eq!(key["keyName"], name);
        assert_eq!(key["permissions"], "FULL");
        assert!(key["creationTime"].as_str().unwrap().ends_with('Z'));
        let value = key["value"].as_str().unwrap();
        assert_eq!(value.len(), 88);
        assert!(value.ends_with("=="));
    }
    assert_ne!(keys[0]["value"], keys[1]["value"]);
    // The same account always has the same keys.
    assert_eq!(http.call(Method::POST, &url, None).await.json(), json);
    sim.shutdown().await;
}

#[tokio::test]
async fn virtual_machines_get_list_and_delete() {
    let sim = sim().await;
    let http = Http::new();
    let api = "api-version=2024-07-01";
    let machines = format!(
        "{}/providers/Microsoft.Compute/virtualMachines",
        rg_url(&sim)
    );

    let vm = http.get(&format!("{machines}/vm1?{api}")).await;
    assert_eq!(vm.status, StatusCode::OK);
    let json = vm.json();
    assert_eq!(json["name"], "vm1");
    assert_eq!(json["type"], "Microsoft.Compute/virtualMachines");
    assert_eq!(json["location"], "westeurope");
    assert_eq!(
        json["id"],
        format!(
            "/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Compute/virtualMachines/vm1"
        )
    );
    assert!(uuid::Uuid::parse_str(json["properties"]["vmId"].as_str().unwrap()).is_ok());
    assert_eq!(
        json["properties"]["hardwareProfile"]["vmSize"],
        "Standard_B2s"
    );
    assert_eq!(json["properties"]["provisioningState"], "Succeeded");

    let list = http.get(&format!("{machines}?{api}")).await.json();
    let names: Vec<&str> = list["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, airlock_sim::VIRTUAL_MACHINES);

    let deleted = http
        .call(Method::DELETE, &format!("{machines}/VM2?{api}"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED);
    let operations = format!(
        "{}/subscriptions/{SUBSCRIPTION_ID}/providers/Microsoft.Compute/locations/westeurope",
        sim.arm_url()
    );
    let status = deleted.header("azure-asyncoperation").unwrap().to_owned();
    assert!(
        status.starts_with(&format!("{operations}/operations/")),
        "{status}"
    );
    assert!(
        deleted
            .header("location")
            .unwrap()
            .starts_with(&format!("{operations}/operationResults/"))
    );
    assert_eq!(
        http.get(&format!("{machines}/vm2?{api}")).await.json()["properties"]["provisioningState"],
        "Deleting"
    );
    assert_eq!(http.get(&status).await.json()["status"], "InProgress");
    assert_eq!(http.get(&status).await.json()["status"], "Succeeded");
    assert_eq!(
        http.get(deleted.header("location").unwrap()).await.status,
        StatusCode::OK
    );
    assert_error(
        &http.get(&format!("{machines}/vm2?{api}")).await,
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
    );
    let left = http.get(&format!("{machines}?{api}")).await.json();
    assert_eq!(left["value"].as_array().unwrap().len(), 1);
    let put = http
        .call(Method::PUT, &format!("{machines}/vm1?{api}"), Some("{}"))
        .await;
    assert_error(&put, StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed");
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_and_subscriptions() {
    let sim = sim().await;
    let http = Http::new();
    let unknown_type = http
        .get(&format!(
            "{}/providers/Microsoft.Storage/blobThings/x?api-version=2023-01-01",
            rg_url(&sim)
        ))
        .await;
    let json = assert_error(&unknown_type, StatusCode::NOT_FOUND, "InvalidResourceType");
    assert_eq!(
        json["error"]["message"],
        "The resource type 'blobThings' could not be found in the namespace 'Microsoft.Storage' for api version '2023-01-01'."
    );
    let unknown_path = http
        .get(&format!(
            "{}/nothing/here?api-version=2023-01-01",
            sim.arm_url()
        ))
        .await;
    assert_error(&unknown_path, StatusCode::NOT_FOUND, "NotFound");
    let other_subscription = http.get(&format!("{}/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups?api-version=2021-04-01", sim.arm_url())).await;
    assert_error(
        &other_subscription,
        StatusCode::NOT_FOUND,
        "SubscriptionNotFound",
    );
    let subscription = http
        .get(&format!(
            "{}/subscriptions/{SUBSCRIPTION_ID}?api-version=2022-12-01",
            sim.arm_url()
        ))
        .await
        .json();
    assert_eq!(subscription["tenantId"], TENANT_ID);
    let unknown_operation = http
        .get(&format!(
            "{}/subscriptions/{SUBSCRIPTION_ID}/operationresults/nope?api-version=2021-04-01",
            sim.arm_url()
        ))
        .await;
    assert_error(
        &unknown_operation,
        StatusCode::NOT_FOUND,
        "OperationNotFound",
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn every_request_is_recorded_with_headers_and_body() {
    let sim = sim().await;
    let http = Http::new();
    let group = format!(
        "{}/subscriptions/{SUBSCRIPTION_ID}/resourcegroups/recorded-rg?api-version=2021-04-01",
        sim.arm_url()
    );
    let body = r#"{"location":"westeurope"}"#;
    http.send(Method::PUT, &group, &[("x-custom", "1")], Some(body))
        .await;
    http.call(Method::PUT, &group, Some(body)).await;

    let requests = sim.requests();
    assert_eq!(requests.len(), 2, "the refused request is recorded too");
    assert_eq!(requests[0].method, Method::PUT);
    assert_eq!(
        requests[0].uri.to_string(),
        format!(
            "/subscriptions/{SUBSCRIPTION_ID}/resourcegroups/recorded-rg?api-version=2021-04-01"
        )
    );
    assert_eq!(requests[0].headers["x-custom"], "1");
    assert!(requests[0].headers.get("authorization").is_none());
    assert_eq!(
        requests[0].host.as_deref(),
        Some(sim.addr().to_string().as_str())
    );
    assert_eq!(requests[1].body, body.as_bytes());
    assert_eq!(
        requests[1].headers["authorization"],
        format!("Bearer {TOKEN}")
    );

    sim.clear_requests();
    assert!(sim.requests().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn shutdown_cuts_a_response_delay_short_and_answers_in_flight_requests() {
    let sim = sim().await;
    sim.set_response_delay(Duration::from_secs(3600));
    let http = Http::new();
    let url = format!("{}?api-version=2021-04-01", rg_url(&sim));
    let in_flight = tokio::spawn(async move { http.get(&url).await });
    while sim.requests().is_empty() {
        tokio::task::yield_now().await;
    }
    sim.shutdown().await;
    assert_eq!(in_flight.await.unwrap().status, StatusCode::OK);
}

/// Role assignments per principal: a Reader on the resource group reads its
/// VMs and gets ARM's own 403 `AuthorizationFailed` deleting one, reads
/// nothing outside the group; a Contributor assignment lets the delete
/// through; a principal without assignments is unrestricted.
#[tokio::test]
async fn role_assignments_limit_the_principal_they_name() {
    use airlock_sim::{DevIssuer, Role, TokenSpec};

    let issuer = DevIssuer::start(TENANT_ID).await.unwrap();
    let sim = SimAzure::builder()
        .trust_issuer(issuer.verifier())
        .start()
        .await
        .unwrap();
    let rg = format!("/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}");
    let alice = TokenSpec::approver();
    sim.assign_role(&alice.object_id, Role::Reader, &rg);
    let http = Http::new();
    let as_ = |spec: &TokenSpec| {
        format!(
            "Bearer {}",
            issuer.mint(&spec.clone().audience("https://management.azure.com"))
        )
    };
    let vm = format!(
        "{}{rg}/providers/Microsoft.Compute/virtualMachines/vm1?api-version=2024-07-01",
        sim.arm_url()
    );
    let alice_token = as_(&alice);
    let read = http
        .send(Method::GET, &vm, &[("authorization", &alice_token)], None)
        .await;
    assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);
    let delete = http
        .send(
            Method::DELETE,
            &vm,
            &[("authorization", &alice_token)],
            None,
        )
        .await;
    let json = assert_error(&delete, StatusCode::FORBIDDEN, "AuthorizationFailed");
    let message = json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("The client '{}'", alice.object_id))
            && message.contains("'Microsoft.Compute/virtualMachines/delete'"),
        "{message}"
    );
    let elsewhere = http
        .send(
            Method::GET,
            &format!(
                "{}/subscriptions/{SUBSCRIPTION_ID}/resourceGroups?api-version=2021-04-01",
                sim.arm_url()
            ),
            &[("authorization", &alice_token)],
            None,
        )
        .await;
    assert_error(&elsewhere, StatusCode::FORBIDDEN, "AuthorizationFailed");

    // Contributor at the group lets the delete through.
    sim.assign_role(&alice.object_id, Role::Contributor, &rg);
    let deleted = http
        .send(
            Method::DELETE,
            &vm,
            &[("authorization", &alice_token)],
            None,
        )
        .await;
    assert!(deleted.status.is_success(), "{:?}", deleted.body);
    // Someone without assignments is not limited.
    let agent = as_(&TokenSpec::agent());
    let vm2 = vm.replace("vm1", "vm2");
    let free = http
        .send(Method::DELETE, &vm2, &[("authorization", &agent)], None)
        .await;
    assert!(free.status.is_success(), "{:?}", free.body);
    sim.shutdown().await;
    issuer.shutdown().await;
}
