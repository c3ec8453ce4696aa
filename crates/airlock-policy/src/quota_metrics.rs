//! [`QuotaMetrics`]: quotas that stopped a request, by quota.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExceededLabels {
    quota: String,
    outcome: &'static str,
}

/// Counts what a [`QuotaLayer`](crate::QuotaLayer) stopped (give it one
/// with [`QuotaLayer::metrics`](crate::QuotaLayer::metrics)):
///
/// - `airlock_quota_exceeded_total{quota, outcome}`: requests past a
///   quota's limit, `refused` (`403 AirlockQuotaExceeded`) or sent for
///   `approval` (`on_exceed = "approve"`); `quota` is the quota's name from
///   the policy file, so the label set is the operator's, not an agent's;
/// - `airlock_quota_unavailable_total`: requests refused because the store
///   could not count them (`503 AirlockQuotaUnavailable`).
///
/// ```
/// use airlock_policy::QuotaMetrics;
/// use prometheus_client::registry::Registry;
///
/// let metrics = QuotaMetrics::new();
/// let mut registry = Registry::default();
/// metrics.register(&mut registry);
/// ```
#[derive(Debug, Default)]
pub struct QuotaMetrics {
    exceeded: Family<ExceededLabels, Counter>,
    unavailable: Counter,
}

impl QuotaMetrics {
    /// All zero.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Registers `airlock_quota_exceeded_total` and `airlock_quota_unavailable_total`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "airlock_quota_exceeded",
            "Requests past a quota's limit, refused or sent for approval, by quota",
            self.exceeded.clone(),
        );
        registry.register(
            "airlock_quota_unavailable",
            "Requests refused because the quota store could not count them",
            self.unavailable.clone(),
        );
    }

    /// One request past `quota`'s limit: refused, or sent for approval.
    pub(crate) fn exceeded(&self, quota: &str, refused: bool) {
        let outcome = if refused { "refused" } else { "approval" };
        self.exceeded
            .get_or_create(&ExceededLabels {
                quota: quota.to_owned(),
                outcome,
            })
            .inc();
    }

    /// One request the store could not count.
    pub(crate) fn unavailable(&self) {
        self.unavailable.inc();
    }
}
