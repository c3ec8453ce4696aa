//! What naming one request costs: `classify` of a typical ARM `GET` of a
//! virtual machine and a `DELETE` of one, each with an `api-version` and no
//! body (the common case), reported in requests per second. Run it with
//! `cargo bench -p airlock-azure --bench classify`.

use std::hint::black_box;

use airlock_azure::{AzureEndpoint, ClassifyRequest, classify};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::{HeaderMap, Method};

const VM: &str = "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/rg-agents/providers/Microsoft.Compute/virtualMachines/vm-build-01";
const QUERY: &str = "api-version=2024-07-01";

fn classify_requests(c: &mut Criterion) {
    let headers = HeaderMap::new();
    let mut group = c.benchmark_group("classify");
    group.throughput(Throughput::Elements(1));
    for (label, method) in [("get_vm", Method::GET), ("delete_vm", Method::DELETE)] {
        let request = ClassifyRequest {
            method: &method,
            endpoint: &AzureEndpoint::Arm,
            path: VM,
            query: Some(QUERY),
            headers: &headers,
            body: b"",
        };
        group.bench_function(label, |b| {
            b.iter(|| classify(black_box(&request)).expect("the request classifies"));
        });
    }
    group.finish();
}

criterion_group!(benches, classify_requests);
criterion_main!(benches);
