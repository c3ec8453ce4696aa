//! [`ApprovalLayer`]: the store and notifier shared by every [`ApprovalService`](crate::ApprovalService).

use std::sync::Arc;

use tower::Layer;

use crate::{ApprovalService, ApprovalStore, Notifier};

/// The most request body the layer reads to fingerprint by default (16 MiB).
pub const DEFAULT_MAX_BODY: u64 = 16 * 1024 * 1024;

/// Holds requests whose [`Decision`](airlock_core::Decision) is
/// `RequireApproval` until a human decides, and admits one retry of a request
/// that was approved after its hold ran out.
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
    pub(crate) max_body: u64,
    pub(crate) status_url_base: Option<String>,
}

impl std::fmt::Debug for ApprovalLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApprovalLayer")
            .field("max_body", &self.config.max_body)
            .field("status_url_base", &self.config.status_url_base)
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
                max_body: DEFAULT_MAX_BODY,
                status_url_base: None,
            }),
        }
    }
    /// The most request body read to fingerprint; larger bodies are refused with 413.
    #[must_use]
    pub fn max_body(mut self, limit: u64) -> Self {
        self.config_mut().max_body = limit;
        self
    }
    /// Where approvals can be checked: `{base}/{id}` goes into the pending answer.
    #[must_use]
    pub fn status_url_base(mut self, base: impl Into<String>) -> Self {
        self.config_mut().status_url_base = Some(base.into().trim_end_matches('/').to_owned());
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
