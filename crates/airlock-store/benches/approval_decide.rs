//! Deciding approvals: the approver's write (the state change in one
//! transaction, and the notification to every replica on PostgreSQL), on a
//! SQLite file and on a PostgreSQL database on loopback (a throwaway
//! cluster). Each iteration decides 64 pending approvals, created before it
//! and not timed: one at a time (an approver clicking through a queue), and
//! all at once (many approvers, or a chat integration, deciding together).
//! Reported as decisions per second.

#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use airlock_approval::conformance::pending_request;
use airlock_approval::{ApprovalId, ApprovalStore};
use airlock_core::{ApprovalWait, Principal, PrincipalKind};
use airlock_store::testing::PostgresServer;
use airlock_store::{PostgresOptions, PostgresStore, SqliteStore};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const APPROVALS: usize = 64;

fn decide(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite: Arc<dyn ApprovalStore> = Arc::new(
        runtime
            .block_on(SqliteStore::open(dir.path().join("approvals.db")))
            .unwrap(),
    );
    let server = PostgresServer::start().unwrap();
    let postgres: Arc<dyn ApprovalStore> = Arc::new(runtime.block_on(async {
        let url = server.create_database("bench").await.unwrap();
        PostgresStore::connect(PostgresOptions::new(url).password(PostgresServer::PASSWORD))
            .await
            .unwrap()
    }));
    let requester = Principal::builder("agent", PrincipalKind::ManagedIdentity).build();
    // One of the approvers `pending_request` names.
    let approver = Principal::builder("carol", PrincipalKind::User).build();
    let pending = |store: &Arc<dyn ApprovalStore>| {
        runtime.block_on(async {
            let mut ids = Vec::with_capacity(APPROVALS);
            for _ in 0..APPROVALS {
                let request = pending_request(&requester, ApprovalWait::Hold);
                ids.push(request.id);
                store.create(request, None).await.unwrap();
            }
            ids
        })
    };

    let mut group = c.benchmark_group("approval_decide");
    group.throughput(Throughput::Elements(APPROVALS as u64));
    for (name, store) in [("sqlite", &sqlite), ("postgres", &postgres)] {
        group.bench_function(format!("{name}_one_at_a_time"), |b| {
            b.iter_batched(
                || pending(store),
                |ids: Vec<ApprovalId>| {
                    runtime.block_on(async {
                        for id in ids {
                            store.decide(id, &approver, true, None).await.unwrap();
                        }
                    });
                },
                BatchSize::PerIteration,
            );
        });
        group.bench_function(format!("{name}_{APPROVALS}_at_once"), |b| {
            b.iter_batched(
                || pending(store),
                |ids: Vec<ApprovalId>| {
                    runtime.block_on(async {
                        let decisions: Vec<_> = ids
                            .into_iter()
                            .map(|id| {
                                let (store, approver) = (Arc::clone(store), approver.clone());
                                tokio::spawn(async move {
                                    store.decide(id, &approver, true, None).await.unwrap();
                                })
                            })
                            .collect();
                        for decision in decisions {
                            decision.await.unwrap();
                        }
                    });
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(5));
    targets = decide
}
criterion_main!(benches);
