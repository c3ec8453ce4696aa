//! [`CredentialMetrics`]: how the gateway's own Azure tokens were fetched.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Fetch {
    when: &'static str,
    result: &'static str,
}

/// Counts the token fetches of one or more [`TokenCache`](crate::TokenCache)s
/// (give each the same one with [`TokenCache::metrics`](crate::TokenCache::metrics)):
/// `when` is `needed` (no usable token was cached: a request waited) or
/// `ahead` (a background refresh before expiry), `result` is `ok` or
/// `failed`. A failed `ahead` costs nothing yet; failed `needed` fetches
/// are requests refused with 502.
///
/// ```
/// use airlock_credentials::CredentialMetrics;
/// use prometheus_client::registry::Registry;
///
/// let metrics = CredentialMetrics::new();
/// let mut registry = Registry::default();
/// metrics.register(&mut registry);
/// ```
#[derive(Debug, Default)]
pub struct CredentialMetrics {
    fetches: Family<Fetch, Counter>,
}

impl CredentialMetrics {
    /// All zero.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Registers `airlock_credential_fetches_total{when, result}`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "airlock_credential_fetches",
            "Fetches of the gateway's own Azure tokens: when a request needed one (needed) or refreshing ahead of expiry (ahead), and whether they worked",
            self.fetches.clone(),
        );
    }

    pub(crate) fn fetched(&self, ahead: bool, ok: bool) {
        let fetch = Fetch {
            when: if ahead { "ahead" } else { "needed" },
            result: if ok { "ok" } else { "failed" },
        };
        self.fetches.get_or_create(&fetch).inc();
    }
}
