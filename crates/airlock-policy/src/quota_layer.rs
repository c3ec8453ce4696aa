//! [`QuotaLayer`]: enforces the policy's `[[quota]]` tables.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use airlock_core::{
    AirlockBody, AirlockError, AnsweredByAirlock, AuditDraft, BoxError, BoxFuture, Decision,
    ErrorContext, Operation, Principal, QUOTA_RULE_PREFIX,
};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use tower::{Layer, Service};

use crate::quota_store::{QuotaKey, QuotaStore, Take, Usage};
use crate::{Limit, Quota, QuotaMetrics};

/// The quotas in force now (re-read per request, so a policy reload applies).
type Source = Arc<dyn Fn() -> Arc<[Quota]> + Send + Sync>;
/// The time quotas are counted at.
type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Counts requests against the policy's quotas, after the policy layer
/// and before approval; past a quota's limit, refuses the request (`403
/// AirlockQuotaExceeded`, saying when there is room again) or, with
/// `on_exceed = "approve"`, holds it for the quota's approvers.
///
/// - `max_requests` quotas count the operations of a request that gets
///   Azure's answer: they are taken when the request passes this layer (so
///   concurrent requests never overshoot), and given back when Airlock
///   answers instead ([`AnsweredByAirlock`]: refused further in, held for
///   approval and not approved, an answer held by the exfiltration guard,
///   Azure unreachable or its answer not deliverable: timed out, not
///   maskable), and when another quota refuses the request. So a quota
///   counts what reached the agent: a write Azure carried out whose answer
///   timed out is not counted (the audit trail has it). A
///   request past the limit that an approval lets through counts once Azure
///   answers. A request whose client goes away while it waits stays
///   counted (whether Azure saw it is unknown);
/// - `max_bytes` quotas admit a request while the window's bytes are below
///   the limit, and add the answer's bytes as they are sent (so one answer
///   may cross the limit; the next request waits);
/// - a request the policy denied, or no principal or operation, passes
///   untouched (the policy layer and the upstream refuse those);
/// - when the store cannot count, the request is refused (`503
///   AirlockQuotaUnavailable`): fail closed.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use airlock_core::{AirlockBody, Decision, Operation, Plane, Principal, PrincipalKind, ResourceScope, empty};
/// use airlock_policy::{MemoryQuotaStore, Policy, QuotaLayer};
/// use tower::{Layer, ServiceExt, service_fn};
///
/// let policy = Arc::new(Policy::parse(r#"
///     [[quota]]
///     name = "two-reads"
///     operations = ["Microsoft.KeyVault/vaults/secrets/getSecret/action"]
///     max_requests = 2
///     window = "1h"
/// "#, "policy.toml").unwrap());
/// let quotas = QuotaLayer::new(move || policy.quotas(), Arc::new(MemoryQuotaStore::default()));
/// let service = quotas.layer(service_fn(|_req: http::Request<AirlockBody>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(empty()))
/// }));
/// let read = || {
///     let mut request = http::Request::get("/secrets/db").body(empty()).unwrap();
///     request.extensions_mut().insert(Principal::builder("agent", PrincipalKind::ManagedIdentity).build());
///     request.extensions_mut().insert(Operation::new(
///         "Microsoft.KeyVault/vaults/secrets/getSecret/action",
///         Plane::Data,
///         ResourceScope::new("/providers/Microsoft.KeyVault/vaults/kv/secrets/db"),
///     ));
///     request.extensions_mut().insert(Decision::Allow { rule: "reads".into() });
///     request
/// };
/// assert_eq!(service.clone().oneshot(read()).await.unwrap().status(), 200);
/// assert_eq!(service.clone().oneshot(read()).await.unwrap().status(), 200);
/// let third = service.oneshot(read()).await.unwrap();
/// assert_eq!(third.status(), 403);
/// assert_eq!(third.headers()["x-ms-error-code"], "AirlockQuotaExceeded");
/// # });
/// ```
#[derive(Clone)]
pub struct QuotaLayer {
    quotas: Source,
    store: Arc<dyn QuotaStore>,
    clock: Clock,
    metrics: Option<Arc<QuotaMetrics>>,
}

impl std::fmt::Debug for QuotaLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuotaLayer").finish_non_exhaustive()
    }
}

impl QuotaLayer {
    /// Enforces the quotas `quotas` returns (asked per request), counted in `store`.
    pub fn new(
        quotas: impl Fn() -> Arc<[Quota]> + Send + Sync + 'static,
        store: Arc<dyn QuotaStore>,
    ) -> Self {
        Self {
            quotas: Arc::new(quotas),
            store,
            clock: Arc::new(SystemTime::now),
            metrics: None,
        }
    }

    /// Counts requests past a limit, and those the store could not count,
    /// in `metrics`.
    #[must_use]
    pub fn metrics(mut self, metrics: Arc<QuotaMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Counts at the times `clock` gives (default the system clock): for tests.
    #[must_use]
    pub fn clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }
}

impl<S> Layer<S> for QuotaLayer {
    type Service = QuotaService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        QuotaService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The quota middleware; see [`QuotaLayer`].
#[derive(Clone)]
pub struct QuotaService<S> {
    inner: S,
    layer: QuotaLayer,
}

impl<S> std::fmt::Debug for QuotaService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuotaService").finish_non_exhaustive()
    }
}

/// One quota that applies to a request.
struct Applies {
    quota: Quota,
    key: QuotaKey,
    amount: u64,
}

impl<S, ResBody> Service<Request<AirlockBody>> for QuotaService<S>
where
    S: Service<Request<AirlockBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<AirlockBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<AirlockBody>) -> Self::Future {
        let applies = self.applicable(&request);
        if applies.is_empty() {
            let called = self.inner.call(request);
            return Box::pin(async move { called.await.map(|r| r.map(AirlockBody::new)) });
        }
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let mut request = request;
            let now = (layer.clock)();
            // Operations counted now, given back if Azure does not answer.
            let mut taken = Uses::default();
            // Past a limit and sent on for approval: counted once Azure answers.
            let mut past_limit = Uses::default();
            let mut bytes = Vec::new();
            for applies in applies {
                let (amount, limit) = match applies.quota.limit {
                    Limit::Requests(max) => (applies.amount, max),
                    Limit::Bytes(max) => (0, max),
                };
                let take = Take {
                    key: &applies.key,
                    amount,
                    limit,
                    window: applies.quota.window,
                    now,
                };
                let outcome = match layer.store.take(take).await {
                    Ok(outcome) => outcome,
                    Err(error) => {
                        taken.give_back(&*layer.store, now).await;
                        tracing::error!(quota = applies.quota.name(), %error, "quota store failed; request refused");
                        if let Some(metrics) = &layer.metrics {
                            metrics.unavailable();
                        }
                        let error = AirlockError::custom(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "AirlockQuotaUnavailable",
                            format!(
                                "Airlock could not count this request against {}, so it is refused; try again shortly",
                                applies.quota
                            ),
                        );
                        return Ok(error.into_response_for(&request));
                    }
                };
                if outcome.granted {
                    taken.push(&applies.key, amount);
                } else {
                    let refusal = exceeded(&mut request, &applies, &outcome.usage, now);
                    if let Some(metrics) = &layer.metrics {
                        metrics.exceeded(applies.quota.name(), refusal.is_some());
                    }
                    if let Some(refusal) = refusal {
                        taken.give_back(&*layer.store, now).await;
                        return Ok(refusal);
                    }
                    past_limit.push(&applies.key, amount);
                }
                // An answer let through (an approval past the limit
                // included) counts its bytes.
                if matches!(applies.quota.limit, Limit::Bytes(_)) {
                    bytes.push(applies.key);
                }
            }
            let response = inner.call(request).await?;
            if response.extensions().get::<AnsweredByAirlock>().is_some() {
                taken.give_back(&*layer.store, now).await;
            } else {
                past_limit.add(&*layer.store, now).await;
            }
            if bytes.is_empty() {
                return Ok(response.map(AirlockBody::new));
            }
            let (store, clock) = (layer.store.clone(), layer.clock.clone());
            let report = Box::new(move |sent: u64| {
                if sent == 0 {
                    return;
                }
                tokio::spawn(async move {
                    for key in &bytes {
                        if let Err(error) = store.add(key, sent, clock()).await {
                            tracing::error!(quota = key.quota, %error, "answer bytes not counted");
                        }
                    }
                });
            });
            Ok(response.map(|body| AirlockBody::new(Counted::new(body, report))))
        })
    }
}

/// Operation counts of one request, per quota.
#[derive(Default)]
struct Uses(Vec<(QuotaKey, u64)>);

impl Uses {
    fn push(&mut self, key: &QuotaKey, amount: u64) {
        if amount > 0 {
            self.0.push((key.clone(), amount));
        }
    }

    /// Gives back what was taken at `at`: Azure did not answer.
    async fn give_back(&self, store: &dyn QuotaStore, at: SystemTime) {
        for (key, amount) in &self.0 {
            if let Err(error) = store.give_back(key, *amount, at).await {
                tracing::warn!(quota = key.quota, %error, "quota use not given back: it stays counted");
            }
        }
    }

    /// Counts uses past the limit that an approval let through to Azure.
    async fn add(&self, store: &dyn QuotaStore, at: SystemTime) {
        for (key, amount) in &self.0 {
            if let Err(error) = store.add(key, *amount, at).await {
                tracing::error!(quota = key.quota, %error, "approved use past the limit not counted");
            }
        }
    }
}

impl<S> QuotaService<S> {
    /// The quotas that count this request, with its subject and amount.
    fn applicable(&self, request: &Request<AirlockBody>) -> Vec<Applies> {
        let extensions = request.extensions();
        let (Some(principal), Some(operation), Some(decision)) = (
            extensions.get::<Principal>(),
            extensions.get::<Operation>(),
            extensions.get::<Decision>(),
        ) else {
            return Vec::new();
        };
        if matches!(decision, Decision::Deny { .. }) {
            return Vec::new();
        }
        let quotas = (self.layer.quotas)();
        quotas
            .iter()
            .filter_map(|quota| {
                let amount = quota.counts(principal, operation);
                let subject = quota.subject(principal)?;
                (amount > 0).then(|| Applies {
                    key: QuotaKey {
                        quota: quota.name().to_owned(),
                        subject,
                    },
                    quota: quota.clone(),
                    amount,
                })
            })
            .collect()
    }
}

/// Past the limit: the refusal to answer, or `None` when the request now
/// waits for the quota's approvers (or already waits for an approval).
fn exceeded(
    request: &mut Request<AirlockBody>,
    applies: &Applies,
    usage: &Usage,
    now: SystemTime,
) -> Option<Response<AirlockBody>> {
    let quota = &applies.quota;
    let room = usage
        .oldest
        .and_then(|oldest| (oldest + quota.window).duration_since(now).ok())
        .map(|wait| Duration::from_secs(wait.as_secs() + 1));
    let when = room.map_or_else(String::new, |wait| {
        format!(
            "; there is room again in {}",
            humantime::format_duration(wait)
        )
    });
    tracing::info!(
        quota = quota.name(),
        subject = applies.key.subject,
        used = usage.used,
        "quota exceeded"
    );
    match quota.exceeded() {
        Some(approval) => {
            if matches!(
                request.extensions().get::<Decision>(),
                Some(Decision::Allow { .. })
            ) {
                if let Some(draft) = request.extensions().get::<AuditDraft>() {
                    draft.update(|record| record.decision = Some(approval.clone()));
                }
                request.extensions_mut().insert(approval);
            }
            None
        }
        None => {
            let principal = request
                .extensions()
                .get::<Principal>()
                .map(ToString::to_string)
                .unwrap_or_default();
            let error = AirlockError::Forbidden {
                code: "AirlockQuotaExceeded",
                message: format!(
                    "{quota} is used up for {principal}: {} of {} {} in the window{when}",
                    usage.used,
                    quota.limit().max(),
                    quota.limit().unit(),
                ),
            };
            let context = ErrorContext::from_request(request)
                .rule(format!("{QUOTA_RULE_PREFIX}{}", quota.name()));
            Some(error.into_response(&context))
        }
    }
}

pin_project_lite::pin_project! {
    /// An answer body that reports how many bytes it sent once it ends
    /// (or is dropped part way).
    struct Counted<B> {
        #[pin]
        inner: B,
        report: Report,
    }
}

impl<B> Counted<B> {
    fn new(inner: B, report: Box<dyn FnOnce(u64) + Send>) -> Self {
        Self {
            inner,
            report: Report {
                sent: 0,
                report: Some(report),
            },
        }
    }
}

/// Calls its function once, with the bytes counted, when dropped.
struct Report {
    sent: u64,
    report: Option<Box<dyn FnOnce(u64) + Send>>,
}

impl Drop for Report {
    fn drop(&mut self) {
        if let Some(report) = self.report.take() {
            report(self.sent);
        }
    }
}

impl<B> Body for Counted<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            this.report.sent = this.report.sent.saturating_add(data.len() as u64);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
