//! Probes and metrics. `/healthz` (the process answers) and `/readyz` (send
//! it traffic) are on both listeners, unauthenticated; `/metrics`
//! (Prometheus text format) is on the admin listener only, so agents cannot
//! read the gateway's counters.
//!
//! `/readyz` answers 503 while the gateway drains for shutdown and, with
//! `[audit] fail_closed = true`, while the recorder cannot record (its sink
//! fails or its queue is full): that replica would refuse every request with
//! `503 AirlockAuditUnavailable`, so a load balancer should route around it.
//! Fail-open, an unhealthy recorder keeps the replica ready and shows in
//! `airlock_audit_healthy` and `airlock_audit_events_dropped_total`.
//! `/readyz` also answers 503 while the database (the `[store]`) does not
//! answer its probe, made every two seconds: replicas on a PostgreSQL that
//! went away leave the load balancer's rotation even when idle.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use airlock_core::{AirlockBody, AirlockError};
use airlock_metrics::OPENMETRICS_TEXT;
use airlock_recorder::{AuditSink, RecorderMonitor};
use axum::Router;
use axum::body::Body;
use axum::response::IntoResponse;
use axum::routing::get;
use futures_util::future::{Either, MapOk, TryFutureExt as _};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use tower::Service;

/// A probe, by the path it is served at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Probe {
    /// `/healthz`: the process answers.
    Healthy,
    /// `/readyz`: send it traffic.
    Ready,
}

impl Probe {
    fn at(path: &str) -> Option<Self> {
        match path {
            "/healthz" => Some(Self::Healthy),
            "/readyz" => Some(Self::Ready),
            _ => None,
        }
    }
}

/// The agents' listener's service: `/healthz` and `/readyz` answered here
/// (to `GET` and `HEAD`; another method gets an ARM-shaped 405), every
/// other request passed to `inner`, the gateway's stack. Two exact paths
/// compared per request: an axum router in this place cost ~3.5k
/// instructions per request (callgrind), 3% of the unrecorded gateway.
#[derive(Clone, Debug)]
pub(crate) struct Probes<S> {
    health: Health,
    inner: S,
}

/// Turns the stack's answer into the listener's body type.
type ToListener = fn(Response<AirlockBody>) -> Response<Body>;

impl<S, B> Service<Request<B>> for Probes<S>
where
    S: Service<Request<B>, Response = Response<AirlockBody>, Error = Infallible>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response<Body>, Infallible>>, MapOk<S::Future, ToListener>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let Some(probe) = Probe::at(request.uri().path()) else {
            let to_listener: ToListener = |response| response.map(Body::new);
            return Either::Right(self.inner.call(request).map_ok(to_listener));
        };
        let response = if matches!(*request.method(), Method::GET | Method::HEAD) {
            let (status, text) = self.health.answer(probe);
            let mut response = Response::new(Body::from(text));
            *response.status_mut() = status;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            response
        } else {
            let mut refusal = AirlockError::custom(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                format!(
                    "{} answers GET and HEAD, not {}",
                    request.uri().path(),
                    request.method()
                ),
            )
            .into_response_for(&request)
            .map(Body::new);
            refusal
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            refusal
        };
        Either::Left(ready(Ok(response)))
    }
}

/// What the probes and `/metrics` report.
#[derive(Clone, Debug)]
pub(crate) struct Health {
    draining: Arc<AtomicBool>,
    audit: RecorderMonitor,
    /// `[audit] enabled`: the recorder's layer is in the stack.
    recording: bool,
    /// What approval notifications came to, when receivers are configured.
    notifications: Option<Arc<airlock_approval::DeliveryStats>>,
    /// The database, probed in the background.
    store: Option<StoreProbe>,
    /// The layers' counters (requests, tokens, masking, approvals…),
    /// registered once at start.
    registry: Arc<Registry>,
}

/// How often the database is probed for `/readyz`.
const STORE_PROBE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// The database's readiness (the audit sink's [`ready`](AuditSink::ready)),
/// checked every [`STORE_PROBE_INTERVAL`] so that an idle replica whose
/// database went away reports not ready before a request finds out.
#[derive(Clone, Debug)]
struct StoreProbe {
    problem: Arc<Mutex<Option<String>>>,
    _task: Arc<AbortOnDrop>,
}

#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl StoreProbe {
    fn start(sink: Arc<dyn AuditSink>) -> Self {
        let problem: Arc<Mutex<Option<String>>> = Arc::default();
        let writer = Arc::clone(&problem);
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(STORE_PROBE_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let found = sink.ready().await.err().map(|error| error.0);
                *writer.lock().unwrap_or_else(PoisonError::into_inner) = found;
            }
        });
        Self {
            problem,
            _task: Arc::new(AbortOnDrop(task)),
        }
    }

    fn problem(&self) -> Option<String> {
        self.problem
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Health {
    pub(crate) fn new(audit: RecorderMonitor, recording: bool) -> Self {
        Self {
            draining: Arc::new(AtomicBool::new(false)),
            audit,
            recording,
            notifications: None,
            store: None,
            registry: Arc::default(),
        }
    }

    /// Also reports the metrics in `registry` (the layers' counters).
    pub(crate) fn registry(mut self, registry: Registry) -> Self {
        self.registry = Arc::new(registry);
        self
    }

    /// Also reports the database: probed every two seconds, not ready while
    /// it cannot be reached.
    pub(crate) fn store(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.store = Some(StoreProbe::start(sink));
        self
    }

    /// Also reports approval notifications: sent, failed, dropped.
    pub(crate) fn notifications(
        mut self,
        stats: Option<Arc<airlock_approval::DeliveryStats>>,
    ) -> Self {
        self.notifications = stats;
        self
    }

    /// From now on `/readyz` answers 503 (the gateway is shutting down).
    pub(crate) fn drain(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Whether this replica should get traffic, and if not, why.
    pub(crate) fn readiness(&self) -> Result<(), String> {
        if self.draining.load(Ordering::Acquire) {
            return Err("draining".into());
        }
        if self.recording
            && let Err(problem) = self.audit.admits()
        {
            return Err(format!("not recording: {problem}"));
        }
        if let Some(problem) = self.store.as_ref().and_then(StoreProbe::problem) {
            return Err(format!("database not ready: {problem}"));
        }
        Ok(())
    }

    /// What `probe` answers now.
    fn answer(&self, probe: Probe) -> (StatusCode, String) {
        match probe {
            Probe::Healthy => (StatusCode::OK, "ok".to_owned()),
            Probe::Ready => match self.readiness() {
                Ok(()) => (StatusCode::OK, "ready".to_owned()),
                Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
            },
        }
    }

    /// The agents' listener's service: the probes, in front of `inner`.
    pub(crate) fn probes<S>(&self, inner: S) -> Probes<S> {
        Probes {
            health: self.clone(),
            inner,
        }
    }

    /// The probes and `/metrics`, for the admin listener.
    pub(crate) fn admin_routes(&self) -> Router {
        let answer = |health: Self, probe| {
            get(move || {
                let answer = health.answer(probe);
                async move { answer }
            })
        };
        let health = self.clone();
        Router::new()
            .route("/healthz", answer(self.clone(), Probe::Healthy))
            .route("/readyz", answer(self.clone(), Probe::Ready))
            .route(
                "/metrics",
                get(move || {
                    let text = health.metrics();
                    async move { ([(header::CONTENT_TYPE, OPENMETRICS_TEXT)], text).into_response() }
                }),
            )
    }

    /// Every metric, in the OpenMetrics text format: the layers' counters,
    /// and this replica's state read at scrape time.
    pub(crate) fn metrics(&self) -> String {
        let mut state = Registry::default();
        state.register_collector(Box::new(StateCollector(self.clone())));
        airlock_metrics::encode_all(&[&self.registry, &state])
    }
}

/// The replica's state (readiness, the recorder, notifications), read
/// when `/metrics` is scraped.
#[derive(Debug)]
struct StateCollector(Health);

impl Collector for StateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let health = &self.0;
        let stats = health.audit.stats();
        let gauge = |yes: bool| i64::from(yes);
        let size = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let gauges = [
            (
                "airlock_ready",
                "Whether this replica should get traffic (what /readyz answers)",
                gauge(health.readiness().is_ok()),
            ),
            (
                "airlock_audit_enabled",
                "Whether requests are recorded ([audit] enabled)",
                gauge(health.recording),
            ),
            (
                "airlock_audit_healthy",
                "Whether the recorder can take and store an event now",
                gauge(health.audit.health().is_ok()),
            ),
            (
                "airlock_audit_queue_events",
                "Events waiting for the audit writer",
                size(health.audit.queued()),
            ),
            (
                "airlock_audit_queue_capacity",
                "How many events the audit queue holds at most ([audit] queue_capacity)",
                size(health.audit.capacity()),
            ),
        ];
        let mut counters = vec![
            (
                "airlock_audit_events_recorded",
                "Audit events stored",
                stats.recorded,
            ),
            (
                "airlock_audit_events_dropped",
                "Audit events lost: not queued (fail-open overload) or in a batch the sink failed to store",
                stats.dropped,
            ),
            (
                "airlock_audit_batches_failed",
                "Batches the audit sink failed to store",
                stats.failed_batches,
            ),
            (
                "airlock_audit_batches_stored",
                "Batches the audit sink stored (events recorded / batches stored: the mean batch size)",
                stats.batches,
            ),
        ];
        if let Some(notifications) = health.notifications.as_deref() {
            counters.extend([
                (
                    "airlock_approval_notifications_sent",
                    "Approval notifications a receiver accepted",
                    notifications.sent(),
                ),
                (
                    "airlock_approval_notifications_failed",
                    "Approval notifications given up on after every attempt failed",
                    notifications.failed(),
                ),
                (
                    "airlock_approval_notifications_dropped",
                    "Approval notifications dropped because receivers were far behind",
                    notifications.dropped(),
                ),
            ]);
        }
        for (name, help, value) in gauges {
            let metric = ConstGauge::new(value);
            metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)?;
        }
        for (name, help, value) in counters {
            let metric = ConstCounter::new(value);
            metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;
    use std::convert::Infallible;
    use std::sync::Arc;

    use airlock_core::full;
    use airlock_recorder::{MemorySink, Recorder, RecorderConfig};
    use http::{Request, Response};
    use http_body_util::BodyExt;
    use tower::{ServiceBuilder, ServiceExt, service_fn};

    use super::*;

    /// A recorder over a sink that fails, after one request went through it.
    async fn failed_recorder(fail_closed: bool) -> Recorder {
        let sink = Arc::new(MemorySink::new());
        let config = RecorderConfig {
            fail_closed,
            ..RecorderConfig::default()
        };
        let recorder = Recorder::start(sink.clone(), config).await.unwrap();
        sink.set_failing(true);
        let service = ServiceBuilder::new()
            .layer(recorder.layer())
            .service(service_fn(|_: Request<_>| async {
                Ok::<_, Infallible>(Response::new(full("served")))
            }));
        let request = Request::get("/subscriptions?api-version=2022-12-01")
            .body(full(""))
            .unwrap();
        let response = service.oneshot(request).await.unwrap();
        let _ = response.into_body().collect().await;
        let monitor = recorder.monitor();
        for _ in 0..500 {
            if monitor.stats().failed_batches > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        recorder
    }

    /// Parses the OpenMetrics text: every sample follows its family's HELP
    /// and TYPE lines, a counter's sample is `{family}_total`, and the text
    /// ends with `# EOF`.
    fn samples(text: &str) -> HashMap<String, u64> {
        assert!(text.ends_with("# EOF\n"), "{text}");
        let mut samples = HashMap::new();
        let mut family: Option<(String, String)> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                family = Some((name.to_owned(), kind.to_owned()));
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (name, value) = line.split_once(' ').unwrap();
            let (family_name, kind) = family.clone().expect("a TYPE line first");
            match kind.as_str() {
                "counter" => assert_eq!(name, format!("{family_name}_total")),
                "gauge" => assert_eq!(name, family_name),
                other => panic!("{other}"),
            }
            samples.insert(name.to_owned(), value.parse().unwrap());
        }
        samples
    }

    /// The agents' listener: the probes in front of a stack that answers 404.
    fn agents(
        health: &Health,
    ) -> Probes<
        impl Service<Request<Body>, Response = Response<AirlockBody>, Error = Infallible> + Clone,
    > {
        health.probes(service_fn(|_: Request<Body>| async {
            let mut response = Response::new(full("from the stack"));
            *response.status_mut() = StatusCode::NOT_FOUND;
            Ok::<_, Infallible>(response)
        }))
    }

    async fn send<S>(service: S, request: Request<Body>) -> (StatusCode, Option<String>, String)
    where
        S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
    {
        let response = service.oneshot(request).await.unwrap();
        let status = response.status();
        let kind = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, kind, String::from_utf8(body.to_vec()).unwrap())
    }

    async fn get<S>(service: S, path: &str) -> (StatusCode, Option<String>, String)
    where
        S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
    {
        send(service, Request::get(path).body(Body::empty()).unwrap()).await
    }

    #[tokio::test]
    async fn fail_closed_a_failing_sink_makes_the_replica_unready_and_shows_in_metrics() {
        let recorder = failed_recorder(true).await;
        let health = Health::new(recorder.monitor(), true);
        let (status, _, body) = get(agents(&health), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body,
            "not recording: the audit sink is failing to store events"
        );

        let (status, kind, text) = get(health.admin_routes(), "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(kind.as_deref(), Some(OPENMETRICS_TEXT));
        let samples = samples(&text);
        assert_eq!(samples["airlock_ready"], 0);
        assert_eq!(samples["airlock_audit_enabled"], 1);
        assert_eq!(samples["airlock_audit_healthy"], 0);
        assert_eq!(samples["airlock_audit_events_recorded_total"], 0);
        assert_eq!(samples["airlock_audit_events_dropped_total"], 1);
        assert_eq!(samples["airlock_audit_batches_failed_total"], 1);
        assert_eq!(samples["airlock_audit_queue_events"], 0);
        assert_eq!(samples["airlock_audit_queue_capacity"], 8192);
        assert_eq!(samples["airlock_audit_batches_stored_total"], 0);
        assert_eq!(samples.len(), 9);
    }

    #[tokio::test]
    async fn fail_open_a_failing_sink_keeps_the_replica_ready_and_counts_the_drops() {
        let recorder = failed_recorder(false).await;
        let health = Health::new(recorder.monitor(), true);
        let (status, _, body) = get(agents(&health), "/readyz").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ready"));
        let samples = samples(&health.metrics());
        assert_eq!(samples["airlock_ready"], 1);
        assert_eq!(samples["airlock_audit_healthy"], 0);
        assert_eq!(samples["airlock_audit_events_dropped_total"], 1);
    }

    #[tokio::test]
    async fn recording_off_ignores_the_recorder_and_draining_is_unready() {
        let recorder = failed_recorder(true).await;
        let health = Health::new(recorder.monitor(), false);
        assert_eq!(health.readiness(), Ok(()));
        assert_eq!(samples(&health.metrics())["airlock_audit_enabled"], 0);

        health.drain();
        let (status, _, body) = get(agents(&health), "/readyz").await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "draining")
        );
        let (status, _, body) = get(agents(&health), "/healthz").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
        assert_eq!(
            get(agents(&health), "/metrics").await,
            (StatusCode::NOT_FOUND, None, "from the stack".to_owned()),
            "/metrics is for the admin listener only"
        );
        // Each probe is its path exactly; anything else is the stack's.
        for path in ["/healthz/", "/readyz/x", "/HEALTHZ"] {
            assert_eq!(
                get(agents(&health), path).await.0,
                StatusCode::NOT_FOUND,
                "{path}"
            );
        }
        let (status, kind, body) = get(health.admin_routes(), "/readyz").await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "draining")
        );
        assert_eq!(kind.as_deref(), Some("text/plain; charset=utf-8"));
    }

    #[tokio::test]
    async fn probes_answer_get_and_head_and_refuse_other_methods() {
        let recorder = failed_recorder(false).await;
        let health = Health::new(recorder.monitor(), true);
        let (status, kind, body) = get(agents(&health), "/healthz?verbose=1").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
        assert_eq!(kind.as_deref(), Some("text/plain; charset=utf-8"));
        let head = Request::head("/readyz").body(Body::empty()).unwrap();
        assert_eq!(send(agents(&health), head).await.0, StatusCode::OK);

        let post = Request::post("/readyz").body(Body::empty()).unwrap();
        let response = agents(&health).oneshot(post).await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[header::ALLOW], "GET, HEAD");
        assert_eq!(
            response.headers()[airlock_core::ERROR_CODE],
            "MethodNotAllowed"
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            error["error"]["message"],
            "/readyz answers GET and HEAD, not POST"
        );
    }
}
