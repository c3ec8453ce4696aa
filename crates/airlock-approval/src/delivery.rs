//! [`Delivery`]: sending notifications in the background, with retry and
//! backoff, off the request path.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use airlock_core::HttpClient;
use bytes::Bytes;
use http::Request;
use tokio::sync::mpsc;

/// One POST to make.
#[derive(Debug)]
pub(crate) struct Outgoing {
    /// Names the receiver in logs (its kind and host, never its URL: a
    /// Slack or Teams webhook URL is a secret).
    pub(crate) receiver: String,
    pub(crate) url: http::Uri,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: Bytes,
}

impl Outgoing {
    fn request(&self) -> Request<Bytes> {
        let mut request = Request::new(self.body.clone());
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = self.url.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }
}

/// How often and how patiently a notification is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    /// Attempts in all (at least 1).
    pub attempts: u32,
    /// The wait before the second attempt; doubled before each later one.
    pub first_backoff: Duration,
    /// How long one attempt may take: a receiver that hangs fails it.
    pub timeout: Duration,
}

impl Default for Retry {
    /// 4 attempts, 1 s, 2 s and 4 s apart, 10 s each.
    fn default() -> Self {
        Self {
            attempts: 4,
            first_backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
        }
    }
}

/// What deliveries came to, for `/metrics`.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

impl DeliveryStats {
    /// Notifications a receiver accepted (2xx).
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
    /// Notifications given up on after every attempt failed.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
    /// Notifications not queued because the queue was full (receivers far
    /// behind): dropped rather than slow the request path.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// A bounded queue and one task that empties it: `send` never waits, and a
/// slow, failing or hanging receiver delays only later notifications.
#[derive(Clone, Debug)]
pub struct Delivery {
    queue: mpsc::Sender<Outgoing>,
    stats: Arc<DeliveryStats>,
}

/// Notifications waiting to be sent before new ones are dropped.
const QUEUE: usize = 1024;

impl Delivery {
    /// Starts the sending task on the current tokio runtime; it ends when
    /// every clone of the `Delivery` is dropped. `client` should have a
    /// timeout per exchange (a receiver that hangs then counts as a failed
    /// attempt).
    pub fn start(client: Arc<dyn HttpClient>, retry: Retry) -> Self {
        let (queue, mut outgoing) = mpsc::channel::<Outgoing>(QUEUE);
        let stats = Arc::new(DeliveryStats::default());
        let counters = stats.clone();
        tokio::spawn(async move {
            while let Some(next) = outgoing.recv().await {
                deliver(&*client, retry, next, &counters).await;
            }
        });
        Self { queue, stats }
    }

    /// The counters.
    pub fn stats(&self) -> Arc<DeliveryStats> {
        self.stats.clone()
    }

    /// Queues `outgoing`; counts it dropped when the queue is full.
    pub(crate) fn send(&self, outgoing: Outgoing) {
        if let Err(refused) = self.queue.try_send(outgoing) {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            let (receiver, why) = match &refused {
                mpsc::error::TrySendError::Full(o) => (&o.receiver, "the delivery queue is full"),
                mpsc::error::TrySendError::Closed(o) => {
                    (&o.receiver, "the delivery task has stopped")
                }
            };
            tracing::warn!(%receiver, why, "approval notification dropped");
        }
    }
}

async fn deliver(client: &dyn HttpClient, retry: Retry, next: Outgoing, stats: &DeliveryStats) {
    let mut backoff = retry.first_backoff;
    for attempt in 1..=retry.attempts.max(1) {
        let problem = match tokio::time::timeout(retry.timeout, client.send(next.request())).await {
            Ok(Ok(response)) if response.status().is_success() => {
                stats.sent.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(Ok(response)) => format!("answered {}", response.status()),
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no answer within {:?}", retry.timeout),
        };
        tracing::warn!(receiver = %next.receiver, attempt, %problem, "approval notification not delivered");
        if attempt < retry.attempts {
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
        }
    }
    stats.failed.fetch_add(1, Ordering::Relaxed);
    tracing::error!(receiver = %next.receiver, attempts = retry.attempts, "approval notification given up");
}
