//! Just-in-time approval: a human approves one risky request, and the client
//! changes nothing.
//!
//! [`ApprovalLayer`] sits after the policy layer. A request whose
//! [`Decision`](airlock_core::Decision) is `RequireApproval` becomes an
//! [`ApprovalRequest`] in an [`ApprovalStore`], a [`Notifier`] tells the
//! approvers, and the HTTP request is held for the rule's `hold`:
//!
//! - approved → it proceeds upstream (with `Decision::Allow { rule: "approved:<id>" }`);
//! - denied → 403 `AirlockApprovalDenied` naming the approver and the reason;
//! - the hold runs out → 403 `AirlockApprovalPending` with the approval id. The
//!   approval stays pending; once approved, the same request sent again (same
//!   principal, operation, scope and body: its [`Fingerprint`]) is admitted,
//!   exactly once, within the grant's TTL;
//! - the client goes away → the approval is marked abandoned.
//!
//! No answer carries `Retry-After`: Azure SDKs would retry on their own timer.
//! When the rule asks for a justification and the request carries no
//! `x-airlock-justification` header, it is answered 428 saying so.
//!
//! The safety rules (no self-approval, only the rule's approvers, distinct
//! approvers, one use of a grant) live in the store, not in its callers.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use airlock_approval::{ApprovalLayer, ApprovalStore, LogNotifier, MemoryApprovalStore};
//! use airlock_core::{full, Approvers, Decision, Operation, Plane, Principal, PrincipalKind, ResourceScope};
//! use http::{Request, Response};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! let store = Arc::new(MemoryApprovalStore::new());
//! let service = ServiceBuilder::new()
//!     .layer(ApprovalLayer::new(store.clone(), Arc::new(LogNotifier)))
//!     .service_fn(|_req| async { Ok::<_, std::convert::Infallible>(Response::new(full("created"))) });
//!
//! let request = Request::put("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa")
//!     .extension(Principal::builder("agent", PrincipalKind::ManagedIdentity).build())
//!     .extension(Operation::new("Microsoft.Storage/storageAccounts/write", Plane::Management,
//!         ResourceScope::new("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa")))
//!     .extension(Decision::RequireApproval {
//!         rule: "storage-needs-approval".into(),
//!         approvers: Approvers { groups: vec!["ops".into()], ids: vec![], acting_user: false },
//!         min_approvals: 1,
//!         justification_required: false,
//!         hold: Duration::from_millis(50),
//!         ttl: Duration::from_secs(600),
//!         wait: airlock_core::ApprovalWait::Hold,
//!         elevate_to: None,
//!     })
//!     .body(full("{}"))
//!     .unwrap();
//!
//! // Nobody approves within the hold: 403 pending, with no Retry-After.
//! let response = service.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 403);
//! assert_eq!(response.headers()["x-ms-error-code"], "AirlockApprovalPending");
//! assert!(response.headers().get("retry-after").is_none());
//! assert_eq!(store.list(None).await.unwrap().len(), 1);
//! # });
//! ```

mod answer;
mod api;
mod approval;
#[cfg(feature = "conformance")]
pub mod conformance;
mod delivery;
mod error;
mod fingerprint;
mod layer;
mod memory;
mod metrics;
mod notifier;
mod poll;
mod preview;
pub mod rules;
mod sealed;
mod service;
mod store;
mod sweeper;
pub mod ui;
mod watchers;
mod webhook;

pub use answer::{AnswerLayer, AnswerService, DEFAULT_MAX_HELD_ANSWER_BYTES};
pub use api::{ApprovalApi, DEFAULT_MAX_COMMENT_CHARS};
pub use approval::{
    ApprovalId, ApprovalRequest, ApprovalState, ApproverDecision, Execution, FinalAnswer,
    HeldAnswer, RequestLine, RequestedOperation, Requester, Tracking,
};
pub use delivery::{Delivery, DeliveryStats, Retry};
pub use error::ApprovalError;
pub use fingerprint::Fingerprint;
pub use layer::{
    ApprovalLayer, BODY_PREVIEW_BYTES, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_STORED_BODY_BYTES,
    DEFAULT_POLL_INTERVAL, PendingLimits,
};
pub use memory::MemoryApprovalStore;
pub use metrics::ApprovalMetrics;
pub use notifier::{ApprovalEvent, LogNotifier, Notifier, Notifiers, RecordingNotifier};
pub(crate) use poll::RESULT_SUFFIX;
pub use poll::{APPROVAL_ID_HEADER, ApprovalPollLayer, ApprovalPollService, OPERATIONS_PATH};
pub use preview::{Change, ChangeKind, ChangePreview, Preview, ResourceChange, diff};
pub use sealed::{RequestSealer, SealError, SealedRequest, StoredAnswer, StoredRequest};
pub use service::{ApprovalService, JUSTIFICATION_HEADER};
pub use store::{ApprovalStore, Grant};
pub use sweeper::ExpirySweeper;
pub use ui::{ApprovalFeed, ApprovalPage};
pub use watchers::StateWatchers;
pub use webhook::{SIGNATURE_HEADER, WebhookFormat, WebhookNotifier, webhook_signature};
