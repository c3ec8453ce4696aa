//! What one bearer token costs the identity layer, against one RSA 2048 key and
//! one RS256 token minted by the development issuer (`airlock_sim::DevIssuer`,
//! started on loopback; the validator finds its keys by OIDC discovery, once).
//! Three measurements, one criterion group (`token_validation`), each reported
//! in tokens per second: `cached` is `JwtValidator::validate` of a token already
//! in the verified-token cache (the steady state: one hash, one lookup, an
//! exact comparison); `uncached_rs256` is the same call on a validator built
//! with `cache_capacity(0)`, so every call parses the header, finds the key,
//! checks the signature and the claims and builds the `Principal`; and
//! `raw_jsonwebtoken_decode` is a bare `jsonwebtoken::decode` of the same token
//! with the same key, audience and issuer, the floor any validator stands on.
//! Neither validator call awaits anything (a cache hit, or a key already
//! known), so each future is polled once with a no-op waker and no runtime
//! sits in the measurement. Run it with
//! `cargo bench -p airlock-identity --bench validation` (about 20 s); the
//! targets are `cached` at 2 M/s or more on one core and `uncached_rs256`
//! within 1.2x of `raw_jsonwebtoken_decode`.

use std::hint::black_box;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use airlock_core::Principal;
use airlock_identity::{JwtValidator, KeySource, TokenValidator};
use airlock_sim::{DevIssuer, LoopbackClient, TokenSpec};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const AUDIENCE: &str = "api://airlock";

/// Polls a validation future once; it must complete without awaiting.
fn validate_now(validator: &JwtValidator, token: &str) -> Principal {
    let mut context = Context::from_waker(Waker::noop());
    match validator.validate(token).as_mut().poll(&mut context) {
        Poll::Ready(Ok(principal)) => principal,
        Poll::Ready(Err(error)) => panic!("the benchmark token was refused: {error}"),
        Poll::Pending => panic!("validation awaited: the key or cache entry is missing"),
    }
}

fn validation(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let (issuer, cached, uncached) = runtime.block_on(async {
        let issuer = DevIssuer::start(TENANT)
            .await
            .expect("the dev issuer starts");
        let validator = |capacity: usize| {
            JwtValidator::builder()
                .tenant(TENANT)
                .audience(AUDIENCE)
                .keys(KeySource::Discovery(issuer.issuer()))
                .http_client(Arc::new(LoopbackClient::new()))
                .cache_capacity(capacity)
                .build()
        };
        let cached = validator(10_000)
            .await
            .expect("the cached validator builds");
        let uncached = validator(0).await.expect("the uncached validator builds");
        (issuer, cached, uncached)
    });
    let token = issuer.mint(&TokenSpec::agent());

    // Fill the cache, and check that all three agree the token is good.
    let principal = validate_now(&cached, &token);
    assert_eq!(principal.id(), "00000000-0000-0000-0000-0000000000a1");
    assert_eq!(validate_now(&uncached, &token).id(), principal.id());
    let key = DecodingKey::from_rsa_pem(issuer.public_key_pem().as_bytes())
        .expect("the issuer's public key is PEM");
    let mut raw_validation = Validation::new(Algorithm::RS256);
    raw_validation.set_audience(&[AUDIENCE]);
    raw_validation.set_issuer(&[issuer.issuer()]);
    // As the validator does: nbf checked, exp/aud/iss required.
    raw_validation.validate_nbf = true;
    raw_validation.set_required_spec_claims(&["exp", "aud", "iss"]);
    let raw = jsonwebtoken::decode::<Map<String, Value>>(&token, &key, &raw_validation)
        .expect("jsonwebtoken accepts the token");
    assert_eq!(raw.claims["oid"], principal.id());

    let mut group = c.benchmark_group("token_validation");
    group
        .throughput(Throughput::Elements(1))
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group.bench_function("cached", |b| {
        b.iter(|| validate_now(&cached, black_box(&token)));
    });
    group.bench_function("uncached_rs256", |b| {
        b.iter(|| validate_now(&uncached, black_box(&token)));
    });
    group.bench_function("raw_jsonwebtoken_decode", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<Map<String, Value>>(black_box(&token), &key, &raw_validation)
                .expect("jsonwebtoken accepts the token")
        });
    });
    group.finish();

    drop((cached, uncached));
    runtime.block_on(issuer.shutdown());
}

criterion_group!(benches, validation);
criterion_main!(benches);
