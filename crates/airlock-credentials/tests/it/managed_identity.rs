//! The managed-identity source against the simulated IMDS and App Service
//! identity endpoints: system- and user-assigned identities, IMDS throttling
//! retried, the platform's secret header required.

use std::time::Duration;

use airlock_credentials::{IdentityEndpoint, ManagedIdentity, TokenSource, UserAssigned};
use airlock_sim::{DevIssuer, IssuerHandle, TENANT_ID};
use http::StatusCode;

use crate::support::http;

const ARM: &str = "https://management.azure.com/";
const SYSTEM: (&str, &str, &str) = (
    "11111111-aaaa-4aaa-8aaa-000000000001",
    "22222222-bbbb-4bbb-8bbb-000000000001",
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/gateway-vm",
);
const USER: (&str, &str, &str) = (
    "11111111-aaaa-4aaa-8aaa-000000000002",
    "22222222-bbbb-4bbb-8bbb-000000000002",
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/airlock",
);

async fn issuer() -> IssuerHandle {
    let issuer = DevIssuer::start(TENANT_ID).await.unwrap();
    issuer.register_managed_identity(SYSTEM.0, SYSTEM.1, SYSTEM.2);
    issuer.register_managed_identity(USER.0, USER.1, USER.2);
    issuer
}

fn imds(issuer: &IssuerHandle, user: Option<UserAssigned>) -> ManagedIdentity {
    ManagedIdentity::new(http(), IdentityEndpoint::Imds(issuer.imds_endpoint()), user)
}

/// The object id the token the source fetched was issued to.
async fn oid(issuer: &IssuerHandle, source: &ManagedIdentity) -> String {
    let fetched = source.fetch(ARM).await.unwrap();
    assert!(fetched.token.expires_at().is_some());
    let claims = issuer
        .verifier()
        .verify(fetched.token.secret(), ARM)
        .unwrap();
    claims["oid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn imds_gives_the_system_or_the_named_user_assigned_identity() {
    let issuer = issuer().await;
    assert_eq!(oid(&issuer, &imds(&issuer, None)).await, SYSTEM.1);
    for user in [
        UserAssigned::ClientId(USER.0.into()),
        UserAssigned::ObjectId(USER.1.into()),
        UserAssigned::ResourceId(USER.2.into()),
    ] {
        assert_eq!(
            oid(&issuer, &imds(&issuer, Some(user.clone()))).await,
            USER.1,
            "{user:?}"
        );
    }
    let unknown = imds(&issuer, Some(UserAssigned::ClientId("nobody".into())));
    let error = unknown.fetch(ARM).await.unwrap_err();
    assert!(
        !error.transient && error.message.contains("Identity not found"),
        "{error:?}"
    );
    assert!(unknown.identity().contains("client id nobody"));
    issuer.shutdown().await;
}

#[tokio::test]
async fn imds_throttling_is_retried_with_backoff() {
    let issuer = issuer().await;
    issuer.fail_identity_requests(2, StatusCode::TOO_MANY_REQUESTS);
    let started = tokio::time::Instant::now();
    assert_eq!(oid(&issuer, &imds(&issuer, None)).await, SYSTEM.1);
    assert_eq!(issuer.identity_requests(), 3);
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "backed off 0.5 s then 1 s"
    );

    issuer.fail_identity_requests(10, StatusCode::INTERNAL_SERVER_ERROR);
    let error = imds(&issuer, None).fetch(ARM).await.unwrap_err();
    assert!(
        error.transient && error.message.contains("500"),
        "{error:?}"
    );
    issuer.shutdown().await;
}

#[tokio::test]
async fn the_app_service_endpoint_needs_the_platforms_secret_header() {
    let issuer = issuer().await;
    let (endpoint, header) = issuer.app_service_identity();
    let env = |name: &str| match name {
        "IDENTITY_ENDPOINT" => Some(endpoint.clone()),
        "IDENTITY_HEADER" => Some(header.clone()),
        _ => None,
    };
    let source = ManagedIdentity::new(http(), IdentityEndpoint::from_env(env, None), None);
    assert!(source.identity().contains("App Service"));
    assert!(!format!("{source:?}").contains(&header));
    assert_eq!(oid(&issuer, &source).await, SYSTEM.1);
    let user = ManagedIdentity::new(
        http(),
        IdentityEndpoint::from_env(env, None),
        Some(UserAssigned::ResourceId(USER.2.into())),
    );
    assert_eq!(oid(&issuer, &user).await, USER.1);

    let wrong = ManagedIdentity::new(
        http(),
        IdentityEndpoint::AppService {
            endpoint: endpoint.clone(),
            header: "not-the-header".into(),
        },
        None,
    );
    let error = wrong.fetch(ARM).await.unwrap_err();
    assert!(
        !error.transient && error.message.contains("401"),
        "{error:?}"
    );
    // Without IDENTITY_HEADER the environment is no App Service: IMDS.
    let half = |name: &str| (name == "IDENTITY_ENDPOINT").then(|| endpoint.clone());
    assert!(matches!(
        IdentityEndpoint::from_env(half, None),
        IdentityEndpoint::Imds(_)
    ));
    issuer.shutdown().await;
}
