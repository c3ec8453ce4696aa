//! Policy through the gateway: every request is classified and decided, and
//! no smuggling technique gets a denied operation to Azure.

#![allow(clippy::unwrap_used)]

use airlock_tests::{Harness, Options, assert_airlock_error, raw, rg_path};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;

/// Everything is allowed except deleting VMs and reading secrets.
const POLICY: &str = r#"
[[rule]]
name = "everything"
effect = "allow"
actions = ["*"]
data_actions = ["*"]

[[rule]]
name = "no-vm-delete"
effect = "deny"
actions = ["Microsoft.Compute/virtualMachines/delete"]
reason = "VM deletion is not delegated"

[[rule]]
name = "no-secret-values"
effect = "deny"
data_actions = ["Microsoft.KeyVault/vaults/secrets/getSecret/action"]
"#;

async fn harness() -> Harness {
    Harness::start_with(Options {
        policy: Some(POLICY.into()),
        ..Options::default()
    })
    .await
}

fn vm_path(vm: &str) -> String {
    format!(
        "{}/providers/Microsoft.Compute/virtualMachines/{vm}",
        rg_path()
    )
}

/// Sends a raw HTTP/1.1 request with the agent's token; returns the status line's code.
async fn raw_status(
    h: &Harness,
    method: &str,
    target: &str,
    extra_headers: &str,
    body: &str,
) -> (u16, String) {
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n{extra_headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        h.agent_token,
        body.len()
    );
    let answer = raw(h, &request).await;
    let code = answer.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, answer)
}

#[tokio::test]
async fn a_denied_operation_names_rule_and_operation_and_never_reaches_azure() {
    let h = harness().await;
    let read = h
        .agent
        .get(&format!("{}?api-version=2024-07-01", vm_path("vm1")))
        .await
        .unwrap();
    assert_eq!(read.status, StatusCode::OK);
    let delete = h
        .agent
        .send(
            Method::DELETE,
            &format!("{}?api-version=2024-07-01", vm_path("vm1")),
            &[],
            None,
        )
        .await
        .unwrap();
    let json = assert_airlock_error(&delete, StatusCode::FORBIDDEN, "AirlockPolicyDenied");
    assert_eq!(json["error"]["airlock"]["rule"], "no-vm-delete");
    assert_eq!(
        json["error"]["airlock"]["operation"],
        "Microsoft.Compute/virtualMachines/delete"
    );
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with("is denied by rule 'no-vm-delete': VM deletion is not delegated"),
        "{json}"
    );
    assert_eq!(h.sim.requests().len(), 1, "only the read reached Azure");
    h.shutdown().await;
}

#[tokio::test]
async fn path_tricks_are_denied_or_rejected_never_forwarded() {
    let h = harness().await;
    let api = "api-version=2024-07-01";
    let rg = rg_path();
    let cases: Vec<(String, &str, u16)> = vec![
        // Case differences classify as the same operation: denied by policy.
        (format!("{}?{api}", vm_path("vm1").to_uppercase()), "", 403),
        (format!("{}/?{api}", vm_path("vm1")), "", 403),
        // Smuggled separators and dot segments: rejected outright.
        (
            format!("{rg}/providers/Microsoft.Compute/virtualMachines%2Fvm1?{api}"),
            "",
            400,
        ),
        (
            format!("{rg}/providers/Microsoft.Compute/virtualMachines%2fvm1?{api}"),
            "",
            400,
        ),
        (
            format!("{rg}/providers/Microsoft.Compute/virtualMachines%252Fvm1?{api}"),
            "",
            400,
        ),
        (
            format!("{rg}/providers/Microsoft.Compute//virtualMachines/vm1?{api}"),
            "",
            400,
        ),
        (
            format!("{rg}/providers/Microsoft.Compute/virtualMachines/x/../vm1?{api}"),
            "",
            400,
        ),
        (
            format!(
                "{rg}/providers/Microsoft.Compute/virtualMachines/%2e%2e/virtualMachines/vm1?{api}"
            ),
            "",
            400,
        ),
        (
            format!("{rg}/providers/Microsoft.Compute/virtualMachines/vm1;x=1?{api}"),
            "",
            400,
        ),
        (
            format!("{rg}/providers/Microsoft.Compute/virtualMachines/vm1%5C?{api}"),
            "",
            400,
        ),
        // api-version missing or given twice.
        (vm_path("vm1"), "", 400),
        (
            format!("{}?{api}&api-version=2015-01-01", vm_path("vm1")),
            "",
            400,
        ),
    ];
    for (target, headers, expected) in &cases {
        let (code, answer) = raw_status(&h, "DELETE", target, headers, "").await;
        assert_eq!(code, *expected, "DELETE {target}\n{answer}");
    }
    // Method override headers on a POST are rejected, whatever they say.
    for header in [
        "X-HTTP-Method-Override",
        "X-HTTP-Method",
        "X-Method-Override",
    ] {
        let (code, answer) = raw_status(
            &h,
            "POST",
            &format!("{}?{api}", vm_path("vm1")),
            &format!("{header}: DELETE\r\n"),
            "",
        )
        .await;
        assert_eq!(code, 400, "{header}\n{answer}");
    }
    assert!(
        h.sim.requests().is_empty(),
        "nothing may reach Azure: {:?}",
        h.sim
            .requests()
            .iter()
            .map(|r| r.uri.to_string())
            .collect::<Vec<_>>()
    );
    h.shutdown().await;
}

/// Request smuggling: a request that sends both `Content-Length: 0` and
/// `Transfer-Encoding: chunked` is one request whose body is the chunks
/// (RFC 9112 §6.3), so a request hidden in that body is never classified,
/// decided or forwarded on its own; nor does the connection go on after it.
#[tokio::test]
async fn a_request_hidden_in_a_chunked_body_is_never_a_request_of_its_own() {
    let h = harness().await;
    let hidden = format!(
        "DELETE {} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\n\r\n",
        vm_path("vm1"),
        h.agent_token
    );
    let start = vm_path("vm1").replace("?api-version", "/start?api-version");
    for chunked in [
        format!("{:x}\r\n{hidden}\r\n0\r\n\r\n", hidden.len()),
        // The hidden request right after the end of an empty chunked body.
        format!("0\r\n\r\n{hidden}"),
    ] {
        let request = format!(
            "POST {start} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{chunked}",
            h.agent_token
        );
        let answer = raw(&h, &request).await;
        assert!(!answer.is_empty(), "no answer");
        assert_eq!(
            answer.matches("HTTP/1.1 ").count(),
            1,
            "one answer on the connection: {answer}"
        );
    }
    assert!(
        h.sim
            .requests()
            .iter()
            .all(|r| r.method != http::Method::DELETE),
        "a hidden DELETE reached Azure"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn carried_operations_are_decided_too() {
    let h = harness().await;
    let api = "api-version=2020-06-01";
    let batch = json!({"requests": [
        {"httpMethod": "GET", "name": "1", "url": format!("https://management.azure.com{}?api-version=2024-07-01", vm_path("vm2"))},
        {"httpMethod": "DELETE", "name": "2", "url": format!("https://management.azure.com{}?api-version=2024-07-01", vm_path("vm1"))},
    ]});
    let response = h
        .agent
        .send(
            Method::POST,
            &format!("/batch?{api}"),
            &[("content-type", "application/json")],
            Some(Bytes::from(batch.to_string())),
        )
        .await
        .unwrap();
    let json = assert_airlock_error(&response, StatusCode::FORBIDDEN, "AirlockPolicyDenied");
    assert_eq!(json["error"]["airlock"]["rule"], "no-vm-delete");

    // A resource-group delete deletes the VMs in it.
    let rg_delete = h
        .agent
        .send(
            Method::DELETE,
            &format!("{}?api-version=2021-04-01", rg_path()),
            &[],
            None,
        )
        .await
        .unwrap();
    assert_airlock_error(&rg_delete, StatusCode::FORBIDDEN, "AirlockPolicyDenied");

    // A Complete-mode deployment deletes whatever its template does not list.
    let deployment = json!({"properties": {"mode": "Complete", "template": {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0", "resources": []}}});
    let deployed = h
        .agent
        .send(
            Method::PUT,
            &format!(
                "{}/providers/Microsoft.Resources/deployments/wipe?api-version=2024-03-01",
                rg_path()
            ),
            &[("content-type", "application/json")],
            Some(Bytes::from(deployment.to_string())),
        )
        .await
        .unwrap();
    assert_airlock_error(&deployed, StatusCode::FORBIDDEN, "AirlockPolicyDenied");

    // So does a deployment stack that deletes what it stops managing, and
    // deleting a stack with the resources it manages.
    let stack = format!(
        "{}/providers/Microsoft.Resources/deploymentStacks/s1?api-version=2024-03-01",
        rg_path()
    );
    let stacked = json!({"properties": {"actionOnUnmanage": {"resources": "delete"},
        "denySettings": {"mode": "none"}, "template": {"resources": []}}});
    let put = h
        .agent
        .send(
            Method::PUT,
            &stack,
            &[("content-type", "application/json")],
            Some(Bytes::from(stacked.to_string())),
        )
        .await
        .unwrap();
    assert_airlock_error(&put, StatusCode::FORBIDDEN, "AirlockPolicyDenied");
    let delete = h
        .agent
        .send(
            Method::DELETE,
            &format!("{stack}&unmanageAction.Resources=delete"),
            &[],
            None,
        )
        .await
        .unwrap();
    assert_airlock_error(&delete, StatusCode::FORBIDDEN, "AirlockPolicyDenied");

    // Moving a VM out of the group deletes it at the source.
    let target_rg = format!(
        "/subscriptions/{}/resourceGroups/elsewhere",
        airlock_sim::SUBSCRIPTION_ID
    );
    let moved = h
        .agent
        .send(
            Method::POST,
            &format!("{}/moveResources?api-version=2021-04-01", rg_path()),
            &[("content-type", "application/json")],
            Some(Bytes::from(
                json!({"targetResourceGroup": target_rg, "resources": [vm_path("vm1")]})
                    .to_string(),
            )),
        )
        .await
        .unwrap();
    assert_airlock_error(&moved, StatusCode::FORBIDDEN, "AirlockPolicyDenied");

    // An unparseable batch is a 400, not a pass.
    let garbage = h
        .agent
        .send(
            Method::POST,
            &format!("/batch?{api}"),
            &[],
            Some(Bytes::from_static(b"{not json")),
        )
        .await
        .unwrap();
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
    assert!(h.sim.requests().is_empty());
    h.shutdown().await;
}

#[tokio::test]
async fn data_actions_are_decided_on_the_vault_host() {
    let h = harness().await;
    let secret = h.agent.get(&h.secret_url()).await.unwrap();
    let json = assert_airlock_error(&secret, StatusCode::FORBIDDEN, "AirlockPolicyDenied");
    assert_eq!(json["error"]["airlock"]["rule"], "no-secret-values");
    let upper = h
        .agent
        .get(&format!(
            "{}/SECRETS/{}?api-version=7.4",
            h.vault_url(),
            airlock_sim::SECRET_NAME
        ))
        .await
        .unwrap();
    assert_airlock_error(&upper, StatusCode::FORBIDDEN, "AirlockPolicyDenied");
    let list = h
        .agent
        .get(&format!("{}/secrets?api-version=7.4", h.vault_url()))
        .await
        .unwrap();
    assert_eq!(
        list.status,
        StatusCode::OK,
        "listing metadata is another data action"
    );
    assert_eq!(h.sim.requests().len(), 1);
    h.shutdown().await;
}

#[tokio::test]
async fn no_matching_rule_denies() {
    let h = Harness::start_with(Options {
        policy: Some(
            "[[rule]]\nname = \"reads\"\neffect = \"allow\"\nactions = [\"*/read\"]\n".into(),
        ),
        ..Options::default()
    })
    .await;
    let write = h
        .agent
        .send(
            Method::PUT,
            &format!("{}?api-version=2021-04-01", rg_path()),
            &[],
            Some(Bytes::from_static(br#"{"location":"westeurope"}"#)),
        )
        .await
        .unwrap();
    let json = assert_airlock_error(&write, StatusCode::FORBIDDEN, "AirlockPolicyDenied");
    assert_eq!(json["error"]["airlock"]["rule"], "no-matching-rule");
    assert!(h.sim.requests().is_empty());
    h.shutdown().await;
}

#[tokio::test]
async fn a_reloaded_policy_decides_the_next_request_and_a_broken_one_is_refused() {
    let h = Harness::start_with(Options {
        policy: Some(
            "[[rule]]\nname = \"reads\"\neffect = \"allow\"\nactions = [\"*/read\"]\n".into(),
        ),
        ..Options::default()
    })
    .await;
    let start_url = format!("{}/start?api-version=2024-07-01", vm_path("vm1"));
    let start = || h.agent.send(Method::POST, &start_url, &[], None);
    assert_airlock_error(
        &start().await.unwrap(),
        StatusCode::FORBIDDEN,
        "AirlockPolicyDenied",
    );

    let file = h.dir.path().join("policy.toml");
    std::fs::write(&file, "[[rule]]\nname = \"operators\"\neffect = \"allow\"\nactions = [\"*/read\", \"Microsoft.Compute/virtualMachines/start/action\"]\n").unwrap();
    h.gateway.reload_policy().unwrap();
    assert_ne!(
        start().await.unwrap().status,
        StatusCode::FORBIDDEN,
        "the new policy allows starting VMs"
    );

    std::fs::write(&file, "[[rule]]\nname = \"broken\"\neffect = \"allow\"\n").unwrap();
    let error = h.gateway.reload_policy().unwrap_err().to_string();
    assert!(error.contains("policy.toml:1: rule 'broken'"), "{error}");
    assert_ne!(
        start().await.unwrap().status,
        StatusCode::FORBIDDEN,
        "the running policy stays"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_request_that_needs_approval_reaches_azure_only_after_approval() {
    let h = Harness::start_with(Options {
        policy: Some(
            "[[rule]]\nname = \"all\"\neffect = \"allow\"\nactions = [\"*\"]\n\n[[rule]]\nname = \"ask-for-rg-writes\"\neffect = \"approve\"\nactions = [\"Microsoft.Resources/subscriptions/resourceGroups/write\"]\n[rule.approval]\ngroups = [\"approvers\"]\n"
                .into(),
        ),
        ..Options::default()
    })
    .await;
    let write = h
        .agent
        .send(
            Method::PUT,
            &format!("{}?api-version=2021-04-01", rg_path()),
            &[],
            Some(Bytes::from_static(br#"{"location":"westeurope"}"#)),
        )
        .await
        .unwrap();
    // A PUT waits as an operation: 202 at once, and nothing reaches Azure.
    assert_eq!(write.status, StatusCode::ACCEPTED, "{:?}", write.body);
    assert!(write.header("x-airlock-approval-id").is_some());
    assert!(
        h.sim.requests().is_empty(),
        "nothing is forwarded before approval"
    );
    h.shutdown().await;
}
