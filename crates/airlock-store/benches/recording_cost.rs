//! The CPU a recorded request costs, in one process: 64 concurrent
//! requests through [`RecorderLayer`](airlock_recorder::RecorderLayer) to an
//! inner service that answers a small ARM GET and fills the audit draft as
//! the gateway's layers would (principal, operation, decision, masked
//! answer excerpt, upstream ids: an event the size of the gateway's),
//! first without the recorder, then with the recorder writing to a sink that
//! discards events, then to SQLite (a fresh WAL file, as shipped), from one
//! agent and then from 64 (one session each, interleaved: each commit then
//! touches the session index in as many places). The steps between them
//! are what the recorder itself and the store cost.
//!
//! Printed as CPU microseconds per request (user + system time of the whole
//! process, every thread: the writer, SQLite's and the checkpointer's), and
//! the mean batch the writer stored. It allocates with mimalloc and runs on
//! tokio's current-thread runtime, as the `airlock` binary does on one CPU.
//! Run pinned to one CPU to match the gateway in `cargo xtask bench`:
//!
//! ```text
//! cargo bench -p airlock-store --bench recording_cost --no-run
//! taskset -c 1 target/release/deps/recording_cost-<hash>
//! ```
//!
//! Not a criterion bench: criterion measures wall time, and the store's
//! work runs on other threads than the requests.

#![allow(clippy::unwrap_used, missing_docs)]

use std::convert::Infallible;
use std::sync::Arc;

use airlock_core::{
    AirlockBody, AuditDraft, BoxFuture, Decision, Operation, Plane, Principal, PrincipalKind,
    ResourceScope,
};
use airlock_recorder::{AuditSink, ChainHead, ChainedEvent, Recorder, RecorderConfig, SinkError};
use airlock_store::SqliteStore;
use http::{Request, Response};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;
use tower::util::BoxCloneSyncService;

const REQUESTS: usize = 100_000;
const CONCURRENCY: usize = 64;
const ROUNDS: usize = 3;
const PATH: &str = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/demo-rg/providers/Microsoft.Storage/storageAccounts/demostore";
const ANSWER: &str = r#"{"id":"/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/demo-rg/providers/Microsoft.Storage/storageAccounts/demostore","name":"demostore","type":"Microsoft.Storage/storageAccounts","location":"westeurope","kind":"StorageV2","sku":{"name":"Standard_LRS"},"properties":{"provisioningState":"Succeeded","primaryEndpoints":{"blob":"https://demostore.blob.core.windows.net/"}}}"#;

/// Takes every batch and keeps nothing.
struct Discard;

impl AuditSink for Discard {
    fn append<'a>(&'a self, _: &'a [ChainedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async { Ok(()) })
    }
    fn head(&self) -> BoxFuture<'_, Result<Option<ChainHead>, SinkError>> {
        Box::pin(async { Ok(None) })
    }
    fn ready(&self) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async { Ok(()) })
    }
}

type Service = BoxCloneSyncService<Request<AirlockBody>, Response<AirlockBody>, Infallible>;

/// A measured case: its name, the recorder's sink (none: no recorder), and
/// how many agents the requests come from.
type Case = (&'static str, Option<Arc<dyn AuditSink>>, usize);

/// The recorder (if any) in front of an inner service that fills the
/// draft, the principal being the agent the request's `x-agent` names.
fn stack(recorder: Option<&Recorder>) -> Service {
    let agents: Arc<Vec<Principal>> = Arc::new(
        (0..CONCURRENCY)
            .map(|agent| {
                Principal::builder(
                    format!("00000000-0000-0000-0000-{agent:012}"),
                    PrincipalKind::ManagedIdentity,
                )
                .tenant_id("22222222-2222-2222-2222-222222222222")
                .display_name(format!("build-agent-{agent}"))
                .app_id("00000000-0000-0000-0000-0000000000a2")
                .groups(vec!["00000000-0000-0000-0000-0000000000c1".to_owned()])
                .build()
            })
            .collect(),
    );
    let inner = tower::service_fn(move |request: Request<AirlockBody>| {
        let agent: usize = request.headers()["x-agent"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let principal = agents[agent].clone();
        let draft = request.extensions().get::<AuditDraft>().cloned();
        draft.unwrap_or_default().update(|record| {
            record.principal = Some(principal);
            record.decision = Some(Decision::Allow {
                rule: "agents-read".into(),
            });
            record.response_excerpt = Some(ANSWER.to_owned());
            record.operation = Some(Operation::new(
                "Microsoft.Storage/storageAccounts/read",
                Plane::Management,
                ResourceScope::new(PATH),
            ));
            record.upstream_status = Some(200);
            record.upstream_request_id = Some("94db859b-e0d8-4389-b4db-9e42f3c4c03f".into());
            record.upstream_correlation_id = Some("5e2f4a07-2c8a-4b8e-9d2c-0f4b8f1c7a11".into());
            record.upstream_identity = Some("default".into());
        });
        async { Ok(Response::new(airlock_core::full(ANSWER))) }
    });
    match recorder {
        Some(recorder) => BoxCloneSyncService::new(
            tower::ServiceBuilder::new()
                .layer(recorder.layer())
                .map_request(|request: Request<_>| request.map(airlock_core::boxed))
                .service(inner),
        ),
        None => BoxCloneSyncService::new(inner),
    }
}

/// CPU seconds this process has used (`/proc/self/stat`: utime + stime,
/// in the kernel's usual 100 Hz ticks).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// `REQUESTS` requests from `CONCURRENCY` tasks, task `i` acting for agent
/// `i % agents`.
async fn load(service: &Service, agents: usize) {
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..CONCURRENCY {
        let service = service.clone();
        let agent = (task % agents).to_string();
        tasks.spawn(async move {
            for _ in 0..REQUESTS / CONCURRENCY {
                let request =
                    Request::get(format!("http://localhost{PATH}?api-version=2023-05-01"))
                        .header("x-agent", &agent)
                        .body(AirlockBody::default())
                        .unwrap();
                let response = service.clone().oneshot(request).await.unwrap();
                assert_eq!(
                    response.into_body().collect().await.unwrap().to_bytes(),
                    ANSWER
                );
            }
        });
    }
    tasks.join_all().await;
}

/// The `airlock` binary's allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // The runtime the `airlock` binary builds on one CPU (the bench runs
    // pinned to one): tokio's current-thread scheduler, SQLite's appends on
    // its blocking threads.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = |name: &str| {
            let path = dir.path().join(name);
            async move { Arc::new(SqliteStore::open(path).await.unwrap()) as Arc<dyn AuditSink> }
        };
        let cases: [Case; 4] = [
            ("no recorder", None, 1),
            ("discarded", Some(Arc::new(Discard)), 1),
            ("sqlite, one agent", Some(sqlite("one.db").await), 1),
            (
                "sqlite, 64 agents",
                Some(sqlite("many.db").await),
                CONCURRENCY,
            ),
        ];
        for (name, sink, agents) in cases {
            let recorder = match sink {
                Some(sink) => Some(
                    Recorder::start(sink, RecorderConfig::default())
                        .await
                        .unwrap(),
                ),
                None => None,
            };
            let service = stack(recorder.as_ref());
            let mut stored = (0, 0);
            for round in 1..=ROUNDS {
                let before = cpu_seconds();
                load(&service, agents).await;
                #[allow(clippy::cast_precision_loss)]
                let per_request = (cpu_seconds() - before) * 1e6 / REQUESTS as f64;
                let mut line = format!(
                    "recording_cost/{name} round {round}: {per_request:.1} µs CPU per request"
                );
                if let Some(recorder) = &recorder {
                    let stats = recorder.stats();
                    #[allow(clippy::cast_precision_loss)]
                    let batch = (stats.recorded - stored.0) as f64
                        / (stats.batches - stored.1).max(1) as f64;
                    stored = (stats.recorded, stats.batches);
                    line.push_str(&format!(", {batch:.1} events per batch"));
                }
                println!("{line}");
            }
            if let Some(recorder) = recorder {
                recorder.shutdown().await;
            }
        }
        // What each event's document weighs (the gateway's: ~2.4 KB).
        let trail = dir.path().join("one.db-trail");
        let bytes: u64 = std::fs::read_dir(&trail)
            .unwrap()
            .map(|file| file.unwrap().metadata().unwrap().len())
            .sum();
        #[allow(clippy::cast_precision_loss)]
        let per_event = bytes as f64 / (ROUNDS * REQUESTS) as f64;
        println!("recording_cost: {per_event:.0} bytes of document per event");
    });
}
