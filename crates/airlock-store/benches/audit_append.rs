//! Appending audit events: batches of realistic events (about 1 KiB of
//! JSON each), as the recorder's writer task does, into a fresh SQLite WAL
//! file (batches of 1, 20 and 512) and into a PostgreSQL database on
//! loopback (a throwaway cluster; batches of 512). Reported as events per
//! second: `cargo bench -p airlock-store --bench audit_append`.

#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, SystemTime};

use airlock_recorder::{AuditEvent, AuditSink, ChainHead, ChainedEvent, EventPrincipal, Outcome};
use airlock_store::testing::PostgresServer;
use airlock_store::{PostgresOptions, PostgresStore, SqliteStore};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const BATCH: usize = 512;

/// A Key Vault secret read: masked response excerpt, principal, approval.
fn event(n: usize) -> AuditEvent {
    AuditEvent {
        id: format!("5f0c3c52-0e4e-4d43-9a54-{n:012x}"),
        time: SystemTime::now(),
        duration_ms: 37,
        request_id: Some(format!("req-{n:016x}")),
        session_id: format!("session-{:08}", n / 20),
        method: "GET".into(),
        host: Some("contoso-prod-kv.vault.azure.net".into()),
        path: format!("/secrets/storage-connection-string-{}", n % 50),
        api_version: Some("7.5".into()),
        principal: Some(EventPrincipal {
            id: "00000000-0000-0000-0000-0000000000a1".into(),
            tenant_id: "11111111-1111-1111-1111-111111111111".into(),
            kind: "managed_identity".into(),
            display_name: Some("deploy-agent".into()),
            app_id: Some("22222222-2222-2222-2222-222222222222".into()),
            agent: None,
            groups: Vec::new(),
            roles: Vec::new(),
        }),
        operations: vec!["Microsoft.KeyVault/vaults/secrets/getSecret/action".into()],
        scope: Some(
            "/subscriptions/33333333-3333-3333-3333-333333333333/resourceGroups/prod-rg/providers/Microsoft.KeyVault/vaults/contoso-prod-kv"
                .into(),
        ),
        decision: Some("allow".into()),
        rule: Some("agents-read-secrets-masked".into()),
        approval_id: None,
        approvers: vec![],
        justification: None,
        masked_count: 1,
        masked_paths: vec!["$.value".into()],
        request_body: None,
        response_body: Some(
            r#"{"value":"***MASKED:9f86d081***","id":"https://contoso-prod-kv.vault.azure.net/secrets/storage-connection-string/0f1e2d3c","attributes":{"enabled":true,"created":1732530000}}"#
                .into(),
        ),
        status: 200,
        outcome: Outcome::Completed,
        bytes_in: 0,
        bytes_out: 412,
        upstream_status: Some(200),
        upstream_request_id: Some(format!("{n:08x}-aaaa-bbbb-cccc-dddddddddddd")),
        upstream_correlation_id: Some(format!("{n:08x}-1111-2222-3333-444444444444")),
        upstream_client_request_id: Some(format!("{n:08x}-5555-6666-7777-888888888888")),
        request_body_sha256: None,
        error_code: None,
        upstream_identity: Some("default".into()),
        elevated: false,
        replica: None,
        confirmed_by: None,
        classified: Vec::new(),
        would_have: None,
        would_have_rule: None,
        revealed: Vec::new(),
        revealed_by: None,
    }
}

fn append(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = runtime
        .block_on(SqliteStore::open(dir.path().join("audit.db")))
        .unwrap();
    // A throwaway cluster on loopback, as the tests start one (needs
    // PostgreSQL's server binaries; `cargo xtask ci` installs them).
    let server = PostgresServer::start().unwrap();
    let postgres = runtime.block_on(async {
        let url = server.create_database("bench").await.unwrap();
        PostgresStore::connect(PostgresOptions::new(url).password(PostgresServer::PASSWORD))
            .await
            .unwrap()
    });
    let doc_size = serde_json::to_string(&event(0)).unwrap().len();
    assert!((900..1400).contains(&doc_size), "{doc_size} bytes");

    let mut group = c.benchmark_group("audit_append");
    // SQLite at the batch sizes the writer sees: one event (an idle
    // gateway), about 20 (64 connections under load), 512 (its maximum).
    // Each commit has a fixed cost, so the cost per event falls with the
    // batch; PostgreSQL at the largest.
    let sinks: [(&str, &dyn AuditSink, &[usize]); 2] = [
        ("sqlite_wal", &sqlite, &[1, 20, BATCH]),
        ("postgres", &postgres, &[BATCH]),
    ];
    for (name, sink, sizes) in sinks {
        let mut head = ChainHead::default();
        let mut next = 0_usize;
        for &size in sizes {
            group.throughput(Throughput::Elements(size as u64));
            group.bench_function(
                format!("{name}_batch_{size}_events_{doc_size}_bytes"),
                |b| {
                    b.iter_batched(
                        || {
                            let batch: Vec<ChainedEvent> =
                                (next..next + size).map(|n| head.link(event(n))).collect();
                            next += size;
                            batch
                        },
                        |batch| runtime.block_on(sink.append(&batch)).unwrap(),
                        BatchSize::PerIteration,
                    );
                },
            );
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(5));
    targets = append
}
criterion_main!(benches);
