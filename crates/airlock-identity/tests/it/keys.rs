//! Signing keys over HTTP: rotation, the identity provider going down, a
//! validator that cannot start, and a flood of unknown `kid`s.

use std::sync::Arc;
use std::time::Duration;

use airlock_identity::{AuthError, BuildError, JwtValidator, KeySource, TokenValidator as _};
use airlock_sim::{LoopbackClient, TokenSpec};

use crate::support::{
    AUDIENCE, TENANT, accepted, builder, claims_of, eventually, issuer, random_kid, refusal, rs256,
    start,
};

/// Start-up asks for the discovery document and the key set once each.
#[tokio::test]
async fn building_fetches_the_key_set_once() {
    let (issuer, _validator) = start().await;
    assert_eq!(issuer.jwks_requests(), 1);
}

/// A new key signs from now on; its first token makes the validator refetch
/// the JWKS (unknown `kid`), with no rebuild and no restart.
#[tokio::test]
async fn rotated_key_is_picked_up_on_its_first_token() {
    let (issuer, validator) = start().await;
    let old_kid = issuer.current_kid();
    accepted(&validator, &issuer.mint(&TokenSpec::agent())).await;
    let before_rotation = issuer.mint(&TokenSpec::approver());
    let fetches = issuer.jwks_requests();

    let new_kid = issuer.rotate_key();
    assert_ne!(new_kid, old_kid);
    let rotated = issuer.mint(&TokenSpec::agent());
    assert_eq!(
        jsonwebtoken::decode_header(&rotated).unwrap().kid,
        Some(new_kid)
    );

    let agent = accepted(&validator, &rotated).await;
    assert_eq!(agent.kind(), airlock_core::PrincipalKind::ManagedIdentity);
    assert_eq!(issuer.jwks_requests(), fetches + 1, "one refetch");
    // The old key is still published, so its tokens still verify.
    accepted(&validator, &before_rotation).await;
    assert_eq!(issuer.jwks_requests(), fetches + 1);
}

/// Once the issuer stops publishing a key and the validator has refreshed,
/// that key's tokens are refused.
#[tokio::test]
async fn retired_key_is_refused_after_a_refresh() {
    let (issuer, validator) = start().await;
    let signed_by_old_key = issuer.mint(&TokenSpec::agent());
    issuer.rotate_key();
    accepted(&validator, &issuer.mint(&TokenSpec::agent())).await;

    issuer.retire_old_keys();
    validator.refresh_keys().await.unwrap();

    assert_eq!(
        refusal(&validator, &signed_by_old_key).await,
        AuthError::UnknownKey
    );
}

/// While the identity provider is down, keys already fetched keep working;
/// a new key cannot be learnt until it is back, and then is, without a restart.
#[tokio::test]
async fn identity_provider_down_after_start() {
    let issuer = issuer().await;
    let validator = builder(&issuer)
        // Every call verifies: no cached principal hides what the keys do.
        .cache_capacity(0)
        .unknown_kid_interval(Duration::from_millis(200))
        .build()
        .await
        .unwrap();
    let known = issuer.mint(&TokenSpec::agent());
    accepted(&validator, &known).await;

    issuer.set_available(false);

    let fresh = issuer.mint(&TokenSpec::approver());
    let alice = accepted(&validator, &fresh).await;
    assert_eq!(alice.display_name(), Some("Alice Approver"));
    accepted(&validator, &known).await;
    let refresh = validator.refresh_keys().await.unwrap_err();
    assert!(
        refresh
            .to_string()
            .ends_with(": the JWKS endpoint answered 503 Service Unavailable"),
        "{refresh}"
    );
    accepted(&validator, &known).await;

    issuer.rotate_key();
    let new_key_token = issuer.mint(&TokenSpec::agent());
    let fetches = issuer.jwks_requests();
    assert_eq!(
        refusal(&validator, &new_key_token).await,
        AuthError::UnknownKey
    );
    assert_eq!(issuer.jwks_requests(), fetches + 1, "it did try");

    issuer.set_available(true);

    let agent = eventually(
        "the new key is accepted once the provider is back",
        Duration::from_secs(10),
        || async {
            match validator.validate(&new_key_token).await {
                Ok(principal) => Some(principal),
                Err(AuthError::UnknownKey) => None,
                Err(other) => panic!("refused for another reason: {other}"),
            }
        },
    )
    .await;
    assert_eq!(agent.display_name(), Some("build-agent"));
    accepted(&validator, &known).await;
}

/// A validator never starts without keys, and says where it looked.
#[tokio::test]
async fn startup_with_the_identity_provider_down_fails() {
    let issuer = issuer().await;
    issuer.set_available(false);

    let error = builder(&issuer).build().await.unwrap_err();

    let BuildError::Keys { url, reason } = &error else {
        panic!("not a key error: {error}");
    };
    assert_eq!(url, &issuer.issuer());
    // Says what answered what: the discovery document's URL and the status.
    assert!(
        reason.contains("503 Service Unavailable") && reason.contains(&issuer.discovery_url()),
        "{reason}"
    );
    assert!(
        error.to_string().starts_with(&format!(
            "cannot load signing keys from {}: ",
            issuer.issuer()
        )),
        "{error}"
    );

    // The same with a JWKS URL: the message names that URL.
    let error = JwtValidator::builder()
        .tenant(TENANT)
        .audience(AUDIENCE)
        .keys(KeySource::JwksUrl(issuer.jwks_uri()))
        .http_client(Arc::new(LoopbackClient::new()))
        .build()
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "cannot load signing keys from {}: the JWKS endpoint answered 503 Service Unavailable",
            issuer.jwks_uri()
        )
    );

    // Once the provider is back, the same configuration builds.
    issuer.set_available(true);
    let validator = builder(&issuer).build().await.unwrap();
    accepted(&validator, &issuer.mint(&TokenSpec::agent())).await;
}

/// An issuer that is gone (connection refused) is a build error too, naming
/// the URL.
#[tokio::test]
async fn startup_with_the_identity_provider_gone_fails() {
    let issuer = issuer().await;
    let url = issuer.issuer();
    let unbuilt = builder(&issuer);
    issuer.shutdown().await;

    let error = unbuilt.build().await.unwrap_err();

    assert!(matches!(&error, BuildError::Keys { url: named, .. } if *named == url));
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("cannot load signing keys from {url}: ")),
        "{message}"
    );
    assert!(message.contains("Connect"), "{message}");
}

/// Tokens with made-up `kid`s cannot make the validator hammer the identity
/// provider: one refetch per interval, however many arrive at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_kid_flood_costs_at_most_one_fetch() {
    let (issuer, validator) = start().await;
    let claims: serde_json::Value = claims_of(&issuer.mint(&TokenSpec::agent())).into();
    let tokens: Vec<String> = (0..200)
        .map(|i| issuer.sign(&rs256(Some(&format!("{}-{i}", random_kid()))), &claims))
        .collect();
    let before = issuer.jwks_requests();

    let attempts: Vec<_> = tokens
        .into_iter()
        .map(|token| {
            let validator = validator.clone();
            tokio::spawn(async move { validator.validate(&token).await })
        })
        .collect();
    for attempt in attempts {
        assert_eq!(attempt.await.unwrap().unwrap_err(), AuthError::UnknownKey);
    }

    let fetched = issuer.jwks_requests() - before;
    assert!(fetched <= 1, "{fetched} JWKS fetches for 200 unknown kids");
    // The known key was not lost along the way.
    accepted(&validator, &issuer.mint(&TokenSpec::approver())).await;
    assert_eq!(issuer.jwks_requests() - before, fetched);
}

/// `IdentityMetrics` counts tokens answered from the cache, verified and
/// refused, and signing-key refreshes that worked and failed.
#[tokio::test]
async fn validations_and_key_refreshes_are_counted() {
    let issuer = issuer().await;
    let metrics = airlock_identity::IdentityMetrics::new();
    let validator = builder(&issuer)
        .metrics(metrics.clone())
        .build()
        .await
        .unwrap();
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let token = issuer.mint(&TokenSpec::agent());
    accepted(&validator, &token).await;
    accepted(&validator, &token).await;
    accepted(&validator, &token).await;
    refusal(&validator, "not.a.token").await;
    validator.refresh_keys().await.unwrap();
    issuer.set_available(false);
    validator.refresh_keys().await.unwrap_err();

    for (series, value) in [
        (r#"airlock_token_validations_total{result="verified"}"#, "1"),
        (r#"airlock_token_validations_total{result="cached"}"#, "2"),
        (r#"airlock_token_validations_total{result="rejected"}"#, "1"),
        (r#"airlock_signing_key_refreshes_total{result="ok"}"#, "1"),
        (
            r#"airlock_signing_key_refreshes_total{result="failed"}"#,
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
