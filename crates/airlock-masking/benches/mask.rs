//! Masking a ~1 MiB ARM list response (`{"value":[…]}`: web apps with
//! properties, every tenth with a storage connection string) with the
//! detectors on and no rule for the operation: the common case, where every
//! string of every response is scanned. Goal: ≥ 300 MB/s per core.
//!
//! `cargo bench -p airlock-masking --bench mask`

#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::hint::black_box;

use airlock_core::{Operation, Plane, ResourceScope};
use airlock_masking::{JsonMasker, MaskContext, MaskRule, Masker, TokenKey};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A deterministic ARM list response of at least `size` bytes.
fn arm_list(size: usize) -> String {
    let key: String = (0..86)
        .map(|i| {
            char::from(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[(i * 7) % 64],
            )
        })
        .collect();
    let mut body = String::from("{\"value\":[");
    let mut n = 0;
    while body.len() < size {
        if n > 0 {
            body.push(',');
        }
        let sub = "0b1f6471-1bf0-4dda-aec3-cb9272f09590";
        let _ = write!(
            body,
            r#"{{"id":"/subscriptions/{sub}/resourceGroups/rg-{g}/providers/Microsoft.Web/sites/app-{n}","name":"app-{n}","type":"Microsoft.Web/sites","kind":"app,linux","location":"westeurope","tags":{{"env":"prod","owner":"team-{g}","costCenter":"cc-{n}"}},"properties":{{"state":"Running","hostNames":["app-{n}.azurewebsites.net"],"enabledHostNames":["app-{n}.azurewebsites.net","app-{n}.scm.azurewebsites.net"],"provisioningState":"Succeeded","lastModifiedTimeUtc":"2024-11-0{d}T10:15:30.1234567","serverFarmId":"/subscriptions/{sub}/resourceGroups/rg-{g}/providers/Microsoft.Web/serverfarms/plan-{g}","siteConfig":{{"linuxFxVersion":"DOTNETCORE|8.0","numberOfWorkers":1,"alwaysOn":true,"http20Enabled":true,"minTlsVersion":"1.2"}},"httpsOnly":true,"outboundIpAddresses":"20.50.2.1,20.50.2.2,20.50.2.3","defaultHostName":"app-{n}.azurewebsites.net","containerSize":0,"dailyMemoryTimeQuota":0"#,
            g = n % 17,
            d = n % 9 + 1,
        );
        if n % 10 == 0 {
            let _ = write!(
                body,
                r#","storage":"DefaultEndpointsProtocol=https;AccountName=st{n};AccountKey={key}==;EndpointSuffix=core.windows.net""#
            );
        }
        body.push_str("}}");
        n += 1;
    }
    body.push_str("]}");
    body
}

fn bench(c: &mut Criterion) {
    let body = arm_list(1 << 20);
    let masker = JsonMasker::builder(TokenKey::new([5u8; 32]).unwrap())
        .rule(
            MaskRule::new(
                ["Microsoft.Storage/storageAccounts/listKeys/action"],
                ["$.keys[*].value"],
            )
            .unwrap(),
        )
        .build();
    let list = Operation::new(
        "Microsoft.Web/sites/read",
        Plane::Management,
        ResourceScope::new("/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590"),
    );
    let context = MaskContext::new(&list).content_type(Some("application/json"));
    let outcome = masker.mask(&context, body.as_bytes()).unwrap();
    assert!(outcome.count > 0);

    let mut group = c.benchmark_group("mask");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("arm_list_1MiB_detectors", |b| {
        b.iter(|| masker.mask(&context, black_box(body.as_bytes())).unwrap());
    });
    // For scale: what a parse into serde_json::Value and back costs alone.
    group.bench_function("serde_json_value_roundtrip", |b| {
        b.iter(|| {
            let value: serde_json::Value =
                serde_json::from_slice(black_box(body.as_bytes())).unwrap();
            serde_json::to_vec(&value).unwrap()
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
