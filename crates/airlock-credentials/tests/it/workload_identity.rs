//! Workload identity federation against the simulated Entra: the federated
//! token file is read on every fetch (the platform rotates it), checked by
//! Entra (issuer, audience, subject, expiry), and never echoed.

use std::time::Duration;

use airlock_credentials::{TokenSource, WorkloadIdentity};
use airlock_sim::{DevIssuer, TENANT_ID};

use crate::support::http;

const ARM: &str = "https://management.azure.com";
const SUBJECT: &str = "system:serviceaccount:airlock:gateway";

#[tokio::test]
async fn the_token_file_is_read_again_on_every_fetch() {
    let issuer = DevIssuer::start(TENANT_ID).await.unwrap();
    issuer.register_federated_client("aks-gateway", SUBJECT);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("azure-identity-token");
    let source = WorkloadIdentity::new(
        http(),
        &format!("http://{}", issuer.addr()),
        TENANT_ID,
        "aks-gateway",
        &file,
    );

    let missing = source.fetch(ARM).await.unwrap_err();
    assert!(
        missing.transient && missing.message.contains("azure-identity-token"),
        "{missing:?}"
    );

    std::fs::write(
        &file,
        issuer.federated_token(SUBJECT, Duration::from_secs(1)),
    )
    .unwrap();
    let first = source.fetch(ARM).await.unwrap();
    let claims = issuer.verifier().verify(first.token.secret(), ARM).unwrap();
    assert_eq!(claims["azp"], "aks-gateway");

    // The projected token expires; Entra refuses it…
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let stale = std::fs::read_to_string(&file).unwrap();
    let expired = source.fetch(ARM).await.unwrap_err();
    assert!(expired.message.contains("AADSTS700024"), "{expired:?}");
    assert!(
        !expired.message.contains(&stale),
        "the assertion is never echoed"
    );
    // …and the platform's rotated file is picked up without a restart.
    std::fs::write(
        &file,
        issuer.federated_token(SUBJECT, Duration::from_secs(600)),
    )
    .unwrap();
    assert!(source.fetch(ARM).await.is_ok());

    std::fs::write(
        &file,
        issuer.federated_token("system:serviceaccount:other:pod", Duration::from_secs(600)),
    )
    .unwrap();
    let other = source.fetch(ARM).await.unwrap_err();
    assert!(other.message.contains("AADSTS700213"), "{other:?}");
    issuer.shutdown().await;
}
