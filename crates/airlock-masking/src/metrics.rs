//! [`MaskingMetrics`]: what masking found, by detector.

use std::sync::Arc;

use airlock_metrics::BoundedLabels;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// The most distinct detector labels (the built-in detectors use about ten;
/// a custom [`Masker`](crate::Masker) may report more).
const MAX_DETECTORS: usize = 32;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DetectorLabel {
    detector: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RevealLabel {
    by: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// Counts a [`MaskingLayer`](crate::MaskingLayer)'s work (give it one with
/// [`MaskingLayer::metrics`](crate::MaskingLayer::metrics)):
///
/// - `airlock_masked_values_total{detector}`: values masked, by what found
///   them: `rule` for a field a [`MaskRule`](crate::MaskRule) selected, else
///   the detector's label (`AccountKey`, `SharedAccessSignature`, `JWT`, …);
/// - `airlock_masking_responses_total{result}`: responses inspected that
///   were `masked`, `clean`, or `withheld` (`502 AirlockMaskingFailed`);
/// - `airlock_revealed_values_total{by}`: values that reached the client in
///   clear, by a reveal `rule` or an `approval`.
///
/// ```
/// use airlock_masking::MaskingMetrics;
/// use prometheus_client::registry::Registry;
///
/// let metrics = MaskingMetrics::new();
/// let mut registry = Registry::default();
/// metrics.register(&mut registry);
/// ```
#[derive(Debug)]
pub struct MaskingMetrics {
    values: Family<DetectorLabel, Counter>,
    responses: Family<ResultLabel, Counter>,
    revealed: Family<RevealLabel, Counter>,
    detectors: BoundedLabels,
}

impl MaskingMetrics {
    /// All zero.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            values: Family::default(),
            responses: Family::default(),
            revealed: Family::default(),
            detectors: BoundedLabels::new(MAX_DETECTORS),
        })
    }

    /// Registers `airlock_masked_values_total`, `airlock_masking_responses_total`
    /// and `airlock_revealed_values_total`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "airlock_masked_values",
            "Secret values masked in responses, by what found them (rule: a masking rule's field; else the detector)",
            self.values.clone(),
        );
        registry.register(
            "airlock_masking_responses",
            "Responses masking inspected: masked, clean, or withheld because they could not be inspected",
            self.responses.clone(),
        );
        registry.register(
            "airlock_revealed_values",
            "Secret values that reached the client in clear, by what allowed it (a reveal rule, or an approval of that one answer)",
            self.revealed.clone(),
        );
    }

    /// Counts one inspected response, from the paths its masking reported.
    pub(crate) fn inspected(&self, paths: &[String]) {
        let result = if paths.is_empty() { "clean" } else { "masked" };
        self.responses.get_or_create(&ResultLabel { result }).inc();
        for path in paths {
            let detector = detector_of(path)
                .map_or_else(|| "rule".to_owned(), |label| self.detectors.admit(label));
            self.values.get_or_create(&DetectorLabel { detector }).inc();
        }
    }

    /// Counts values revealed in one answer, by rule or by approval.
    pub(crate) fn revealed(&self, count: usize, revealing: Option<&crate::reveal::Revealing>) {
        let Some(revealing) = revealing.filter(|_| count > 0) else {
            return;
        };
        let by = if revealing.by.starts_with("approval") {
            "approval"
        } else {
            "rule"
        };
        self.revealed
            .get_or_create(&RevealLabel { by })
            .inc_by(count as u64);
    }

    /// Counts one response withheld because it could not be masked.
    pub(crate) fn withheld(&self) {
        let result = "withheld";
        self.responses.get_or_create(&ResultLabel { result }).inc();
    }
}

/// The detector label of a reported path, `$.a.b (AccountKey)`; `None` for
/// a rule's field, `$.keys[0].value`.
fn detector_of(path: &str) -> Option<&str> {
    let inner = path.strip_suffix(')')?;
    let (_, label) = inner.rsplit_once(" (")?;
    Some(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_names_its_detector_or_a_rule() {
        assert_eq!(
            detector_of("$.properties.cs (AccountKey)"),
            Some("AccountKey")
        );
        assert_eq!(detector_of("$ (JWT)"), Some("JWT"));
        assert_eq!(detector_of("$.keys[0].value"), None);
    }
}
