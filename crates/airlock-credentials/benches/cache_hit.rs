//! What a cached token costs the request path: the bar is 100 ns.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime};

use airlock_core::{AccessToken, BoxFuture};
use airlock_credentials::{FetchedToken, SourceError, TokenCache, TokenSource};
use criterion::{Criterion, criterion_group, criterion_main};

struct OneHour;

impl TokenSource for OneHour {
    fn identity(&self) -> &str {
        "bench"
    }
    fn fetch<'a>(&'a self, _audience: &'a str) -> BoxFuture<'a, Result<FetchedToken, SourceError>> {
        Box::pin(async {
            Ok(FetchedToken::new(AccessToken::new(
                "x".repeat(1500),
                Some(SystemTime::now() + Duration::from_secs(3600)),
            )))
        })
    }
}

fn cache_hit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let cache = TokenCache::new(Arc::new(OneHour));
    let audience = "https://management.azure.com";
    runtime
        .block_on(cache.get(audience))
        .unwrap_or_else(|e| panic!("{e}"));
    let _entered = runtime.enter();
    let mut cx = Context::from_waker(Waker::noop());
    c.bench_function("token_cache_hit", |b| {
        b.iter(|| {
            // A hit completes on its first poll: no executor in the way.
            let future = pin!(cache.get(black_box(audience)));
            match future.poll(&mut cx) {
                Poll::Ready(token) => black_box(token.is_ok()),
                Poll::Pending => panic!("a cache hit waited"),
            }
        });
    });
}

criterion_group!(benches, cache_hit);
criterion_main!(benches);
