//! [`IdentityMetrics`]: what token validation did, in a `prometheus-client` registry.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    result: &'static str,
}

/// Counts a [`JwtValidator`](crate::JwtValidator)'s work: tokens answered
/// from its cache, verified, or rejected, and signing-key (JWKS) refreshes.
/// Share one between validators with
/// [`JwtValidatorBuilder::metrics`](crate::JwtValidatorBuilder::metrics) and
/// [`register`](Self::register) it once.
///
/// ```
/// use airlock_identity::IdentityMetrics;
/// use prometheus_client::registry::Registry;
///
/// let metrics = IdentityMetrics::new();
/// let mut registry = Registry::default();
/// metrics.register(&mut registry);
/// ```
#[derive(Debug, Default)]
pub struct IdentityMetrics {
    validations: Family<Outcome, Counter>,
    key_refreshes: Family<Outcome, Counter>,
}

impl IdentityMetrics {
    /// All zero.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Registers `airlock_token_validations_total{result="cached|verified|rejected"}`
    /// and `airlock_signing_key_refreshes_total{result="ok|failed"}`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "airlock_token_validations",
            "Bearer tokens checked: answered from the cache of verified tokens (cached), verified against the signing keys (verified), or refused (rejected)",
            self.validations.clone(),
        );
        registry.register(
            "airlock_signing_key_refreshes",
            "Fetches of the identity provider's signing keys (JWKS), scheduled or for an unknown key id",
            self.key_refreshes.clone(),
        );
    }

    pub(crate) fn validated(&self, result: &'static str) {
        self.validations.get_or_create(&Outcome { result }).inc();
    }

    pub(crate) fn keys_refreshed(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.key_refreshes.get_or_create(&Outcome { result }).inc();
    }
}
