//! [`ApprovalLayer`]: the store and notifier shared by every [`ApprovalService`](crate::ApprovalService).

use std::sync::Arc;
use std::time::Duration;

use airlock_core::{Operation, Principal};
use tower::Layer;

use crate::{
    AnswerLayer, ApprovalPollLayer, ApprovalService, ApprovalStore, Notifier, RequestSealer,
};

/// The most request body the layer reads to fingerprint by default (16 MiB).
pub const DEFAULT_MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;

/// How often an SDK is asked to poll an async approval (`Retry-After` on its 202).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// The largest request body an approval keeps by default (1 MiB): its
/// masked copy waits on disk for approvers (and an async request itself,
/// sealed), so it is held to less than the request limit.
pub const DEFAULT_MAX_STORED_BODY_BYTES: u64 = 1024 * 1024;

/// How much of the masked body an approval's `body_preview` holds (8 KiB).
pub const BODY_PREVIEW_BYTES: usize = 8 * 1024;

/// How many approvals may be pending at once, per requester and in all.
///
/// ```
/// use airlock_approval::PendingLimits;
/// let limits = PendingLimits::default();
/// assert_eq!((limits.per_principal, limits.total), (10, 200));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingLimits {
    /// Pending approvals one principal may have open (default 10).
    pub per_principal: usize,
    /// Pending approvals in all (default 200).
    pub total: usize,
}

impl Default for PendingLimits {
    fn default() -> Self {
        Self {
            per_principal: 10,
            total: 200,
        }
    }
}

/// Holds requests whose [`Decision`](airlock_core::Decision) is
/// `RequireApproval` until a human decides, and admits one retry of a request
/// that was approved after its hold ran out; or, with
/// [`async_operations`](Self::async_operations), answers long-running
/// operations at once with `202 Accepted` and an operation URL that
/// [`ApprovalPollLayer`] serves.
///
/// Requests with any other decision (or none) pass through untouched: the
/// policy layer answers denials, and the upstream refuses what is undecided.
#[derive(Clone)]
pub struct ApprovalLayer {
    pub(crate) config: Arc<Config>,
}

#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) store: Arc<dyn ApprovalStore>,
    pub(crate) notifier: Arc<dyn Notifier>,
    pub(crate) max_body_bytes: u64,
    pub(crate) max_stored_body_bytes: u64,
    pub(crate) pending_limits: PendingLimits,
    /// Held while deciding whether a request joins a pending approval,
    /// is refused by the limits or opens one, so that concurrent requests
    /// neither overshoot a limit nor open twins (within this process).
    pub(crate) opening: Arc<tokio::sync::Mutex<()>>,
    pub(crate) status_url_base: Option<String>,
    pub(crate) max_hold: Option<Duration>,
    /// The largest answer the answer step holds, and the memory all the
    /// answers it reads at once share.
    pub(crate) answer_budget: airlock_core::MemoryBudget,
    pub(crate) operations: Option<AsyncOperations>,
    pub(crate) preview: Option<Arc<Previewer>>,
    pub(crate) metrics: Option<Arc<crate::ApprovalMetrics>>,
}

/// Turns a request body into what approvers see; see [`ApprovalLayer::body_preview`].
pub(crate) type Previewer =
    dyn Fn(&Operation, &Principal, Option<&str>, &[u8]) -> Option<String> + Send + Sync;

/// Where async approvals are polled, and the key their stored requests are sealed with.
#[derive(Clone)]
pub(crate) struct AsyncOperations {
    pub(crate) base_url: String,
    pub(crate) sealer: Arc<RequestSealer>,
    pub(crate) poll_interval: Duration,
}

impl AsyncOperations {
    /// Operation `id`'s URL: on the origin the client addressed when that is
    /// not the gateway's (a forward proxy's tunnel), else on `base_url`.
    pub(crate) fn url(
        &self,
        id: crate::ApprovalId,
        origin: Option<&airlock_core::ClientOrigin>,
    ) -> String {
        let base = origin.map_or(self.base_url.as_str(), airlock_core::ClientOrigin::as_str);
        format!("{base}{}{id}", crate::OPERATIONS_PATH)
    }
}

impl std::fmt::Debug for ApprovalLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApprovalLayer")
            .field("max_body_bytes", &self.config.max_body_bytes)
            .field("max_stored_body_bytes", &self.config.max_stored_body_bytes)
            .field("pending_limits", &self.config.pending_limits)
            .field("status_url_base", &self.config.status_url_base)
            .field("max_hold", &self.config.max_hold)
            .field(
                "operations",
                &self.config.operations.as_ref().map(|o| &o.base_url),
            )
            .finish_non_exhaustive()
    }
}

impl ApprovalLayer {
    /// Keeps approvals in `store` and tells `notifier` about them.
    pub fn new(store: Arc<dyn ApprovalStore>, notifier: Arc<dyn Notifier>) -> Self {
        Self {
            config: Arc::new(Config {
                store,
                notifier,
                max_body_bytes: DEFAULT_MAX_BODY_BYTES,
                max_stored_body_bytes: DEFAULT_MAX_STORED_BODY_BYTES,
                pending_limits: PendingLimits::default(),
                opening: Arc::default(),
                status_url_base: None,
                max_hold: None,
                answer_budget: airlock_core::MemoryBudget::new(
                    crate::DEFAULT_MAX_HELD_ANSWER_BYTES,
                ),
                operations: None,
                preview: None,
                metrics: None,
            }),
        }
    }
    /// The most request body read to fingerprint; larger bodies are refused with 413.
    #[must_use]
    pub fn max_body_bytes(mut self, limit: u64) -> Self {
        self.config_mut().max_body_bytes = limit;
        self
    }
    /// The largest body an approval keeps until it is decided (its masked
    /// copy for approvers; for an async one, the sealed request too); a
    /// request needing approval with a larger body is refused with 413.
    #[must_use]
    pub fn max_stored_body_bytes(mut self, limit: u64) -> Self {
        self.config_mut().max_stored_body_bytes = limit;
        self
    }
    /// How many approvals may be pending at once; a request that would open
    /// one more is refused with 429 `AirlockTooManyPendingApprovals` (a
    /// request identical to a pending one joins it and is never refused).
    #[must_use]
    pub fn pending_limits(mut self, limits: PendingLimits) -> Self {
        self.config_mut().pending_limits = limits;
        self
    }
    /// Where approvals can be checked: `{base}/{id}` goes into the pending answer.
    #[must_use]
    pub fn status_url_base(mut self, base: impl Into<String>) -> Self {
        self.config_mut().status_url_base = Some(base.into().trim_end_matches('/').to_owned());
        self
    }
    /// Shows approvers each request's body: `preview(operation, requester,
    /// content type, body)` returns the whole body as approvers may see it,
    /// which must mask secrets (the gateway passes the masking layer's
    /// `request_excerpt`, uncapped). Approvals keep it whole and its first
    /// [`BODY_PREVIEW_BYTES`] as a preview. Without it approvals carry no body.
    #[must_use]
    pub fn body_preview(
        mut self,
        preview: impl Fn(&Operation, &Principal, Option<&str>, &[u8]) -> Option<String>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.config_mut().preview = Some(Arc::new(preview));
        self
    }

    /// Counts the requests held open waiting for a decision into
    /// `metrics`' `airlock_approvals_held`; see [`ApprovalMetrics`](crate::ApprovalMetrics).
    #[must_use]
    pub fn metrics(mut self, metrics: Arc<crate::ApprovalMetrics>) -> Self {
        self.config_mut().metrics = Some(metrics);
        self
    }

    /// Caps every rule's `hold` (the gateway passes its request timeout, so a
    /// held request is answered before the connection is cut).
    #[must_use]
    pub fn max_hold(mut self, limit: Duration) -> Self {
        self.config_mut().max_hold = Some(limit);
        self
    }
    /// Enables async approvals: long-running operations get `202 Accepted`
    /// with `Azure-AsyncOperation: {base_url}/airlock/operations/{id}`, and
    /// the request is kept, sealed with `sealer`, until it is approved.
    /// Without this every approval is held.
    #[must_use]
    pub fn async_operations(mut self, base_url: impl Into<String>, sealer: RequestSealer) -> Self {
        self.config_mut().operations = Some(AsyncOperations {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            sealer: Arc::new(sealer),
            poll_interval: DEFAULT_POLL_INTERVAL,
        });
        self
    }
    /// The `Retry-After` on async answers (default 5 s); needs `async_operations` first.
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        if let Some(operations) = &mut self.config_mut().operations {
            operations.poll_interval = interval;
        }
        self
    }
    /// The layer that answers polls of async approvals; it goes before
    /// classification (the operation URL is Airlock's, not Azure's) and
    /// after identity (only the requester may poll).
    pub fn poll_layer(&self) -> ApprovalPollLayer {
        ApprovalPollLayer {
            config: self.config.clone(),
        }
    }

    /// The exfiltration guard: holds the answers `rules` (asked per
    /// request) match for approval; it goes after this layer and before
    /// masking. See [`AnswerLayer`].
    pub fn answer_layer(
        &self,
        rules: impl Fn() -> Arc<[airlock_policy::AnswerRule]> + Send + Sync + 'static,
    ) -> AnswerLayer {
        AnswerLayer {
            config: self.config.clone(),
            rules: Arc::new(rules),
        }
    }

    /// The largest answer the [`answer_layer`](Self::answer_layer) holds
    /// (default [`DEFAULT_MAX_HELD_ANSWER_BYTES`](crate::DEFAULT_MAX_HELD_ANSWER_BYTES)),
    /// and the memory all the answers it reads at once share; a larger one
    /// a rule would hold is refused.
    #[must_use]
    pub fn max_held_answer_bytes(mut self, limit: u64) -> Self {
        self.config_mut().answer_budget = airlock_core::MemoryBudget::new(limit);
        self
    }
    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }
}

impl<S> Layer<S> for ApprovalLayer {
    type Service = ApprovalService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ApprovalService {
            inner,
            config: self.config.clone(),
        }
    }
}
