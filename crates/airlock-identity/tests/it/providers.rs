//! Several identity providers at once, each a live issuer with its own keys:
//! the token's `iss` picks the provider, and only that provider's keys may
//! verify it. Mix-ups (A's key, B's issuer; B's key under A's `kid`) and
//! issuers nobody configured are refused.

use std::sync::Arc;

use airlock_identity::{
    AuthError, ClaimMapping, IssuerRouter, JwtValidator, KeySource, TokenValidator,
};
use airlock_sim::{DevIssuer, IssuerHandle, LoopbackClient, TokenSpec};
use serde_json::{Value, json};

use crate::support::{AUDIENCE, builder, issuer, now_secs, rs256};

/// A Kubernetes cluster's service-account issuer, as a second live issuer.
async fn cluster() -> IssuerHandle {
    DevIssuer::start("aks-cluster").await.unwrap()
}

async fn cluster_validator(cluster: &IssuerHandle) -> JwtValidator {
    JwtValidator::builder()
        .audience(AUDIENCE)
        .keys(KeySource::Discovery(cluster.issuer()))
        .http_client(Arc::new(LoopbackClient::new()))
        .claims(ClaimMapping::new("aks").groups_claim("groups"))
        .build()
        .await
        .unwrap()
}

/// A projected service-account token's claims.
fn service_account(iss: &str, sub: &str) -> Value {
    let now = now_secs();
    json!({
        "iss": iss, "aud": AUDIENCE, "sub": sub, "iat": now, "nbf": now, "exp": now + 600,
        "kubernetes.io": {"namespace": "agents", "serviceaccount": {"name": "builder"}},
        "groups": ["agents-ns"]
    })
}

async fn refused(router: &IssuerRouter, token: &str) -> AuthError {
    match router.validate(token).await {
        Ok(principal) => panic!("accepted as {principal}"),
        Err(error) => error,
    }
}

#[tokio::test]
async fn each_token_is_verified_by_the_provider_its_issuer_names_and_no_other() {
    let entra = issuer().await;
    let aks = cluster().await;
    let router = IssuerRouter::new(vec![
        builder(&entra).build().await.unwrap(),
        cluster_validator(&aks).await,
    ])
    .unwrap();
    assert_eq!(router.audience(), Some(AUDIENCE));

    let person_token = entra.mint(&TokenSpec::approver());
    assert_eq!(router.known(&person_token), None, "not verified yet");
    let person = router.validate(&person_token).await.unwrap();
    assert_eq!(person.id(), TokenSpec::approver().object_id);
    // Verified once: known at once, to the provider that verified it.
    assert_eq!(router.known(&person_token), Some(person.clone()));
    let builder_sa = "system:serviceaccount:agents:builder";
    let workload = router
        .validate(&aks.sign(
            &rs256(Some(&aks.current_kid())),
            &service_account(&aks.issuer(), builder_sa),
        ))
        .await
        .unwrap();
    assert_eq!(workload.id(), format!("aks:{builder_sa}"));
    assert!(workload.in_group("agents-ns"));

    // A cluster subject spelled like an Entra object id stays in its namespace.
    let alice = TokenSpec::approver().object_id;
    let lookalike = router
        .validate(&aks.sign(
            &rs256(Some(&aks.current_kid())),
            &service_account(&aks.issuer(), &alice),
        ))
        .await
        .unwrap();
    assert_eq!(lookalike.id(), format!("aks:{alice}"));

    // The cluster's key, Entra's issuer: Entra's keys do not verify it.
    let forged = aks.sign(
        &rs256(Some(&aks.current_kid())),
        &service_account(&entra.issuer(), &alice),
    );
    assert!(matches!(
        refused(&router, &forged).await,
        AuthError::UnknownKey
    ));
    // Entra's key, the cluster's issuer.
    let mut claims = service_account(&aks.issuer(), builder_sa);
    claims["tid"] = json!(airlock_sim::TENANT_ID);
    let forged = entra.sign(&rs256(Some(&entra.current_kid())), &claims);
    assert!(matches!(
        refused(&router, &forged).await,
        AuthError::UnknownKey
    ));
    // The cluster's key under Entra's key id, claiming the cluster.
    let forged = aks.sign(
        &rs256(Some(&entra.current_kid())),
        &service_account(&aks.issuer(), builder_sa),
    );
    assert!(
        matches!(
            refused(&router, &forged).await,
            AuthError::UnknownKey | AuthError::BadSignature
        ),
        "a kid of another provider's"
    );
    // An issuer no provider has; its name is shown, cut short and printable.
    let stranger = format!("https://evil.example/\u{7}{}", "x".repeat(300));
    let error = refused(
        &router,
        &aks.sign(
            &rs256(Some(&aks.current_kid())),
            &service_account(&stranger, builder_sa),
        ),
    )
    .await;
    let message = error.to_string();
    assert!(
        matches!(error, AuthError::IssuerNotTrusted { .. }),
        "{error:?}"
    );
    assert!(
        message.contains("https://evil.example/xxx") && !message.contains('\u{7}'),
        "{message}"
    );
    assert!(message.len() < 400, "{message}");
    assert!(message.contains("[[identity.provider]]"), "{message}");
    // No issuer at all, or not a JWT.
    let mut claims = service_account("x", builder_sa);
    claims.as_object_mut().unwrap().remove("iss");
    let no_issuer = aks.sign(&rs256(Some(&aks.current_kid())), &claims);
    assert!(matches!(
        refused(&router, &no_issuer).await,
        AuthError::MissingClaim("iss")
    ));
    assert!(matches!(
        refused(&router, "not-a-jwt").await,
        AuthError::Malformed(_)
    ));
}

#[tokio::test]
async fn one_issuer_belongs_to_one_provider() {
    let entra = issuer().await;
    let twice = IssuerRouter::new(vec![
        builder(&entra).build().await.unwrap(),
        builder(&entra).build().await.unwrap(),
    ])
    .unwrap_err();
    assert!(
        twice
            .to_string()
            .contains("belongs to two identity providers"),
        "{twice}"
    );
    assert!(IssuerRouter::new(Vec::new()).is_err());
}
