//! The cache against a scripted source and a clock moved by hand: refresh
//! ahead of expiry, single flight, failures while a token is valid and
//! after it expired.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use airlock_core::{AccessToken, BoxFuture, TokenProvider};
use airlock_credentials::{Clock, FetchedToken, SourceError, TokenCache, TokenSource};

const ARM: &str = "https://management.azure.com";
const HOUR: Duration = Duration::from_secs(3600);

/// Time that moves only when told to.
#[derive(Default)]
struct ManualClock(Mutex<Duration>);

impl ManualClock {
    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000) + *self.0.lock().unwrap()
    }
}

/// Mints `token-N` (N counting fetches) for an hour, or fails as told.
struct Scripted {
    clock: Arc<ManualClock>,
    fetches: AtomicUsize,
    failure: Mutex<Option<SourceError>>,
    delay: Duration,
}

impl Scripted {
    fn new(clock: &Arc<ManualClock>, delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            clock: clock.clone(),
            fetches: AtomicUsize::new(0),
            failure: Mutex::new(None),
            delay,
        })
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    fn fail_with(&self, failure: Option<SourceError>) {
        *self.failure.lock().unwrap() = failure;
    }
}

impl TokenSource for Scripted {
    fn identity(&self) -> &str {
        "client app-1 in tenant t-1 (test)"
    }
    fn fetch<'a>(&'a self, _audience: &'a str) -> BoxFuture<'a, Result<FetchedToken, SourceError>> {
        Box::pin(async move {
            let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(self.delay).await;
            if let Some(failure) = self.failure.lock().unwrap().clone() {
                return Err(failure);
            }
            let expires = self.clock.now() + HOUR;
            Ok(FetchedToken::new(AccessToken::new(
                format!("token-{n}"),
                Some(expires),
            )))
        })
    }
}

fn setup(delay: Duration) -> (Arc<ManualClock>, Arc<Scripted>, TokenCache) {
    let clock = Arc::new(ManualClock::default());
    let source = Scripted::new(&clock, delay);
    let cache = TokenCache::with_clock(source.clone(), clock.clone());
    (clock, source, cache)
}

async fn secret(cache: &TokenCache) -> String {
    cache.token(ARM).await.unwrap().secret().to_owned()
}

/// Waits (bounded) until the source has been asked `n` times.
async fn until_fetches(source: &Scripted, n: usize) {
    for _ in 0..500 {
        if source.fetches() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the source was asked {} times, not {n}", source.fetches());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_callers_with_nothing_cached_cause_one_fetch() {
    let (_, source, cache) = setup(Duration::from_millis(50));
    let callers: Vec<_> = (0..1000)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { secret(&cache).await })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap(), "token-1");
    }
    assert_eq!(source.fetches(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_refreshed_ahead_of_expiry_once_while_callers_keep_the_current_one() {
    let (clock, source, cache) = setup(Duration::from_millis(20));
    assert_eq!(secret(&cache).await, "token-1");
    clock.advance(Duration::from_secs(29 * 60));
    assert_eq!(secret(&cache).await, "token-1");
    assert_eq!(source.fetches(), 1, "not yet due: half the lifetime");

    // Due: a thousand callers at once still get the current token at once,
    // and the source is asked once.
    clock.advance(Duration::from_secs(2 * 60));
    let callers: Vec<_> = (0..1000)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { secret(&cache).await })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap(), "token-1");
    }
    until_fetches(&source, 2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(source.fetches(), 2);
    assert_eq!(secret(&cache).await, "token-2");
}

#[tokio::test]
async fn a_source_that_is_down_while_the_token_is_valid_costs_nothing() {
    let (clock, source, cache) = setup(Duration::ZERO);
    assert_eq!(secret(&cache).await, "token-1");
    source.fail_with(Some(SourceError::transient(
        "the token endpoint answered 503",
    )));
    clock.advance(Duration::from_secs(40 * 60));
    for _ in 0..20 {
        assert_eq!(secret(&cache).await, "token-1");
    }
    until_fetches(&source, 2).await;
    // Backing off: the failed refresh is not retried on every request.
    for _ in 0..20 {
        assert_eq!(secret(&cache).await, "token-1");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(source.fetches(), 2);
    clock.advance(Duration::from_secs(2));
    assert_eq!(secret(&cache).await, "token-1");
    until_fetches(&source, 3).await;

    // Back up: the next refresh takes.
    source.fail_with(None);
    clock.advance(Duration::from_secs(5));
    secret(&cache).await;
    until_fetches(&source, 4).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(secret(&cache).await, "token-4");
}

#[tokio::test]
async fn without_a_valid_token_the_error_names_the_identity_and_the_reason() {
    let (clock, source, cache) = setup(Duration::ZERO);
    assert_eq!(secret(&cache).await, "token-1");
    source.fail_with(Some(SourceError::transient(
        "the token endpoint answered 503",
    )));
    clock.advance(HOUR);
    let error = cache.token(ARM).await.unwrap_err().to_string();
    assert!(
        error.contains("client app-1 in tenant t-1") && error.contains("answered 503"),
        "{error}"
    );
    assert_eq!(
        source.fetches(),
        1 + 3,
        "a transient failure is tried three times"
    );

    source.fail_with(Some(SourceError::permanent("invalid_client AADSTS7000215")));
    let error = cache.token(ARM).await.unwrap_err().to_string();
    assert!(error.contains("AADSTS7000215"), "{error}");
    assert_eq!(source.fetches(), 5, "a refusal is not retried");
}

/// A token Azure refused (401) is forgotten, so the next caller gets a new
/// one; a refusal of a token already replaced costs nothing; and an Azure
/// that refuses every token costs one fetch per 30 s, not one per request.
#[tokio::test]
async fn a_refused_token_is_forgotten_at_most_once_per_thirty_seconds() {
    let (clock, source, cache) = setup(Duration::ZERO);
    let first = cache.token(ARM).await.unwrap();
    assert!(cache.rejected(ARM, &first), "forgotten: the next is new");
    assert_eq!(secret(&cache).await, "token-2");
    // Every caller that held the first token learns that the next differs.
    assert!(cache.rejected(ARM, &first));
    assert_eq!(source.fetches(), 2);
    // Azure refuses the new one at once too: kept, and nothing to retry.
    let second = cache.token(ARM).await.unwrap();
    assert!(!cache.rejected(ARM, &second));
    assert_eq!(secret(&cache).await, "token-2");
    clock.advance(Duration::from_secs(31));
    assert!(cache.rejected(ARM, &second));
    assert_eq!(secret(&cache).await, "token-3");
    // Another audience's token is its own.
    let vault = cache.token("https://vault.azure.net").await.unwrap();
    assert!(cache.rejected("https://vault.azure.net", &vault));
    assert_eq!(secret(&cache).await, "token-3");
}

#[tokio::test]
async fn each_audience_has_its_own_token() {
    let (_, source, cache) = setup(Duration::ZERO);
    let arm = cache.token(ARM).await.unwrap();
    let vault = cache.token("https://vault.azure.net").await.unwrap();
    assert_ne!(arm.secret(), vault.secret());
    assert_eq!(source.fetches(), 2);
    assert_eq!(cache.token(ARM).await.unwrap().secret(), arm.secret());
    assert!(!format!("{cache:?}").contains("token-"));
}

/// `CredentialMetrics` counts fetches a request waited for and refreshes
/// ahead of expiry, apart, with their results.
#[tokio::test]
async fn fetches_and_refreshes_are_counted_with_their_results() {
    let (clock, source, cache) = setup(Duration::ZERO);
    let metrics = airlock_credentials::CredentialMetrics::new();
    let cache = cache.metrics(metrics.clone());
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    assert_eq!(secret(&cache).await, "token-1");
    // Due for a refresh that fails, then expired with the source refusing.
    source.fail_with(Some(SourceError::permanent("invalid_client")));
    clock.advance(Duration::from_secs(40 * 60));
    assert_eq!(secret(&cache).await, "token-1");
    until_fetches(&source, 2).await;
    clock.advance(HOUR);
    cache.token(ARM).await.unwrap_err();
    source.fail_with(None);
    assert_eq!(secret(&cache).await, "token-4");

    for (series, value) in [
        (
            r#"airlock_credential_fetches_total{when="needed",result="ok"}"#,
            "2",
        ),
        (
            r#"airlock_credential_fetches_total{when="needed",result="failed"}"#,
            "1",
        ),
        (
            r#"airlock_credential_fetches_total{when="ahead",result="failed"}"#,
            "1",
        ),
    ] {
        assert_eq!(
            airlock_metrics::sample(&registry, series).as_deref(),
            Some(value),
            "{series}"
        );
    }
}
