//! Classify + decide, the per-request policy work of the gateway, with a
//! 200-rule policy: `cargo bench -p airlock-gateway --bench decide`.
//!
//! The policy mixes what real ones hold: reads for everyone, per-team
//! allows scoped to resource groups with group selectors, approvals, and
//! denies, over twenty provider namespaces. Each measurement classifies a
//! request (path, query, headers, empty body) and decides it for a principal
//! in three groups; the decision is checked once before measuring.

use std::fmt::Write as _;
use std::hint::black_box;

use airlock_azure::{AzureEndpoint, ClassifyRequest, classify};
use airlock_core::{Principal, PrincipalKind};
use airlock_policy::{Policy, PolicyEngine};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::{HeaderMap, Method};

const NAMESPACES: [&str; 20] = [
    "Microsoft.Compute",
    "Microsoft.Storage",
    "Microsoft.Network",
    "Microsoft.Sql",
    "Microsoft.Web",
    "Microsoft.KeyVault",
    "Microsoft.ContainerService",
    "Microsoft.Insights",
    "Microsoft.Authorization",
    "Microsoft.Resources",
    "Microsoft.DocumentDB",
    "Microsoft.EventHub",
    "Microsoft.ServiceBus",
    "Microsoft.Cache",
    "Microsoft.ContainerRegistry",
    "Microsoft.OperationalInsights",
    "Microsoft.ManagedIdentity",
    "Microsoft.Cdn",
    "Microsoft.Search",
    "Microsoft.DataFactory",
];

/// 200 rules: 1 read-all, 150 team allows, 25 approvals, 24 denies.
fn policy_text() -> String {
    let mut text =
        String::from("[[rule]]\nname = \"reads\"\neffect = \"allow\"\nactions = [\"*/read\"]\n\n");
    for i in 0..150 {
        let ns = NAMESPACES[i % NAMESPACES.len()];
        let _ = write!(
            text,
            "[[rule]]\nname = \"team-{i}\"\neffect = \"allow\"\nactions = [\"{ns}/*\"]\nnot_actions = [\"{ns}/*/delete\"]\nscopes = [\"/subscriptions/s{}/resourceGroups/team-{i}-*\"]\n[rule.principals]\ngroups = [\"group-{i}\"]\n\n",
            i % 4
        );
    }
    for i in 0..25 {
        let ns = NAMESPACES[i % NAMESPACES.len()];
        let _ = write!(
            text,
            "[[rule]]\nname = \"approve-{i}\"\neffect = \"approve\"\nactions = [\"{ns}/*/write\"]\nscopes = [\"/subscriptions/s{}\"]\n[rule.approval]\ngroups = [\"approvers\"]\n\n",
            i % 4
        );
    }
    for i in 0..24 {
        let ns = NAMESPACES[i % NAMESPACES.len()];
        let _ = write!(
            text,
            "[[rule]]\nname = \"deny-{i}\"\neffect = \"deny\"\nactions = [\"{ns}/*/delete\"]\n\n"
        );
    }
    text
}

fn bench(c: &mut Criterion) {
    let policy =
        Policy::parse(&policy_text(), "bench-policy.toml").expect("the bench policy is valid");
    assert_eq!(policy.len(), 200);
    let agent = Principal::builder(
        "00000000-0000-0000-0000-0000000000a1",
        PrincipalKind::ManagedIdentity,
    )
    .groups(["group-7", "group-40", "agents"])
    .build();
    let headers = HeaderMap::new();
    let get_path = "/subscriptions/s1/resourceGroups/team-42-prod/providers/Microsoft.Compute/virtualMachines/vm1";
    let start_path = "/subscriptions/s0/resourceGroups/team-40-prod/providers/Microsoft.Compute/virtualMachines/vm1/start";
    let decide = |method: &Method, path: &str| {
        let operation = classify(&ClassifyRequest {
            method,
            endpoint: &AzureEndpoint::Arm,
            path,
            query: Some("api-version=2024-07-01"),
            headers: &headers,
            body: b"",
        })
        .expect("the bench request classifies");
        policy.decide(&agent, &operation)
    };
    assert_eq!(decide(&Method::GET, get_path).rule(), "reads");
    assert_eq!(decide(&Method::POST, start_path).rule(), "team-40");
    assert_eq!(decide(&Method::DELETE, get_path).rule(), "deny-0");

    let mut group = c.benchmark_group("classify_and_decide_200_rules");
    group.throughput(Throughput::Elements(1));
    group.bench_function("get_vm_allowed", |b| {
        b.iter(|| decide(&Method::GET, black_box(get_path)));
    });
    group.bench_function("post_action_team_rule", |b| {
        b.iter(|| decide(&Method::POST, black_box(start_path)));
    });
    group.bench_function("delete_vm_denied", |b| {
        b.iter(|| decide(&Method::DELETE, black_box(get_path)));
    });
    // The two halves, to see where the time goes.
    let classified = classify(&ClassifyRequest {
        method: &Method::GET,
        endpoint: &AzureEndpoint::Arm,
        path: get_path,
        query: Some("api-version=2024-07-01"),
        headers: &headers,
        body: b"",
    })
    .expect("the bench request classifies");
    group.bench_function("decide_only_get_vm", |b| {
        b.iter(|| policy.decide(&agent, black_box(&classified)));
    });
    group.bench_function("classify_only_get_vm", |b| {
        b.iter(|| {
            classify(&ClassifyRequest {
                method: &Method::GET,
                endpoint: &AzureEndpoint::Arm,
                path: black_box(get_path),
                query: Some("api-version=2024-07-01"),
                headers: &headers,
                body: b"",
            })
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
