//! The client-certificate source against the simulated Entra, which checks
//! the assertion as Entra does: the registered certificate, its signature,
//! audience, issuer, subject and lifetime.

use airlock_credentials::{ClientCertificate, TokenSource};
use airlock_sim::{DevIssuer, IssuerHandle, TENANT_ID};
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::support::http;

const ARM: &str = "https://management.azure.com";

/// A self-signed certificate and its RSA key: (cert PEM, key PEM, public key PEM, x5t#S256).
fn certificate() -> (String, String, String, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["airlock-gateway".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let thumbprint =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(cert.der()));
    (
        cert.pem(),
        key.serialize_pem(),
        key.public_key_pem(),
        thumbprint,
    )
}

fn source(
    issuer: &IssuerHandle,
    client: &str,
    cert: &str,
    key: &str,
    pss: bool,
) -> ClientCertificate {
    let authority = format!("http://{}", issuer.addr());
    ClientCertificate::new(http(), &authority, TENANT_ID, client, cert, key, pss).unwrap()
}

#[tokio::test]
async fn a_registered_certificate_signs_in_with_ps256_or_rs256() {
    let issuer = DevIssuer::start(TENANT_ID).await.unwrap();
    let (cert, key, public, thumbprint) = certificate();
    issuer.register_certificate_client("cert-app", &public, &thumbprint, false);
    for pss in [true, false] {
        let source = source(&issuer, "cert-app", &cert, &key, pss);
        assert!(source.identity().contains(&thumbprint));
        let fetched = source.fetch(ARM).await.unwrap();
        let claims = issuer
            .verifier()
            .verify(fetched.token.secret(), ARM)
            .unwrap();
        assert_eq!(claims["azp"], "cert-app");
    }
    // One PEM file holding both, as AZURE_CLIENT_CERTIFICATE_PATH does.
    let both = format!("{cert}{key}");
    assert!(
        source(&issuer, "cert-app", &both, &both, true)
            .fetch(ARM)
            .await
            .is_ok()
    );
    assert!(!format!("{:?}", source(&issuer, "cert-app", &cert, &key, true)).contains("PRIVATE"));
    issuer.shutdown().await;
}

#[tokio::test]
async fn entra_refuses_an_expired_or_unknown_certificate() {
    let issuer = DevIssuer::start(TENANT_ID).await.unwrap();
    let (cert, key, public, thumbprint) = certificate();
    issuer.register_certificate_client("expired-app", &public, &thumbprint, true);
    let expired = source(&issuer, "expired-app", &cert, &key, true)
        .fetch(ARM)
        .await
        .unwrap_err();
    assert!(
        !expired.transient
            && expired.message.contains("AADSTS700027")
            && expired.message.contains("expired"),
        "{expired:?}"
    );

    let (other_cert, other_key, _, _) = certificate();
    issuer.register_certificate_client("cert-app", &public, &thumbprint, false);
    let unknown = source(&issuer, "cert-app", &other_cert, &other_key, true)
        .fetch(ARM)
        .await
        .unwrap_err();
    assert!(unknown.message.contains("not registered"), "{unknown:?}");

    let no_key = ClientCertificate::new(
        http(),
        "https://login.microsoftonline.com",
        TENANT_ID,
        "x",
        &cert,
        &cert,
        true,
    )
    .unwrap_err();
    assert!(no_key.message.contains("no RSA private key"), "{no_key:?}");
    issuer.shutdown().await;
}
