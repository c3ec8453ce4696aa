//! Fuzzes the request bodies `airlock_azure::classify` reads: whatever a
//! client sends as the body of `POST /batch`, a deployment
//! (`PUT …/providers/Microsoft.Resources/deployments/{n}`) or a
//! `moveResources`, the answer is an operation or a `ClassifyError` (a 400),
//! never a panic. A classified batch is `Microsoft.Resources/batch/action`
//! and never carries another batch (nested batches are refused).
//!
//! Run it with `cargo fuzz run batch_body fuzz/seeds/batch_body`.

#![no_main]

use airlock_azure::{AzureEndpoint, BATCH_OPERATION, ClassifyRequest, classify};
use http::{HeaderMap, Method};
use libfuzzer_sys::fuzz_target;

const TARGETS: [(Method, &str); 4] = [
    (Method::POST, "/batch"),
    (
        Method::PUT,
        "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Resources/deployments/d1",
    ),
    (
        Method::POST,
        "/providers/Microsoft.Management/managementGroups/mg/providers/Microsoft.Resources/deployments/d1/whatIf",
    ),
    (
        Method::POST,
        "/subscriptions/s1/resourceGroups/rg/moveResources",
    ),
];

fuzz_target!(|body: &[u8]| {
    let headers = HeaderMap::new();
    for (method, path) in &TARGETS {
        let classified = classify(&ClassifyRequest {
            method,
            endpoint: &AzureEndpoint::Arm,
            path,
            query: Some("api-version=2020-06-01"),
            headers: &headers,
            body,
        });
        let Ok(operation) = classified else {
            continue;
        };
        let all = operation.flatten();
        for op in &all {
            assert!(op.scope().as_str().starts_with('/'), "scope {}", op.scope());
        }
        if *path == "/batch" {
            assert_eq!(operation.name(), BATCH_OPERATION);
            assert!(
                all[1..].iter().all(|op| op.name() != BATCH_OPERATION),
                "a batch inside a batch was classified"
            );
        }
    }
});
