//! Recording: every request through the gateway leaves exactly one audit
//! event, chained into a tamper-evident trail and grouped into sessions.
//!
//! - [`Recorder`] owns the writer task; [`Recorder::layer`] gives the
//!   [`RecorderLayer`], the outermost Airlock layer, which puts an
//!   [`AuditDraft`](airlock_core::AuditDraft) in each request for the other
//!   layers to fill in and turns it into an event when the response ends.
//!   Fail-closed (the default), a client that received a complete response
//!   can rely on its event being stored; see [`RecorderLayer`].
//! - [`AuditEvent`]: the schema (what `airlock audit export` emits).
//! - [`chain`]: the hash chain and [`chain::verify`].
//! - [`AuditSink`]: where events go (the SQLite sink is in `airlock-store`;
//!   [`MemorySink`] for tests and examples).
//! - Sessions: the `x-airlock-session` header ([`SESSION_HEADER`]), namespaced
//!   by principal, else one session per principal and idle gap.
//!
//! ```
//! use std::convert::Infallible;
//! use std::sync::Arc;
//!
//! use airlock_core::{AuditDraft, Decision, full};
//! use airlock_recorder::{MemorySink, Outcome, Recorder, RecorderConfig, chain};
//! use http::{Request, Response};
//! use http_body_util::BodyExt;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let sink = Arc::new(MemorySink::new());
//! let recorder = Recorder::start(sink.clone(), RecorderConfig::default()).await.unwrap();
//! let gateway = ServiceBuilder::new()
//!     .layer(recorder.layer())
//!     // … identity, classify, policy, approval, masking, upstream …
//!     .service(service_fn(|request: Request<_>| async move {
//!         let draft = request.extensions().get::<AuditDraft>().unwrap();
//!         draft.update(|r| r.decision = Some(Decision::Allow { rule: "agents-read".into() }));
//!         Ok::<_, Infallible>(Response::new(full(r#"{"value":[]}"#)))
//!     }));
//!
//! let request = Request::get("https://management.azure.com/subscriptions?api-version=2022-12-01")
//!     .header("x-airlock-request-id", "req-1")
//!     .body(full(""))
//!     .unwrap();
//! let response = gateway.oneshot(request).await.unwrap();
//! response.into_body().collect().await.unwrap();
//!
//! let stats = recorder.shutdown().await;
//! assert_eq!(stats.recorded, 1);
//! let events = sink.events();
//! let event = &events[0].event;
//! assert_eq!(event.request_id.as_deref(), Some("req-1"));
//! assert_eq!(event.api_version.as_deref(), Some("2022-12-01"));
//! assert_eq!(event.decision.as_deref(), Some("allow"));
//! assert_eq!(event.outcome, Outcome::Completed);
//! assert!(chain::verify(&Default::default(), &events).is_ok());
//! # });
//! ```

mod body;
pub mod chain;
mod config;
mod error;
mod event;
mod exchange;
mod facts;
mod layer;
mod memory;
mod monitor;
mod queue;
mod recorder;
mod service;
mod sessions;
mod sink;
mod stats;
mod writer;

pub use body::{RequestBody, ResponseBody};
pub use chain::{ChainBreak, ChainHead, ChainedEvent};
pub use config::RecorderConfig;
pub use error::RecorderError;
pub use event::{AuditEvent, EventPrincipal, Outcome, RecordedOperation};
pub use layer::RecorderLayer;
pub use memory::MemorySink;
pub use monitor::RecorderMonitor;
pub use recorder::Recorder;
pub use service::RecorderService;
pub use sessions::SESSION_HEADER;
pub use sink::{AuditSink, SinkError};
pub use stats::RecorderStats;
