//! Request metrics for Airlock's stack, in a [`prometheus_client`] registry.
//!
//! [`MetricsLayer`] reads what the other layers wrote into the request's
//! [`AuditDraft`] (the decision, the operation, the upstream's status and
//! time) when the response head comes back, and counts:
//!
//! - `airlock_requests_total{decision, provider, status_class}`: `decision`
//!   is `allow`, `deny`, `approve` or `none` (refused before policy);
//!   `provider` the operation's resource provider namespace
//!   (`Microsoft.Storage`), `none` when unclassified, `other` past
//!   [`MAX_PROVIDERS`] distinct ones (an agent cannot grow the label set
//!   without bound); `status_class` `2xx`…`5xx`;
//! - `airlock_request_duration_seconds{decision}`: arrival to response head;
//! - `airlock_upstream_duration_seconds`: Azure's part of it;
//! - `airlock_upstream_errors_total{code}`: Airlock's `AirlockUpstream…`
//!   refusals (Azure unreachable, timed out, rejected the credential);
//! - `airlock_policy_observed_total{would_have}`: observe mode, requests a
//!   rule would have refused (`deny`) or held (`approve`) had it enforced.
//!
//! No label carries a resource id, a principal or a path.
//!
//! Place it inside the recorder (which puts the draft in the extensions);
//! without one, the layer puts a draft there itself.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::convert::Infallible;
//! use airlock_core::{AuditDraft, Decision};
//! use airlock_metrics::{MetricsLayer, RequestMetrics, encode};
//! use prometheus_client::registry::Registry;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! let metrics = RequestMetrics::new();
//! let mut registry = Registry::default();
//! metrics.register(&mut registry);
//! let service = ServiceBuilder::new()
//!     .layer(MetricsLayer::new(metrics))
//!     .service(service_fn(|request: http::Request<()>| async move {
//!         // What the policy layer would have written.
//!         let draft = request.extensions().get::<AuditDraft>().unwrap();
//!         draft.update(|r| r.decision = Some(Decision::Allow { rule: "read".into() }));
//!         Ok::<_, Infallible>(http::Response::new(()))
//!     }));
//! service.oneshot(http::Request::new(())).await.unwrap();
//! let text = encode(&registry);
//! assert!(text.contains(r#"airlock_requests_total{decision="allow",provider="none",status_class="2xx"} 1"#), "{text}");
//! # });
//! ```

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Instant;

use airlock_core::{AuditDraft, AuditRecord, Decision};
use http::{Request, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tower::{Layer, Service};

/// The most distinct provider namespaces given a label of their own.
pub const MAX_PROVIDERS: usize = 64;

/// The media type of what [`encode`] writes.
pub const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `registry` in the OpenMetrics text format (what Prometheus scrapes).
pub fn encode(registry: &Registry) -> String {
    encode_all(&[registry])
}

/// Several registries as one OpenMetrics text (one `# EOF` at the end):
/// for example metrics registered once at start next to a collector
/// registered per scrape.
pub fn encode_all(registries: &[&Registry]) -> String {
    use prometheus_client::encoding::text::{encode_eof, encode_registry};
    let mut text = String::new();
    // Writing to a String cannot fail.
    for registry in registries {
        let _ = encode_registry(&mut text, registry);
    }
    let _ = encode_eof(&mut text);
    text
}

/// The value of one series in `registry`, if it has a sample: `series` is
/// the sample's name with its labels as the text format writes them
/// (`airlock_requests_total{decision="allow",provider="none",status_class="2xx"}`).
/// For tests and probes that check one number.
///
/// ```
/// use airlock_metrics::{RequestMetrics, sample};
/// use prometheus_client::registry::Registry;
///
/// let mut registry = Registry::default();
/// RequestMetrics::new().register(&mut registry);
/// assert_eq!(sample(&registry, "airlock_upstream_duration_seconds_count").as_deref(), Some("0"));
/// assert_eq!(sample(&registry, "airlock_no_such_series"), None);
/// ```
pub fn sample(registry: &Registry, series: &str) -> Option<String> {
    encode(registry).lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        Some(value.to_owned())
    })
}

/// Label values admitted so far, at most a fixed number of distinct ones:
/// past it every new value is counted as `other`, so that what an agent
/// sends (a made-up provider namespace, a custom masker's labels) cannot
/// grow a metric's label set without bound.
///
/// ```
/// use airlock_metrics::BoundedLabels;
///
/// let labels = BoundedLabels::new(1);
/// assert_eq!(labels.admit("Microsoft.Storage"), "Microsoft.Storage");
/// assert_eq!(labels.admit("Agent.MadeUp"), "other");
/// assert_eq!(labels.admit("Microsoft.Storage"), "Microsoft.Storage");
/// ```
#[derive(Debug)]
pub struct BoundedLabels {
    limit: usize,
    seen: Mutex<HashSet<String>>,
}

impl BoundedLabels {
    /// At most `limit` distinct values.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            seen: Mutex::default(),
        }
    }

    /// `value` when it was admitted before or there is room for it, else `other`.
    pub fn admit(&self, value: &str) -> String {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.contains(value) {
            return value.to_owned();
        }
        if seen.len() < self.limit {
            seen.insert(value.to_owned());
            value.to_owned()
        } else {
            "other".to_owned()
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    decision: &'static str,
    provider: String,
    status_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabel {
    decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: String,
}

/// The request metrics, registered in a registry; share it with [`MetricsLayer`].
#[derive(Debug)]
pub struct RequestMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Family<DecisionLabel, Histogram>,
    upstream_duration: Histogram,
    upstream_errors: Family<CodeLabel, Counter>,
    observed: Family<WouldHaveLabel, Counter>,
    /// `requests`' counters, by provider label, looked up once (see
    /// [`Series`]): at most [`MAX_PROVIDERS`] namespaces and `other`.
    series: RwLock<HashMap<String, Arc<Series>>>,
    /// The same for requests that were not classified (provider `none`).
    unclassified: Series,
    /// `duration`'s histograms by decision, looked up once.
    durations: [OnceLock<Histogram>; DECISIONS.len()],
}

/// The provider label of namespaces past [`MAX_PROVIDERS`] or malformed.
const OTHER: &str = "other";
/// The decision labels, in [`decision_index`] order.
const DECISIONS: [&str; 4] = ["allow", "deny", "approve", "none"];
/// The status class labels, in [`status_index`] order.
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// One provider label's `airlock_requests` counters by decision and status
/// class, each taken from the family the first time it counts: after that a
/// request counts itself with one atomic add instead of hashing its label
/// set into the family's map (with the label's `String`, ~2k instructions
/// per request).
#[derive(Debug)]
struct Series {
    provider: String,
    requests: [[OnceLock<Counter>; STATUS_CLASSES.len()]; DECISIONS.len()],
}

impl Series {
    fn new(provider: String) -> Self {
        Self {
            provider,
            requests: Default::default(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WouldHaveLabel {
    would_have: &'static str,
}

/// A decision as a label value.
fn label(decision: Option<&Decision>) -> &'static str {
    DECISIONS[decision_index(decision)]
}

/// A decision's place in [`DECISIONS`].
fn decision_index(decision: Option<&Decision>) -> usize {
    match decision {
        Some(Decision::Allow { .. }) => 0,
        Some(Decision::Deny { .. }) => 1,
        Some(Decision::RequireApproval { .. }) => 2,
        None => 3,
    }
}

/// A status's place in [`STATUS_CLASSES`].
fn status_index(status: http::StatusCode) -> usize {
    match status.as_u16() {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        _ => 4,
    }
}

/// Buckets from 1 ms to about 33 s (held approvals are long).
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.001, 2.0, 16)
}

impl RequestMetrics {
    /// New metrics, all zero; [`register`](Self::register) them in a registry.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(|| Histogram::new(latency_buckets())),
            upstream_duration: Histogram::new(latency_buckets()),
            upstream_errors: Family::default(),
            observed: Family::default(),
            series: RwLock::default(),
            unclassified: Series::new("none".to_owned()),
            durations: Default::default(),
        })
    }

    /// Registers the metrics (named `airlock_…`) in `registry`. They share
    /// their values with every registry they are registered in (a registry
    /// built per scrape included).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "airlock_requests",
            "Requests answered, by decision, resource provider namespace and status class",
            self.requests.clone(),
        );
        registry.register(
            "airlock_request_duration_seconds",
            "From a request's arrival to its response head, by decision",
            self.duration.clone(),
        );
        registry.register(
            "airlock_upstream_duration_seconds",
            "Time waiting for Azure's response head",
            self.upstream_duration.clone(),
        );
        registry.register(
            "airlock_upstream_errors",
            "Requests Azure could not answer (unreachable, timed out, credential rejected), by error code",
            self.upstream_errors.clone(),
        );
        registry.register(
            "airlock_policy_observed",
            "Requests an observe-mode rule would have refused (deny) or held (approve) had it enforced; they went on as decided",
            self.observed.clone(),
        );
    }

    /// Counts one answered request.
    fn observe(&self, record: &AuditRecord, status: http::StatusCode, elapsed: f64) {
        let decision = label(record.decision.as_ref());
        if record.would_have.is_some() {
            self.observed
                .get_or_create(&WouldHaveLabel {
                    would_have: label(record.would_have.as_ref()),
                })
                .inc();
        }
        let (decided, class) = (
            decision_index(record.decision.as_ref()),
            status_index(status),
        );
        let provider = record
            .operation
            .as_ref()
            .map(|op| self.series_of(op.name()));
        let series = provider.as_deref().unwrap_or(&self.unclassified);
        series.requests[decided][class]
            .get_or_init(|| {
                self.requests
                    .get_or_create(&RequestLabels {
                        decision,
                        provider: series.provider.clone(),
                        status_class: STATUS_CLASSES[class],
                    })
                    .clone()
            })
            .inc();
        self.durations[decided]
            .get_or_init(|| {
                self.duration
                    .get_or_create(&DecisionLabel { decision })
                    .clone()
            })
            .observe(elapsed);
        if let Some(upstream) = record.upstream_duration {
            self.upstream_duration.observe(upstream.as_secs_f64());
        }
        if let Some(code) = record
            .error_code
            .as_deref()
            .filter(|code| code.starts_with("AirlockUpstream"))
        {
            self.upstream_errors
                .get_or_create(&CodeLabel {
                    code: code.to_owned(),
                })
                .inc();
        }
    }

    /// The series of an operation's provider namespace: its own among the
    /// first [`MAX_PROVIDERS`] well-formed ones seen, else `other`'s. What
    /// an agent makes up beyond those takes this slow path every time and
    /// never grows the map.
    fn series_of(&self, operation: &str) -> Arc<Series> {
        let namespace = operation.split('/').next().unwrap_or_default();
        let found = self
            .series
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(namespace)
            .cloned();
        if let Some(series) = found {
            return series;
        }
        let well_formed = namespace.split_once('.').is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && namespace.len() <= 64
                && namespace
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.')
        });
        let mut series = self.series.write().unwrap_or_else(PoisonError::into_inner);
        let named = series.len() - usize::from(series.contains_key(OTHER));
        let label = if well_formed && named < MAX_PROVIDERS {
            namespace
        } else {
            OTHER
        };
        Arc::clone(
            series
                .entry(label.to_owned())
                .or_insert_with_key(|label| Arc::new(Series::new(label.clone()))),
        )
    }

    /// The provider label of an operation name (see [`series_of`](Self::series_of)).
    #[cfg(test)]
    fn provider(&self, operation: &str) -> String {
        self.series_of(operation).provider.clone()
    }
}

/// Counts and times every request; see the [crate docs](crate).
#[derive(Clone, Debug)]
pub struct MetricsLayer {
    metrics: Arc<RequestMetrics>,
}

impl MetricsLayer {
    /// A layer counting into `metrics`.
    pub fn new(metrics: Arc<RequestMetrics>) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            metrics: Arc::clone(&self.metrics),
        }
    }
}

/// The service [`MetricsLayer`] wraps around another.
#[derive(Clone, Debug)]
pub struct MetricsService<S> {
    inner: S,
    metrics: Arc<RequestMetrics>,
}

impl<S, B, R> Service<Request<B>> for MetricsService<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<R>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let started = Instant::now();
        let draft = match request.extensions().get::<AuditDraft>() {
            Some(draft) => draft.clone(),
            None => {
                let draft = AuditDraft::default();
                request.extensions_mut().insert(draft.clone());
                draft
            }
        };
        let metrics = Arc::clone(&self.metrics);
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            // Read in place: a copy of the whole record (principal, groups,
            // operations) per request only to count it was waste.
            let elapsed = started.elapsed().as_secs_f64();
            draft.read(|record| metrics.observe(record, response.status(), elapsed));
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn provider_labels_are_bounded_and_never_carry_ids() {
        let metrics = RequestMetrics::new();
        assert_eq!(
            metrics.provider("Microsoft.Storage/storageAccounts/write"),
            "Microsoft.Storage"
        );
        assert_eq!(metrics.provider("not-a-namespace/x"), "other");
        assert_eq!(metrics.provider("Microsoft.Bad name/x"), "other");
        for n in 0..MAX_PROVIDERS {
            metrics.provider(&format!("Agent.Made{n}/things/read"));
        }
        assert_eq!(metrics.provider("Agent.OneTooMany/x"), "other");
        assert_eq!(
            metrics.provider("Microsoft.Storage/x"),
            "Microsoft.Storage",
            "seen before the cap: kept"
        );
    }

    #[test]
    fn requests_count_into_one_series_per_label_set_and_made_up_providers_stay_bounded() {
        use airlock_core::{Operation, Plane, ResourceScope};
        let metrics = RequestMetrics::new();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let record = |namespace: &str| AuditRecord {
            operation: Some(Operation::new(
                format!("{namespace}/things/read"),
                Plane::Management,
                ResourceScope::new("/subscriptions/s"),
            )),
            decision: Some(Decision::Allow { rule: "r".into() }),
            ..AuditRecord::default()
        };
        for _ in 0..3 {
            metrics.observe(&record("Microsoft.Storage"), http::StatusCode::OK, 0.01);
        }
        metrics.observe(
            &record("Microsoft.Storage"),
            http::StatusCode::NOT_FOUND,
            0.01,
        );
        metrics.observe(&AuditRecord::default(), http::StatusCode::FORBIDDEN, 0.01);
        for n in 0..2 * MAX_PROVIDERS {
            metrics.observe(
                &record(&format!("Agent.Made{n}")),
                http::StatusCode::OK,
                0.01,
            );
        }
        metrics.observe(&record("not a namespace"), http::StatusCode::OK, 0.01);
        let value = |series: &str| sample(&registry, series).and_then(|v| v.parse::<u64>().ok());
        assert_eq!(
            value(
                r#"airlock_requests_total{decision="allow",provider="Microsoft.Storage",status_class="2xx"}"#
            ),
            Some(3)
        );
        assert_eq!(
            value(
                r#"airlock_requests_total{decision="allow",provider="Microsoft.Storage",status_class="4xx"}"#
            ),
            Some(1)
        );
        assert_eq!(
            value(r#"airlock_requests_total{decision="none",provider="none",status_class="4xx"}"#),
            Some(1)
        );
        // Microsoft.Storage and the first 63 made-up ones have labels of
        // their own; the other 65 made-up ones and the malformed one are `other`.
        assert_eq!(
            value(
                r#"airlock_requests_total{decision="allow",provider="other",status_class="2xx"}"#
            ),
            Some(2 * MAX_PROVIDERS as u64 - (MAX_PROVIDERS as u64 - 1) + 1)
        );
        let text = encode(&registry);
        let providers = text
            .lines()
            .filter(|line| line.starts_with("airlock_requests_total{"))
            .count();
        assert_eq!(providers, MAX_PROVIDERS + 1 + 1 + 1, "{text}");
        assert!(metrics.series.read().unwrap().len() <= MAX_PROVIDERS + 1);
        assert_eq!(
            value(r#"airlock_request_duration_seconds_count{decision="allow"}"#),
            Some(4 + 2 * MAX_PROVIDERS as u64 + 1)
        );
    }

    #[test]
    fn observe_mode_counts_what_a_rule_would_have_done() {
        let metrics = RequestMetrics::new();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let record = AuditRecord {
            decision: Some(Decision::Allow {
                rule: "reads".into(),
            }),
            would_have: Some(Decision::Deny {
                rule: "no-deletes".into(),
                reason: "no".into(),
            }),
            ..AuditRecord::default()
        };
        metrics.observe(&record, http::StatusCode::OK, 0.01);
        metrics.observe(&AuditRecord::default(), http::StatusCode::OK, 0.01);
        let text = encode(&registry);
        assert!(
            text.contains(r#"airlock_policy_observed_total{would_have="deny"} 1"#),
            "{text}"
        );
        assert!(!text.contains(r#"would_have="none""#), "{text}");
    }

    #[test]
    fn upstream_errors_and_time_are_counted_apart() {
        let metrics = RequestMetrics::new();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let record = AuditRecord {
            error_code: Some("AirlockUpstreamTimeout".into()),
            upstream_duration: Some(std::time::Duration::from_millis(30)),
            ..AuditRecord::default()
        };
        metrics.observe(&record, http::StatusCode::GATEWAY_TIMEOUT, 0.031);
        let denied = AuditRecord {
            error_code: Some("AirlockPolicyDenied".into()),
            ..AuditRecord::default()
        };
        metrics.observe(&denied, http::StatusCode::FORBIDDEN, 0.001);
        let text = encode(&registry);
        assert!(
            text.contains(r#"airlock_upstream_errors_total{code="AirlockUpstreamTimeout"} 1"#),
            "{text}"
        );
        assert!(!text.contains("AirlockPolicyDenied"), "{text}");
        assert!(
            text.contains("airlock_upstream_duration_seconds_count 1"),
            "{text}"
        );
        assert!(
            text.contains(
                r#"airlock_requests_total{decision="none",provider="none",status_class="4xx"} 1"#
            ),
            "{text}"
        );
    }
}
