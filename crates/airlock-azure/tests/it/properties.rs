//! Properties of the classifier over generated requests: it never panics,
//! and it reads names as ARM does, case-insensitively.

#![allow(clippy::unwrap_used)]

use airlock_azure::{AzureEndpoint, ClassifyError, ClassifyRequest, classify};
use airlock_core::Operation;
use http::{HeaderMap, Method};
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Map, Value};

fn config() -> Config {
    Config {
        cases: 1024,
        failure_persistence: None,
        ..Config::default()
    }
}

fn run(
    method: &Method,
    endpoint: &AzureEndpoint,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Result<Operation, ClassifyError> {
    classify(&ClassifyRequest {
        method,
        endpoint,
        path,
        query,
        headers: &HeaderMap::new(),
        body,
    })
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::HEAD),
        Just(Method::PUT),
        Just(Method::PATCH),
        Just(Method::DELETE),
        Just(Method::POST),
        Just(Method::OPTIONS),
        Just(Method::from_bytes(b"PURGE").unwrap()),
    ]
}

fn endpoint() -> impl Strategy<Value = AzureEndpoint> {
    prop_oneof![
        3 => Just(AzureEndpoint::Arm),
        1 => Just(AzureEndpoint::KeyVault { vault: "kv1".into() }),
    ]
}

/// Segments that steer the parsers into their interesting corners.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("subscriptions".to_owned()),
        Just("resourceGroups".to_owned()),
        Just("providers".to_owned()),
        Just("PROVIDERS".to_owned()),
        Just("Microsoft.Compute".to_owned()),
        Just("Microsoft.Resources".to_owned()),
        Just("Microsoft.Authorization".to_owned()),
        Just("virtualMachines".to_owned()),
        Just("deployments".to_owned()),
        Just("roleAssignments".to_owned()),
        Just("batch".to_owned()),
        Just("moveResources".to_owned()),
        Just("secrets".to_owned()),
        Just("keys".to_owned()),
        Just("certificates".to_owned()),
        Just("issuers".to_owned()),
        Just("deletedsecrets".to_owned()),
        Just("sign".to_owned()),
        Just("checkNameAvailability".to_owned()),
        Just(String::new()),
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just("%2e%2E".to_owned()),
        Just("%2f".to_owned()),
        Just("%252F".to_owned()),
        Just("%".to_owned()),
        Just("%zz".to_owned()),
        Just("%c3%28".to_owned()),
        Just("a;b".to_owned()),
        "[a-zA-Z0-9%._~;\\\\-]{1,12}",
        "\\PC{1,6}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        (proptest::collection::vec(segment(), 0..14), any::<bool>()).prop_map(
            |(segments, slash)| {
                let mut path = format!("/{}", segments.join("/"));
                if slash {
                    path.push('/');
                }
                path
            }
        ),
    ]
}

fn query() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("api-version=2024-03-01".to_owned())),
        Just(Some("api-version=1&API-Version=2".to_owned())),
        proptest::option::of(any::<String>()),
    ]
}

/// JSON shaped like the bodies Airlock reads (batches, deployments, moves),
/// with nonsense in every corner.
fn json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("requests"),
        Just("httpMethod"),
        Just("url"),
        Just("relativeUrl"),
        Just("content"),
        Just("requestHeaderDetails"),
        Just("properties"),
        Just("Properties"),
        Just("template"),
        Just("templateLink"),
        Just("resources"),
        Just("type"),
        Just("name"),
        Just("mode"),
        Just("scope"),
        Just("subscriptionId"),
        Just("resourceGroup"),
        Just("existing"),
        Just("targetResourceGroup"),
    ]
    .prop_map(str::to_owned);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        prop_oneof![
            Just("GET"),
            Just("DELETE"),
            Just("Complete"),
            Just("/batch?api-version=1"),
            Just("/subscriptions/s/resourceGroups/rg?api-version=1"),
            Just("https://management.azure.com/subscriptions/s/resourceGroups/rg/providers/Microsoft.Resources/deployments/d?api-version=1"),
            Just("https://evil.example/x"),
            Just("Microsoft.Resources/deployments"),
            Just("Microsoft.Storage/storageAccounts/providers/roleAssignments"),
            Just("Microsoft.Resources/resourceGroups"),
            Just("a/b/c"),
            Just("[parameters('x')]"),
            Just("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/x"),
        ]
        .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        json().prop_map(|value| value.to_string().into_bytes()),
    ]
}

#[test]
fn nothing_a_client_sends_makes_it_panic() {
    proptest!(config(), |(
        method in method(),
        endpoint in endpoint(),
        path in path(),
        query in query(),
        body in body(),
    )| {
        if let Ok(op) = run(&method, &endpoint, &path, query.as_deref(), &body) {
            for op in op.flatten() {
                prop_assert!(!op.name().is_empty());
                prop_assert!(op.scope().as_str().starts_with('/'), "{}", op.scope());
            }
        }
    });
}

#[test]
fn batch_and_deployment_bodies_never_panic() {
    let targets = [
        (Method::POST, "/batch"),
        (
            Method::PUT,
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Resources/deployments/d",
        ),
        (
            Method::POST,
            "/providers/Microsoft.Resources/deployments/d/whatIf",
        ),
        (
            Method::POST,
            "/subscriptions/s/resourceGroups/rg/moveResources",
        ),
    ];
    proptest!(config(), |(target in 0..targets.len(), body in json())| {
        let (method, path) = &targets[target];
        let body = body.to_string();
        let _ = run(method, &AzureEndpoint::Arm, path, Some("api-version=2024-03-01"), body.as_bytes());
    });
}

#[test]
fn encoded_separators_never_get_through() {
    proptest!(config(), |(
        prefix in "(/[a-zA-Z0-9]{1,8}){0,6}",
        escape in prop_oneof![Just("%2f"), Just("%2F"), Just("%5c"), Just("%5C"), Just("%252f"), Just("%255C")],
        suffix in "[a-zA-Z0-9]{0,8}(/[a-zA-Z0-9]{1,8}){0,4}",
        method in method(),
        endpoint in endpoint(),
    )| {
        let path = format!("{prefix}/a{escape}{suffix}");
        prop_assert!(run(&method, &endpoint, &path, Some("api-version=1"), b"").is_err(), "{}", path);
    });
}

/// Paths of shapes Airlock names, with generated names in them.
fn known_shape() -> impl Strategy<Value = (Method, AzureEndpoint, String)> {
    let name = "[a-z0-9][a-z0-9-]{0,10}";
    let arm_paths = (name, name, name).prop_flat_map(|(s, rg, n)| {
        let rg_id = format!("/subscriptions/{s}/resourceGroups/{rg}");
        prop_oneof![
            Just(format!("{rg_id}/providers/Microsoft.Compute/virtualMachines/{n}")),
            Just(format!("{rg_id}/providers/Microsoft.Sql/servers/{n}/databases/{n}")),
            Just(format!("{rg_id}/providers/Microsoft.Storage/storageAccounts/{n}/listKeys")),
            Just(format!("{rg_id}/providers/Microsoft.Storage/storageAccounts/{n}/providers/Microsoft.Authorization/roleAssignments/{n}")),
            Just(format!("/subscriptions/{s}/providers/Microsoft.Compute/virtualMachines")),
            Just(format!("/subscriptions/{s}/providers/Microsoft.Compute/register")),
            Just(format!("/subscriptions/{s}/providers/Microsoft.Storage/checkNameAvailability")),
            Just(format!("/subscriptions/{s}/resourcegroups/{n}")),
            Just(format!("{rg_id}/resources")),
            Just(format!("/subscriptions/{s}/providers")),
            Just(format!("/providers/Microsoft.Management/managementGroups/{n}/providers/Microsoft.Authorization/policyAssignments/{n}")),
            Just(format!("/subscriptions/{s}/tagNames/{n}/tagValues/{n}")),
        ]
    });
    let vault_paths = name.prop_flat_map(|n| {
        prop_oneof![
            Just(format!("/secrets/{n}")),
            Just(format!("/secrets/{n}/versions")),
            Just(format!("/keys/{n}/abc123/sign")),
            Just(format!("/deletedsecrets/{n}/recover")),
            Just(format!("/certificates/issuers/{n}")),
        ]
    });
    prop_oneof![
        (method(), arm_paths).prop_map(|(m, p)| (m, AzureEndpoint::Arm, p)),
        (method(), vault_paths).prop_map(|(m, p)| (
            m,
            AzureEndpoint::KeyVault {
                vault: "kv1".into()
            },
            p
        )),
    ]
}

#[test]
fn classification_is_case_insensitive() {
    proptest!(config(), |((method, endpoint, path) in known_shape(), trailing in any::<bool>())| {
        let query = Some("api-version=2024-03-01");
        let plain = run(&method, &endpoint, &path, query, b"").unwrap();
        let mut shouted_path = path.to_ascii_uppercase();
        if trailing {
            shouted_path.push('/');
        }
        let shouted = run(&method, &endpoint, &shouted_path, Some("API-VERSION=2024-03-01"), b"").unwrap();
        prop_assert_eq!(plain.is_unknown(), shouted.is_unknown());
        if !plain.is_unknown() {
            prop_assert!(
                plain.name().eq_ignore_ascii_case(shouted.name()),
                "{} vs {}", plain.name(), shouted.name()
            );
        }
        prop_assert_eq!(plain.scope(), shouted.scope());
        prop_assert_eq!(plain.scope().normalized(), shouted.scope().normalized());
        prop_assert_eq!(plain.children().len(), shouted.children().len());
    });
}
