//! Requests that carry other operations (batches, deployments, moves,
//! resource-group deletes) and requests that try to look like something they
//! are not (encoding tricks, method overrides, case games).

#![allow(clippy::unwrap_used)]

use airlock_azure::{AzureEndpoint, BATCH_OPERATION, ClassifyError, ClassifyRequest, classify};
use airlock_core::{AirlockError, Operation, ResourceScope};
use http::{HeaderMap, HeaderValue, Method};
use serde_json::json;

const SUB: &str = "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590";
const RG: &str = "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/rg-agents";
const VERSION: &str = "api-version=2024-03-01";

fn request(
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Result<Operation, ClassifyError> {
    classify(&ClassifyRequest {
        method,
        endpoint: &AzureEndpoint::Arm,
        path,
        query,
        headers: &HeaderMap::new(),
        body,
    })
}

fn arm(method: &Method, path: &str, body: &serde_json::Value) -> Result<Operation, ClassifyError> {
    request(method, path, Some(VERSION), body.to_string().as_bytes())
}

/// `(name, scope, unknown)` of each direct child.
fn children(op: &Operation) -> Vec<(String, String, bool)> {
    op.children()
        .iter()
        .map(|c| {
            (
                c.name().to_owned(),
                c.scope().as_str().to_owned(),
                c.is_unknown(),
            )
        })
        .collect()
}

fn child(name: &str, scope: &str) -> (String, String, bool) {
    (name.to_owned(), scope.to_owned(), false)
}

fn unknown_child(name: &str, scope: &str) -> (String, String, bool) {
    (name.to_owned(), scope.to_owned(), true)
}

/// The 400 a client sees for `error`: its code and message.
fn refusal(error: ClassifyError) -> (String, String) {
    let error = AirlockError::from(error);
    assert_eq!(error.status(), 400);
    (error.code().to_owned(), error.to_string())
}

// ---------------------------------------------------------------- batch

#[test]
fn batch_lists_every_inner_request_as_a_child() {
    let body = json!({"requests": [
        {"httpMethod": "DELETE", "name": "a1",
         "url": format!("https://management.azure.com{RG}/providers/Microsoft.Compute/virtualMachines/vm1?api-version=2024-07-01")},
        {"httpMethod": "POST", "name": "a2",
         "relativeUrl": format!("{RG}/providers/Microsoft.Storage/storageAccounts/sa1/listKeys?api-version=2023-05-01")},
        {"httpMethod": "put", "name": "a3",
         "url": format!("https://MANAGEMENT.AZURE.COM:443{SUB}/providers/Microsoft.Authorization/roleAssignments/r1?api-version=2022-04-01"),
         "content": {"properties": {"roleDefinitionId": "x", "principalId": "y"}}},
    ]});
    let op = arm(&Method::POST, "/batch", &body).unwrap();
    assert_eq!(op.name(), BATCH_OPERATION);
    assert_eq!(op.scope().as_str(), "/");
    assert_eq!(
        children(&op),
        [
            child(
                "Microsoft.Compute/virtualMachines/delete",
                &format!("{RG}/providers/Microsoft.Compute/virtualMachines/vm1")
            ),
            child(
                "Microsoft.Storage/storageAccounts/listKeys/action",
                &format!("{RG}/providers/Microsoft.Storage/storageAccounts/sa1")
            ),
            child(
                "Microsoft.Authorization/roleAssignments/write",
                &format!("{SUB}/providers/Microsoft.Authorization/roleAssignments/r1")
            ),
        ]
    );
    assert_eq!(op.children()[0].api_version(), Some("2024-07-01"));
}

#[test]
fn batch_children_carry_their_own_children() {
    let body = json!({"Requests": [{"HttpMethod": "PUT", "RelativeUrl": format!("{RG}/providers/Microsoft.Resources/deployments/d1?api-version=2024-03-01"),
        "Content": {"properties": {"mode": "Complete", "template": {"resources": [
            {"type": "Microsoft.Storage/storageAccounts", "name": "sa2", "apiVersion": "2023-05-01"}]}}}}]});
    let op = arm(&Method::POST, "/BATCH", &body).unwrap();
    let deployment = &op.children()[0];
    assert_eq!(deployment.name(), "Microsoft.Resources/deployments/write");
    assert_eq!(
        children(deployment),
        [
            child(
                "Microsoft.Storage/storageAccounts/write",
                &format!("{RG}/providers/Microsoft.Storage/storageAccounts/sa2")
            ),
            child("*/delete", RG),
        ]
    );
    let all: Vec<&str> = op.flatten().iter().map(|o| o.name()).collect();
    assert_eq!(
        all,
        [
            BATCH_OPERATION,
            "Microsoft.Resources/deployments/write",
            "Microsoft.Storage/storageAccounts/write",
            "*/delete"
        ]
    );
}

#[test]
fn batch_bodies_that_cannot_be_read_are_refused() {
    let cases: [(&[u8], &str); 5] = [
        (b"", "the batch body is empty; send the JSON body Azure documents for this request"),
        (b"{\"requests\": [", "the batch body is not valid JSON (EOF while parsing a list at line 1 column 14); Airlock must read it to authorize what it carries, so send plain JSON without comments or trailing commas"),
        (b"[1, 2]", "the batch body must be a JSON object; send the JSON body Azure documents for this request"),
        (b"{\"value\": []}", "the batch body needs 'requests', an array of {httpMethod, url or relativeUrl, content}; Airlock must read every inner request"),
        (b"{\"requests\": [{\"url\": \"https://management.azure.com/subscriptions?api-version=2022-12-01\"}]}", "request 0 of the batch: it has no 'httpMethod'; name the method (GET, PUT, DELETE, …)"),
    ];
    for (body, message) in cases {
        let error = request(&Method::POST, "/batch", Some(VERSION), body).unwrap_err();
        assert_eq!(
            refusal(error),
            ("InvalidRequestContent".to_owned(), message.to_owned()),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn batch_requests_to_other_hosts_are_refused() {
    for (url, host) in [
        (
            "https://evil.example/subscriptions?api-version=2022-12-01",
            "evil.example",
        ),
        (
            "http://management.azure.com/subscriptions?api-version=2022-12-01",
            "management.azure.com",
        ),
        (
            "https://management.azure.com:8443/subscriptions?api-version=2022-12-01",
            "management.azure.com:8443",
        ),
        (
            "https://user@management.azure.com/subscriptions?api-version=2022-12-01",
            "user@management.azure.com",
        ),
        (
            "https://management.azure.com.evil.example/subscriptions?api-version=2022-12-01",
            "management.azure.com.evil.example",
        ),
    ] {
        let body = json!({"requests": [{"httpMethod": "GET", "url": format!("https://management.azure.com{SUB}?api-version=2022-12-01")}, {"httpMethod": "GET", "url": url}]});
        let error = arm(&Method::POST, "/batch", &body).unwrap_err();
        assert_eq!(
            error,
            ClassifyError::BatchForeignHost {
                index: 1,
                host: host.to_owned()
            }
        );
        assert_eq!(
            refusal(error).1,
            format!(
                "request 1 of the batch is addressed to '{host}', not to Azure Resource Manager; a batch may only carry requests to ARM (use a relativeUrl or an https://management.azure.com/... url)"
            )
        );
    }
    let body = json!({"requests": [{"httpMethod": "GET", "relativeUrl": "//evil.example/subscriptions?api-version=2022-12-01"}]});
    assert_eq!(
        refusal(arm(&Method::POST, "/batch", &body).unwrap_err()).1,
        "request 0 of the batch: its 'relativeUrl' must be a path starting with a single '/' (e.g. /subscriptions/{id}/resourceGroups?api-version=2022-09-01)"
    );
}

#[test]
fn nested_batches_are_refused() {
    for url in [
        "/batch?api-version=2020-06-01",
        "/Batch/?api-version=2020-06-01",
        "/b%61tch?api-version=2020-06-01",
    ] {
        let body = json!({"requests": [{"httpMethod": "POST", "relativeUrl": url, "content": {"requests": []}}]});
        let error = arm(&Method::POST, "/batch", &body).unwrap_err();
        assert_eq!(error, ClassifyError::NestedBatch { index: 0 }, "{url}");
        assert_eq!(
            refusal(error),
            ("InvalidRequestContent".to_owned(), "request 0 of the batch is itself a batch; nested batches are not accepted: put its requests in the outer batch".to_owned())
        );
    }
}

#[test]
fn inner_requests_get_the_same_hygiene() {
    let inner = |request: serde_json::Value| {
        refusal(arm(&Method::POST, "/batch", &json!({"requests": [request]})).unwrap_err())
    };
    assert_eq!(
        inner(json!({"httpMethod": "GET", "relativeUrl": "/subscriptions/s1/resourceGroups/a%2Fb?api-version=2022-09-01"})),
        ("InvalidRequestUri".to_owned(), "request 0 of the batch: the request path contains an encoded separator ('%2F'), which could make one resource look like another; use '/' only between segments and never percent-encode '/' or '\\'".to_owned())
    );
    assert_eq!(
        inner(json!({"httpMethod": "GET", "relativeUrl": "/subscriptions/s1"})).0,
        "MissingApiVersionParameter"
    );
    assert_eq!(
        inner(json!({"httpMethod": "POST", "relativeUrl": "/subscriptions/s1/resourceGroups/rg?api-version=2022-09-01",
                     "requestHeaderDetails": {"X-HTTP-Method-Override": "DELETE"}})).0,
        "MethodOverrideNotAllowed"
    );
    assert_eq!(
        inner(json!({"httpMethod": "GET", "url": "https://management.azure.com/a", "relativeUrl": "/a"})).1,
        "request 0 of the batch: it has both 'url' and 'relativeUrl'; send one of them"
    );
}

// ---------------------------------------------------------------- deployments

fn deployment(body: &serde_json::Value) -> Operation {
    arm(
        &Method::PUT,
        &format!("{RG}/providers/Microsoft.Resources/deployments/deploy-1"),
        body,
    )
    .unwrap()
}

#[test]
fn every_template_resource_is_a_child() {
    let op = deployment(&json!({"properties": {"mode": "Incremental", "template": {
    "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
    "resources": [
        {"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-05-01", "name": "saagents"},
        {"type": "Microsoft.Sql/servers/databases", "apiVersion": "2023-08-01", "name": "sql-1/db-1"},
        {"type": "Microsoft.Sql/servers", "apiVersion": "2023-08-01", "name": "sql-2", "resources": [
            {"type": "firewallRules", "name": "AllowAll"},
            {"type": "Microsoft.Sql/servers/databases", "name": "sql-2/db-2"},
        ]},
        {"type": "Microsoft.Compute/virtualMachines", "name": "[parameters('vmName')]"},
        {"type": "Microsoft.Authorization/roleAssignments", "name": "ra-1", "scope": "Microsoft.Storage/storageAccounts/saagents"},
        {"type": "Microsoft.KeyVault/vaults", "name": "kv-existing", "existing": true},
    ]}}}));
    assert_eq!(op.name(), "Microsoft.Resources/deployments/write");
    let p = format!("{RG}/providers");
    assert_eq!(
        children(&op),
        [
            child(
                "Microsoft.Storage/storageAccounts/write",
                &format!("{p}/Microsoft.Storage/storageAccounts/saagents")
            ),
            child(
                "Microsoft.Sql/servers/databases/write",
                &format!("{p}/Microsoft.Sql/servers/sql-1/databases/db-1")
            ),
            child(
                "Microsoft.Sql/servers/write",
                &format!("{p}/Microsoft.Sql/servers/sql-2")
            ),
            child(
                "Microsoft.Sql/servers/firewallRules/write",
                &format!("{p}/Microsoft.Sql/servers/sql-2/firewallRules/AllowAll")
            ),
            child(
                "Microsoft.Sql/servers/databases/write",
                &format!("{p}/Microsoft.Sql/servers/sql-2/databases/db-2")
            ),
            // A name Airlock cannot evaluate: the type is known, the scope widens.
            child("Microsoft.Compute/virtualMachines/write", RG),
            child(
                "Microsoft.Authorization/roleAssignments/write",
                &format!(
                    "{p}/Microsoft.Storage/storageAccounts/saagents/providers/Microsoft.Authorization/roleAssignments/ra-1"
                )
            ),
            child(
                "Microsoft.KeyVault/vaults/read",
                &format!("{p}/Microsoft.KeyVault/vaults/kv-existing")
            ),
        ]
    );
    assert_eq!(op.children()[0].api_version(), Some("2023-05-01"));
}

#[test]
fn symbolic_name_templates_are_read_too() {
    let op = deployment(
        &json!({"properties": {"template": {"languageVersion": "2.0", "resources": {
            "storage": {"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-05-01", "name": "sa-sym"},
            "identity": {"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31", "name": "id-sym"},
        }}}}),
    );
    let mut got = children(&op);
    got.sort();
    assert_eq!(
        got,
        [
            child(
                "Microsoft.ManagedIdentity/userAssignedIdentities/write",
                &format!("{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-sym")
            ),
            child(
                "Microsoft.Storage/storageAccounts/write",
                &format!("{RG}/providers/Microsoft.Storage/storageAccounts/sa-sym")
            ),
        ]
    );
}

#[test]
fn complete_mode_is_a_delete_of_everything_not_listed() {
    for mode in ["Complete", "complete", "COMPLETE", "Something-else"] {
        let op = deployment(
            &json!({"properties": {"mode": mode, "template": {"resources": [
            {"type": "Microsoft.Storage/storageAccounts", "name": "sa-keep"}]}}}),
        );
        assert_eq!(
            children(&op),
            [
                child(
                    "Microsoft.Storage/storageAccounts/write",
                    &format!("{RG}/providers/Microsoft.Storage/storageAccounts/sa-keep")
                ),
                child("*/delete", RG),
            ],
            "{mode}"
        );
    }
}

#[test]
fn property_names_are_read_case_insensitively() {
    let op = deployment(
        &json!({"Properties": {"MODE": "Complete", "Template": {"Resources": [
        {"Type": "Microsoft.Network/publicIPAddresses", "NAME": "pip-1"}]}}}),
    );
    assert_eq!(
        children(&op),
        [
            child(
                "Microsoft.Network/publicIPAddresses/write",
                &format!("{RG}/providers/Microsoft.Network/publicIPAddresses/pip-1")
            ),
            child("*/delete", RG),
        ]
    );
    // The same property in two spellings: Airlock cannot know which one Azure takes.
    let error = arm(
        &Method::PUT,
        &format!("{RG}/providers/Microsoft.Resources/deployments/d"),
        &json!({"properties": {"mode": "Incremental", "Mode": "Complete", "template": {}}}),
    )
    .unwrap_err();
    assert_eq!(
        refusal(error),
        ("InvalidRequestContent".to_owned(), "the property 'mode' appears more than once in different letter case; Azure reads property names case-insensitively, so send it once".to_owned())
    );
}

#[test]
fn linked_templates_are_an_unknown_child() {
    let op = deployment(&json!({"properties": {"mode": "Incremental",
        "templateLink": {"uri": "https://example.blob.core.windows.net/templates/main.json"}}}));
    assert_eq!(children(&op), [unknown_child("*/write", RG)]);
    let op = deployment(
        &json!({"properties": {"mode": "Incremental", "template": {"resources": []},
        "onErrorDeployment": {"type": "LastSuccessful"}}}),
    );
    assert_eq!(children(&op), [unknown_child("*/write", RG)]);
}

#[test]
fn list_functions_in_a_template_are_an_unknown_action_anywhere() {
    let op = deployment(&json!({"properties": {"mode": "Incremental", "template": {
        "resources": [],
        "outputs": {"key": {"type": "string",
            "value": "[listKeys(resourceId('11111111-2222-3333-4444-555555555555', 'rg-prod', 'Microsoft.Storage/storageAccounts', 'saprod'), '2023-05-01').keys[0].value]"}}}}}));
    assert_eq!(children(&op), [unknown_child("*/list*/action", "/")]);
}

#[test]
fn nested_deployments_are_expanded_at_their_target() {
    let op = deployment(
        &json!({"properties": {"mode": "Incremental", "template": {"resources": [
            {"type": "Microsoft.Resources/deployments", "apiVersion": "2022-09-01", "name": "inner",
             "properties": {"mode": "Incremental", "template": {"resources": [
                 {"type": "Microsoft.Network/virtualNetworks", "name": "vnet-inner"}]}}},
            {"type": "Microsoft.Resources/deployments", "name": "cross",
             "subscriptionId": "11111111-2222-3333-4444-555555555555", "resourceGroup": "rg-other",
             "properties": {"mode": "Complete", "template": {"resources": [
                 {"type": "Microsoft.Compute/disks", "name": "disk-x"}]}}},
            {"type": "Microsoft.Resources/deployments", "name": "linked",
             "properties": {"templateLink": {"uri": "https://example/t.json"}}},
        ]}}}),
    );
    let other = "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg-other";
    assert_eq!(
        children(&op),
        [
            child(
                "Microsoft.Resources/deployments/write",
                &format!("{RG}/providers/Microsoft.Resources/deployments/inner")
            ),
            child(
                "Microsoft.Resources/deployments/write",
                &format!("{other}/providers/Microsoft.Resources/deployments/cross")
            ),
            child(
                "Microsoft.Resources/deployments/write",
                &format!("{RG}/providers/Microsoft.Resources/deployments/linked")
            ),
        ]
    );
    assert_eq!(
        children(&op.children()[0]),
        [child(
            "Microsoft.Network/virtualNetworks/write",
            &format!("{RG}/providers/Microsoft.Network/virtualNetworks/vnet-inner")
        )]
    );
    assert_eq!(
        children(&op.children()[1]),
        [
            child(
                "Microsoft.Compute/disks/write",
                &format!("{other}/providers/Microsoft.Compute/disks/disk-x")
            ),
            child("*/delete", other)
        ]
    );
    assert_eq!(children(&op.children()[2]), [unknown_child("*/write", RG)]);
    assert_eq!(op.flatten().len(), 8);
}

#[test]
fn validate_and_what_if_carry_the_same_children() {
    let body = json!({"properties": {"mode": "Complete", "template": {"resources": [{"type": "Microsoft.Web/sites", "name": "app"}]}}});
    for action in ["validate", "whatIf"] {
        let op = arm(
            &Method::POST,
            &format!("{RG}/providers/Microsoft.Resources/deployments/d/{action}"),
            &body,
        )
        .unwrap();
        assert_eq!(
            op.name(),
            format!("Microsoft.Resources/deployments/{action}/action")
        );
        assert_eq!(
            children(&op),
            [
                child(
                    "Microsoft.Web/sites/write",
                    &format!("{RG}/providers/Microsoft.Web/sites/app")
                ),
                child("*/delete", RG)
            ]
        );
    }
}

#[test]
fn deployment_bodies_that_cannot_be_read_are_refused() {
    let path = format!("{RG}/providers/Microsoft.Resources/deployments/d");
    let error = request(
        &Method::PUT,
        &path,
        Some(VERSION),
        b"{\"properties\": {\"template\": // comment\n{}}}",
    )
    .unwrap_err();
    assert_eq!(refusal(error).0, "InvalidRequestContent");
    let error = request(&Method::PUT, &path, Some(VERSION), b"").unwrap_err();
    assert_eq!(
        refusal(error).1,
        "the deployment body is empty; send the JSON body Azure documents for this request"
    );
    let error = arm(
        &Method::PUT,
        &path,
        &json!({"properties": {"template": {"resources": "all"}}}),
    )
    .unwrap_err();
    assert_eq!(
        refusal(error).1,
        "a template's 'resources' must be an array (or an object of symbolic names); send the template as Azure documents it"
    );
}

/// A property named twice (exact duplicates, which a JSON parser would
/// silently collapse to the last) is refused: Azure might read the other.
#[test]
fn a_property_named_twice_is_refused() {
    let deployments = format!("{RG}/providers/Microsoft.Resources/deployments/d");
    for body in [
        r#"{"properties":{"mode":"Complete","template":{"resources":[]}},"properties":{"mode":"Incremental","template":{"resources":[]}}}"#,
        r#"{"properties":{"mode":"Complete","mode":"Incremental","template":{"resources":[]}}}"#,
        r#"{"properties":{"mode":"Incremental","template":{"resources":[{"type":"Microsoft.Storage/storageAccounts","name":"a","name":"b"}]}}}"#,
    ] {
        let error =
            request(&Method::PUT, &deployments, Some(VERSION), body.as_bytes()).unwrap_err();
        let (code, message) = refusal(error);
        assert_eq!(code, "InvalidRequestContent");
        assert!(
            message.contains("names a property twice")
                && message.contains("send each property once"),
            "{message}"
        );
    }
    let batch =
        r#"{"requests":[{"httpMethod":"GET","name":"1","url":"/subscriptions/s"}],"requests":[]}"#;
    let error = request(&Method::POST, "/batch", Some(VERSION), batch.as_bytes()).unwrap_err();
    assert!(
        refusal(error)
            .1
            .contains("'requests' appears more than once")
    );
    // Numbers, booleans and nulls parse as before.
    let op = deployment(
        &json!({"properties": {"mode": "Incremental", "debugSetting": null,
        "template": {"contentVersion": "1.0.0.0", "resources": [
            {"type": "Microsoft.Storage/storageAccounts", "name": "sa1", "properties": {"n": -1, "f": 1.5, "big": 18_446_744_073_709_551_615_u64, "on": true}}]}}}),
    );
    assert_eq!(op.children().len(), 1);
}

#[test]
fn key_vault_references_in_parameters_are_a_deploy_action_on_the_vault() {
    let vault = format!("{SUB}/resourceGroups/rg-secrets/providers/Microsoft.KeyVault/vaults/kv1");
    let op = deployment(&json!({"properties": {"mode": "Incremental",
        "parameters": {
            "plain": {"value": "x"},
            "db": {"reference": {"keyVault": {"id": vault}, "secretName": "db-password"}},
            "guess": {"Reference": {"KeyVault": {"ID": "[resourceId('Microsoft.KeyVault/vaults', 'kv2')]"}, "secretName": "s"}},
        },
        "template": {"resources": []}}}));
    assert_eq!(
        children(&op),
        [
            child("Microsoft.KeyVault/vaults/deploy/action", &vault),
            child("Microsoft.KeyVault/vaults/deploy/action", "/"),
        ]
    );
    // Parameters Airlock cannot see may reference any vault.
    let op = deployment(&json!({"properties": {"mode": "Incremental",
        "parametersLink": {"uri": "https://example.com/parameters.json"},
        "template": {"resources": []}}}));
    assert_eq!(
        children(&op),
        [child("Microsoft.KeyVault/vaults/deploy/action", "/")]
    );
}

fn stack(method: &Method, action: &str, query: &str, body: &[u8]) -> Operation {
    request(
        method,
        &format!("{RG}/providers/Microsoft.Resources/deploymentStacks/stack-1{action}"),
        Some(&format!("{VERSION}{query}")),
        body,
    )
    .unwrap()
}

/// A deployment stack writes its template's resources like a deployment,
/// and deletes what it stops managing when `actionOnUnmanage` says so.
#[test]
fn deployment_stacks_carry_their_template_and_their_deletes() {
    let body = |on_unmanage: serde_json::Value| {
        json!({"properties": {
            "actionOnUnmanage": on_unmanage,
            "denySettings": {"mode": "none"},
            "template": {"resources": [
                {"type": "Microsoft.Authorization/roleAssignments", "name": "ra-1", "scope": format!("{RG}")},
                {"type": "Microsoft.Storage/storageAccounts", "name": "sa1"}]}}})
        .to_string()
    };
    let writes = [
        child(
            "Microsoft.Authorization/roleAssignments/write",
            &format!("{RG}/providers/Microsoft.Authorization/roleAssignments/ra-1"),
        ),
        child(
            "Microsoft.Storage/storageAccounts/write",
            &format!("{RG}/providers/Microsoft.Storage/storageAccounts/sa1"),
        ),
    ];
    let detach = body(json!({"resources": "detach", "resourceGroups": "detach"}));
    for (method, action) in [(Method::PUT, ""), (Method::POST, "/validate")] {
        let op = stack(&method, action, "", detach.as_bytes());
        assert_eq!(
            op.name(),
            if action.is_empty() {
                "Microsoft.Resources/deploymentStacks/write"
            } else {
                "Microsoft.Resources/deploymentStacks/validate/action"
            }
        );
        assert_eq!(children(&op), writes, "{action}");
    }
    for deletes in [
        json!({"resources": "delete", "resourceGroups": "detach"}),
        json!({"Resources": "DELETE"}),
        json!({"resources": "detach", "managementGroups": "delete"}),
        json!("delete"),
    ] {
        let op = stack(&Method::PUT, "", "", body(deletes.clone()).as_bytes());
        let mut expected = writes.to_vec();
        expected.push(child("*/delete", RG));
        assert_eq!(children(&op), expected, "{deletes}");
    }
    // A linked template is as unseen as a deployment's.
    let linked = json!({"properties": {"actionOnUnmanage": {"resources": "detach"},
        "templateLink": {"uri": "https://example.com/t.json"}}});
    let op = stack(&Method::PUT, "", "", linked.to_string().as_bytes());
    assert_eq!(children(&op), [unknown_child("*/write", RG)]);
}

/// Deleting a stack with `unmanageAction.*=delete` deletes what it manages;
/// the default (`detach`) leaves it.
#[test]
fn deleting_a_stack_that_deletes_what_it_manages_is_a_delete_below_it() {
    for query in [
        "&unmanageAction.Resources=delete",
        "&unmanageaction.resourcegroups=Delete",
        "&unmanageAction%2EManagementGroups=delete",
        "&unmanageAction.Resources=detach&unmanageAction.ResourceGroups=delete",
    ] {
        let op = stack(&Method::DELETE, "", query, b"");
        assert_eq!(op.name(), "Microsoft.Resources/deploymentStacks/delete");
        assert_eq!(children(&op), [child("*/delete", RG)], "{query}");
    }
    for query in [
        "",
        "&unmanageAction.Resources=detach",
        "&bypassStackOutOfSyncError=true",
    ] {
        let op = stack(&Method::DELETE, "", query, b"");
        assert!(op.children().is_empty(), "{query}");
    }
}

// ---------------------------------------------------------------- move and delete

#[test]
fn moves_delete_at_the_source_and_write_at_the_target() {
    let target = "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg-target";
    let body = json!({"resources": [
        format!("{RG}/providers/Microsoft.Storage/storageAccounts/sa1"),
        format!("{RG}/providers/Microsoft.Web/sites/app1/slots/staging"),
    ], "targetResourceGroup": target});
    for action in ["moveResources", "validateMoveResources"] {
        let op = arm(&Method::POST, &format!("{RG}/{action}"), &body).unwrap();
        assert_eq!(
            op.name(),
            "Microsoft.Resources/subscriptions/resourceGroups/moveResources/action"
        );
        assert_eq!(op.scope().as_str(), RG);
        assert_eq!(
            children(&op),
            [
                child(
                    "Microsoft.Storage/storageAccounts/delete",
                    &format!("{RG}/providers/Microsoft.Storage/storageAccounts/sa1")
                ),
                child(
                    "Microsoft.Storage/storageAccounts/write",
                    &format!("{target}/providers/Microsoft.Storage/storageAccounts/sa1")
                ),
                child(
                    "Microsoft.Web/sites/slots/delete",
                    &format!("{RG}/providers/Microsoft.Web/sites/app1/slots/staging")
                ),
                child(
                    "Microsoft.Web/sites/slots/write",
                    &format!("{target}/providers/Microsoft.Web/sites/app1/slots/staging")
                ),
                child(
                    "Microsoft.Resources/subscriptions/resourceGroups/write",
                    target
                ),
            ]
        );
    }
    let error = arm(
        &Method::POST,
        &format!("{RG}/moveResources"),
        &json!({"resources": [], "targetResourceGroup": SUB}),
    )
    .unwrap_err();
    assert_eq!(
        refusal(error).1,
        "'targetResourceGroup' must be a resource group id (/subscriptions/{id}/resourceGroups/{name})"
    );
}

#[test]
fn deleting_a_resource_group_deletes_what_is_inside() {
    let op = arm(&Method::DELETE, RG, &json!(null)).unwrap();
    assert_eq!(
        op.name(),
        "Microsoft.Resources/subscriptions/resourceGroups/delete"
    );
    assert_eq!(children(&op), [child("*/delete", RG)]);
}

// ---------------------------------------------------------------- hygiene

#[test]
fn method_overrides_are_refused() {
    for header in [
        "X-HTTP-Method-Override",
        "x-http-method",
        "X-Method-Override",
    ] {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::HeaderName::from_bytes(header.as_bytes()).unwrap(),
            HeaderValue::from_static("DELETE"),
        );
        let error = classify(&ClassifyRequest {
            method: &Method::POST,
            endpoint: &AzureEndpoint::Arm,
            path: RG,
            query: Some(VERSION),
            headers: &headers,
            body: b"",
        })
        .unwrap_err();
        let canonical = match header.to_ascii_lowercase().as_str() {
            "x-http-method-override" => "X-HTTP-Method-Override",
            "x-http-method" => "X-HTTP-Method",
            _ => "X-Method-Override",
        };
        assert_eq!(
            refusal(error),
            (
                "MethodOverrideNotAllowed".to_owned(),
                format!(
                    "the '{canonical}' header is not accepted: Airlock authorizes a request by its HTTP method, and a method override could make Azure perform another operation; send the intended method itself (e.g. DELETE) and drop '{canonical}'"
                )
            )
        );
    }
}

#[test]
fn ambiguous_paths_are_refused_with_the_fix() {
    let separator = |e: &str| {
        format!(
            "the request path contains an encoded separator ('{e}'), which could make one resource look like another; use '/' only between segments and never percent-encode '/' or '\\'"
        )
    };
    let double = |e: &str| {
        format!(
            "the request path is percent-encoded twice ('{e}' decodes to another escape), which a second decoder would read differently; percent-encode each character once"
        )
    };
    let dot = |s: &str| {
        format!(
            "the request path contains the dot segment '{s}'; Airlock does not resolve '.' or '..' (the result could name another resource than the one authorized): send the resource's full path without them"
        )
    };
    let cases: Vec<(String, String)> = vec![
        (format!("{RG}/providers/Microsoft.Compute/virtualMachines/vm1%2fextensions%2Fx"), separator("%2f")),
        (format!("{RG}%2F..%2Frg-prod"), separator("%2F")),
        (format!("{RG}/providers/Microsoft.Compute/virtualMachines/vm1%5cx"), separator("%5c")),
        (format!("{RG}/providers/Microsoft.Compute/virtualMachines/vm1%252fx"), double("%252f")),
        (format!("{RG}/providers/Microsoft.Compute/virtualMachines/vm1%255Cx"), double("%255C")),
        (format!("{RG}/providers/Microsoft.Compute/virtualMachines/%252e%252e"), double("%252e")),
        (format!("{RG}/../rg-prod"), dot("..")),
        (format!("{RG}/./providers"), dot(".")),
        (format!("{RG}/%2e%2e/rg-prod"), dot("%2e%2e")),
        (format!("{RG}/.%2E/rg-prod"), dot(".%2E")),
        (format!("{RG}/%2e"), dot("%2e")),
        (format!("{SUB}//resourceGroups/rg"), "the request path contains an empty segment ('//'); remove the duplicate '/' (Azure resource ids have none)".to_owned()),
        (format!("{RG}//"), "the request path contains an empty segment ('//'); remove the duplicate '/' (Azure resource ids have none)".to_owned()),
        (format!("{RG};v=1/providers/Microsoft.Compute/virtualMachines/vm1"), "the request path contains ';' (a path parameter, which some servers strip); Azure resource ids never contain it: remove it".to_owned()),
        (format!("{RG}%3Bv=1"), "the request path contains ';' (a path parameter, which some servers strip); Azure resource ids never contain it: remove it".to_owned()),
        (format!("{RG}\\..\\rg-prod"), "the request path contains a backslash; use '/' as the only separator".to_owned()),
        (format!("{RG}/vm1%0d%0aX-Injected:1"), "the request path contains a control character (raw or percent-encoded); remove it from the path".to_owned()),
        (format!("{RG}/vm1\t"), "the request path contains a control character (raw or percent-encoded); remove it from the path".to_owned()),
        (format!("{RG}/vm%1"), "the request path has a malformed percent-escape; '%' must be followed by two hex digits (write '%25' for a literal '%')".to_owned()),
        (format!("{RG}/vm%C3%28"), "the request path is not valid UTF-8 once percent-decoded; percent-encode names as UTF-8".to_owned()),
        ("subscriptions".to_owned(), "the request path must start with '/'; send the resource's path, e.g. /subscriptions/{id}".to_owned()),
    ];
    for (path, message) in cases {
        let error = request(&Method::DELETE, &path, Some(VERSION), b"").unwrap_err();
        assert_eq!(
            refusal(error),
            ("InvalidRequestUri".to_owned(), message),
            "{path}"
        );
    }
}

#[test]
fn api_version_is_required_once() {
    let missing = "The api-version query parameter (?api-version=) is required for all requests; add '?api-version=<version>' with the version the Azure REST API reference gives for this operation";
    for query in [
        None,
        Some(""),
        Some("$top=10"),
        Some("apiversion=2024-03-01"),
    ] {
        let error = request(&Method::GET, SUB, query, b"").unwrap_err();
        assert_eq!(
            refusal(error),
            ("MissingApiVersionParameter".to_owned(), missing.to_owned()),
            "{query:?}"
        );
    }
    for query in [
        "api-version=2024-03-01&api-version=2015-01-01",
        "api-version=2024-03-01&API-VERSION=2015-01-01",
        "api-version=1&api%2Dversion=2",
    ] {
        let error = request(&Method::GET, SUB, Some(query), b"").unwrap_err();
        assert_eq!(
            refusal(error),
            ("InvalidApiVersionParameter".to_owned(), "the api-version query parameter appears 2 times, and Airlock cannot tell which one Azure would use; send it exactly once".to_owned()),
            "{query}"
        );
    }
    let error = request(&Method::GET, SUB, Some("api-version="), b"").unwrap_err();
    assert_eq!(
        refusal(error),
        ("InvalidApiVersionParameter".to_owned(), "the api-version query parameter is empty or malformed; send a version such as '?api-version=2024-03-01'".to_owned())
    );
    // Key Vault needs it too.
    let error = classify(&ClassifyRequest {
        method: &Method::GET,
        endpoint: &AzureEndpoint::KeyVault { vault: "kv".into() },
        path: "/secrets/s1",
        query: None,
        headers: &HeaderMap::new(),
        body: b"",
    })
    .unwrap_err();
    assert_eq!(error, ClassifyError::MissingApiVersion);
}

// ---------------------------------------------------------------- normalisation

#[test]
fn case_tricks_classify_identically() {
    let plain = request(
        &Method::DELETE,
        &format!("{RG}/providers/Microsoft.Compute/virtualMachines/vm1"),
        Some(VERSION),
        b"",
    )
    .unwrap();
    let shouted = request(&Method::DELETE,
        "/SUBSCRIPTIONS/0B1F6471-1BF0-4DDA-AEC3-CB9272F09590/RESOURCEGROUPS/RG-AGENTS/PROVIDERS/MICROSOFT.COMPUTE/VIRTUALMACHINES/vm1",
        Some("API-VERSION=2024-03-01"),
        b"",
    )
    .unwrap();
    assert!(!shouted.is_unknown());
    assert!(
        shouted
            .name()
            .eq_ignore_ascii_case("Microsoft.Compute/virtualMachines/delete"),
        "{}",
        shouted.name()
    );
    assert_eq!(shouted.scope(), plain.scope());
    assert_eq!(
        shouted.scope(),
        &ResourceScope::new(format!(
            "{RG}/providers/Microsoft.Compute/virtualMachines/vm1"
        ))
    );

    let rg_delete = request(
        &Method::DELETE,
        "/Subscriptions/S1/ResourceGroups/RG",
        Some(VERSION),
        b"",
    )
    .unwrap();
    assert_eq!(
        rg_delete.name(),
        "Microsoft.Resources/subscriptions/resourceGroups/delete"
    );
    assert_eq!(
        children(&rg_delete),
        [child("*/delete", "/Subscriptions/S1/ResourceGroups/RG")]
    );

    let batch = request(
        &Method::POST,
        "/BaTcH",
        Some(VERSION),
        br#"{"requests": []}"#,
    )
    .unwrap();
    assert_eq!(batch.name(), BATCH_OPERATION);
}

#[test]
fn one_trailing_slash_is_the_same_request() {
    for path in [
        format!("{RG}/providers/Microsoft.Storage/storageAccounts/sa1/listKeys"),
        format!("{RG}/providers/Microsoft.Compute/virtualMachines"),
        RG.to_owned(),
    ] {
        let plain = request(&Method::POST, &path, Some(VERSION), b"").unwrap();
        let slashed = request(&Method::POST, &format!("{path}/"), Some(VERSION), b"").unwrap();
        assert_eq!(plain.name(), slashed.name(), "{path}");
        assert_eq!(plain.scope(), slashed.scope(), "{path}");
        assert_eq!(plain.is_unknown(), slashed.is_unknown(), "{path}");
    }
}

#[test]
fn escapes_in_names_are_decoded_once_for_the_scope() {
    let op = request(
        &Method::GET,
        &format!("{SUB}/resourceGroups/my%20rg%28dev%29"),
        Some(VERSION),
        b"",
    )
    .unwrap();
    assert_eq!(
        op.scope().as_str(),
        format!("{SUB}/resourceGroups/my rg(dev)")
    );
    let op = request(
        &Method::DELETE,
        &format!("{RG}/providers/Microsoft.Compute/virtualMachine%73/vm1"),
        Some(VERSION),
        b"",
    )
    .unwrap();
    assert_eq!(op.name(), "Microsoft.Compute/virtualMachines/delete");
}
