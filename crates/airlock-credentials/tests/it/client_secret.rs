//! The client-secret source against the simulated Entra token endpoint:
//! tokens Azure accepts, Entra's refusals passed on without the secret, an
//! outage treated as transient, and the cache refreshing a short-lived token.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use airlock_core::TokenProvider;
use airlock_credentials::{ClientSecret, TokenCache, TokenSource};
use airlock_sim::{DevIssuer, IssuerHandle, TENANT_ID};

use crate::support::http;

const ARM: &str = "https://management.azure.com";
const SECRET: &str = "the-gateway's-s3cret+&=";

async fn issuer() -> IssuerHandle {
    let issuer = DevIssuer::start(TENANT_ID).await.unwrap();
    issuer.register_client("gateway-app", SECRET);
    issuer
}

fn source(issuer: &IssuerHandle, secret: &str) -> ClientSecret {
    let authority = format!("http://{}", issuer.addr());
    ClientSecret::new(http(), &authority, TENANT_ID, "gateway-app", secret)
}

#[tokio::test]
async fn tokens_come_for_the_audience_and_azure_accepts_them() {
    let issuer = issuer().await;
    let source = source(&issuer, SECRET);
    assert_eq!(source.token_url(), issuer.token_endpoint());
    let fetched = source.fetch(ARM).await.unwrap();
    let claims = issuer
        .verifier()
        .verify(fetched.token.secret(), ARM)
        .unwrap();
    assert_eq!(claims["azp"], "gateway-app");
    let expires = fetched.token.expires_at().unwrap();
    let left = expires.duration_since(SystemTime::now()).unwrap();
    assert!(
        left > Duration::from_secs(3500) && left <= Duration::from_secs(3600),
        "{left:?}"
    );
    let vault = source.fetch("https://vault.azure.net/").await.unwrap();
    assert!(
        issuer
            .verifier()
            .verify(vault.token.secret(), "https://vault.azure.net")
            .is_ok()
    );
    issuer.shutdown().await;
}

#[tokio::test]
async fn entras_refusals_are_passed_on_without_the_secret() {
    let issuer = issuer().await;
    let wrong = source(&issuer, "not-the-secret")
        .fetch(ARM)
        .await
        .unwrap_err();
    assert!(
        !wrong.transient,
        "a wrong secret stays wrong: {}",
        wrong.message
    );
    assert!(
        wrong.message.contains("401")
            && wrong.message.contains("invalid_client")
            && wrong.message.contains("AADSTS7000215"),
        "{}",
        wrong.message
    );
    assert!(!wrong.message.contains("not-the-secret"));

    issuer.set_available(false);
    let down = source(&issuer, SECRET).fetch(ARM).await.unwrap_err();
    assert!(down.transient, "{}", down.message);
    assert!(!down.message.contains(SECRET));
    issuer.shutdown().await;
}

#[tokio::test]
async fn the_cache_refreshes_a_short_lived_token_in_the_background() {
    let issuer = issuer().await;
    issuer.set_app_token_lifetime(Duration::from_secs(4));
    let cache = TokenCache::new(Arc::new(source(&issuer, SECRET)));
    let first = cache.token(ARM).await.unwrap();
    assert_eq!(issuer.tokens_issued(), 1);
    // Past half its life the same token is still handed out, and a new one
    // is fetched behind it.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(cache.token(ARM).await.unwrap().secret(), first.secret());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while issuer.tokens_issued() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no refresh");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = cache.token(ARM).await.unwrap();
    assert_ne!(second.secret(), first.secret());
    assert!(issuer.verifier().verify(second.secret(), ARM).is_ok());
    assert!(!format!("{cache:?}").contains(SECRET));
    issuer.shutdown().await;
}
