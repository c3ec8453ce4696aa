//! The gateway's own Azure credential (issue 14): it signs in to the
//! simulated Entra with a client secret, sends Azure tokens the simulated
//! ARM and Key Vault check as Azure does, refreshes them ahead of expiry,
//! and never lets the secret reach a log or an answer.

use std::time::Duration;

use airlock_sim::{IssuerHandle, TENANT_ID};
use airlock_tests::{Harness, Options, assert_airlock_error, rg_path};
use http::StatusCode;

use crate::logs::{captured_logs, logged};

const CLIENT_ID: &str = "airlock-gateway-app";
const SECRET: &str = "gateway-s3cret-value~42";

/// `[upstream.credential]` signing in as the gateway's app registration,
/// its secret in a file; Entra's tokens live `LIFETIME` seconds.
fn client_secret(issuer: &IssuerHandle, dir: &std::path::Path) -> String {
    issuer.register_client(CLIENT_ID, SECRET);
    issuer.set_app_token_lifetime(Duration::from_secs(4));
    let file = dir.join("client-secret");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    format!(
        "kind = \"client_secret\"\ntenant_id = \"{TENANT_ID}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret_file = \"{}\"\nauthority_host = \"http://{}\"",
        file.display(),
        issuer.addr()
    )
}

async fn harness() -> Harness {
    Harness::start_with(Options {
        credential: Some(client_secret),
        ..Options::default()
    })
    .await
}

/// Starts a gateway whose credential `credential` configures, sends one ARM
/// read through it, and returns the claims of the token Azure received.
async fn acting_as(credential: Credential) -> serde_json::Value {
    let h = Harness::start_with(Options {
        credential: Some(credential),
        ..Options::default()
    })
    .await;
    let groups = format!("{}?api-version=2021-04-01", rg_path());
    assert_eq!(h.agent.get(&groups).await.unwrap().status, StatusCode::OK);
    let token = upstream_tokens(&h).pop().unwrap();
    let claims = h
        .issuer
        .verifier()
        .verify(&token, "https://management.azure.com")
        .unwrap();
    h.shutdown().await;
    claims
}

/// Configures `[upstream.credential]` (and the issuer) for a test.
type Credential = fn(&IssuerHandle, &std::path::Path) -> String;

/// The bearer token of every request the simulated Azure received.
fn upstream_tokens(h: &Harness) -> Vec<String> {
    h.sim
        .requests()
        .iter()
        .filter_map(|r| {
            r.headers
                .get("authorization")?
                .to_str()
                .ok()?
                .strip_prefix("Bearer ")
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test]
async fn requests_carry_the_gateways_own_tokens_refreshed_ahead_of_expiry() {
    captured_logs();
    let h = harness().await;
    let groups = format!("{}?api-version=2021-04-01", rg_path());
    assert_eq!(h.agent.get(&groups).await.unwrap().status, StatusCode::OK);
    let secret = h.agent.get(&h.secret_url()).await.unwrap();
    assert_eq!(secret.status, StatusCode::OK);
    let tokens = upstream_tokens(&h);
    let verifier = h.issuer.verifier();
    let arm = verifier
        .verify(&tokens[0], "https://management.azure.com")
        .unwrap();
    assert_eq!(arm["azp"], CLIENT_ID);
    assert!(
        verifier
            .verify(&tokens[1], "https://vault.azure.net")
            .is_ok(),
        "Key Vault gets a token of its own audience"
    );

    // Past half the token's life: still served at once, and refreshed behind.
    let issued = h.issuer.tokens_issued();
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_eq!(h.agent.get(&groups).await.unwrap().status, StatusCode::OK);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while h.issuer.tokens_issued() == issued {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the token was not refreshed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Well past the first token's expiry, requests still flow, on a new token.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(h.agent.get(&groups).await.unwrap().status, StatusCode::OK);
    let last = upstream_tokens(&h).pop().unwrap();
    assert_ne!(last, tokens[0]);
    assert!(
        verifier
            .verify(&last, "https://management.azure.com")
            .is_ok()
    );

    // The first ARM and Key Vault tokens were needed; later ones came ahead.
    let metrics = h.metrics().await;
    assert_eq!(
        metrics[r#"airlock_credential_fetches_total{when="needed",result="ok"}"#], 2,
        "{metrics:?}"
    );
    assert!(metrics[r#"airlock_credential_fetches_total{when="ahead",result="ok"}"#] >= 1);

    let logged = logged();
    assert!(logged.contains("signed in to Azure"), "the capture works");
    assert!(!logged.contains(SECRET), "the client secret was logged");
    for token in upstream_tokens(&h) {
        assert!(!logged.contains(&token), "an Azure token was logged");
    }
    h.shutdown().await;
}

/// Azure refuses the gateway's cached token (here Entra rolled its signing
/// key over and Azure no longer accepts the old one; in Azure, also a
/// continuous-access-evaluation revocation): the gateway forgets the token,
/// signs in again and sends the request once more, and the agent sees only
/// Azure's answer, never the 401.
#[tokio::test]
async fn a_token_azure_refuses_is_replaced_and_the_request_sent_once_more() {
    fn for_an_hour(issuer: &IssuerHandle, dir: &std::path::Path) -> String {
        let credential = client_secret(issuer, dir);
        issuer.set_app_token_lifetime(Duration::from_secs(3600));
        credential
    }
    let h = Harness::start_with(Options {
        credential: Some(for_an_hour),
        ..Options::default()
    })
    .await;
    let groups = format!("{}?api-version=2021-04-01", rg_path());
    assert_eq!(h.agent.get(&groups).await.unwrap().status, StatusCode::OK);
    h.issuer.rotate_key();
    h.issuer.retire_old_keys();
    let agent = h.client(Some(&h.issuer.mint(&airlock_sim::TokenSpec::agent())));
    let answer = agent.get(&groups).await.unwrap();
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let tokens = upstream_tokens(&h);
    assert_eq!(tokens.len(), 3, "the first request, then the second twice");
    assert_eq!(tokens[0], tokens[1], "the cached token, sent until refused");
    let verifier = h.issuer.verifier();
    assert!(
        verifier
            .verify(&tokens[1], "https://management.azure.com")
            .is_err()
    );
    assert!(
        verifier
            .verify(&tokens[2], "https://management.azure.com")
            .is_ok()
    );
    let metrics = h.metrics().await;
    assert_eq!(
        metrics[r#"airlock_credential_fetches_total{when="needed",result="ok"}"#], 2,
        "{metrics:?}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn no_valid_token_is_an_arm_shaped_502_naming_the_identity_not_the_secret() {
    let h = harness().await;
    let groups = format!("{}?api-version=2021-04-01", rg_path());
    assert_eq!(h.agent.get(&groups).await.unwrap().status, StatusCode::OK);
    // Entra goes down: the cached token keeps requests flowing…
    h.issuer.set_available(false);
    assert_eq!(h.agent.get(&groups).await.unwrap().status, StatusCode::OK);
    // …until it expires.
    tokio::time::sleep(Duration::from_millis(4200)).await;
    let refused = h.agent.get(&groups).await.unwrap();
    let json = assert_airlock_error(
        &refused,
        StatusCode::BAD_GATEWAY,
        "AirlockUpstreamCredentialFailed",
    );
    let message = json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(CLIENT_ID) && message.contains("503"),
        "{message}"
    );
    assert!(!String::from_utf8_lossy(&refused.body).contains(SECRET));
    // Back up: served again, no restart.
    h.issuer.set_available(true);
    assert_eq!(h.agent.get(&groups).await.unwrap().status, StatusCode::OK);
    h.shutdown().await;
}

#[tokio::test]
async fn a_refused_secret_stops_the_start_with_entras_reason() {
    let sim = airlock_sim::SimAzure::builder().start().await.unwrap();
    let issuer = airlock_sim::DevIssuer::start(TENANT_ID).await.unwrap();
    issuer.register_client(CLIENT_ID, "the-real-secret");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), airlock_tests::ALLOW_ALL).unwrap();
    let text = airlock_demo::LocalConfig::new(&sim, &issuer, dir.path(), "unused")
        .credential_toml(format!(
            "kind = \"client_secret\"\ntenant_id = \"{TENANT_ID}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{SECRET}\"\nauthority_host = \"http://{}\"",
            issuer.addr()
        ))
        .render();
    let config = airlock_gateway::Config::parse(&text, "airlock.toml", |_| None).unwrap();
    let error = airlock_gateway::Gateway::start(config)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("upstream.credential")
            && error.contains("AADSTS7000215")
            && error.contains(CLIENT_ID),
        "{error}"
    );
    assert!(!error.contains(SECRET), "{error}");
    sim.shutdown().await;
    issuer.shutdown().await;
}

const MANAGED_IDENTITY: (&str, &str, &str) = (
    "11111111-aaaa-4aaa-8aaa-00000000000a",
    "22222222-bbbb-4bbb-8bbb-00000000000a",
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/airlock",
);

/// `kind = "managed_identity"` against the simulated IMDS, user-assigned by resource id.
fn managed_identity(issuer: &IssuerHandle, _dir: &std::path::Path) -> String {
    issuer.register_managed_identity("someone-else", "someone-else", "/x");
    let (client, object, resource) = MANAGED_IDENTITY;
    issuer.register_managed_identity(client, object, resource);
    format!(
        "kind = \"managed_identity\"\nresource_id = \"{resource}\"\nimds_endpoint = \"{}\"",
        issuer.imds_endpoint()
    )
}

#[tokio::test]
async fn on_azure_the_gateway_acts_as_its_managed_identity() {
    assert_eq!(acting_as(managed_identity).await["oid"], MANAGED_IDENTITY.1);
}

/// `kind = "workload_identity"`, the federated token in a file as AKS projects it.
fn workload_identity(issuer: &IssuerHandle, dir: &std::path::Path) -> String {
    let subject = "system:serviceaccount:airlock:gateway";
    issuer.register_federated_client(CLIENT_ID, subject);
    let file = dir.join("azure-identity-token");
    std::fs::write(
        &file,
        issuer.federated_token(subject, Duration::from_secs(3600)),
    )
    .unwrap();
    format!(
        "kind = \"workload_identity\"\ntenant_id = \"{TENANT_ID}\"\nclient_id = \"{CLIENT_ID}\"\ntoken_file = \"{}\"\nauthority_host = \"http://{}\"",
        file.display(),
        issuer.addr()
    )
}

#[tokio::test]
async fn on_aks_the_gateway_trades_its_federated_token() {
    assert_eq!(acting_as(workload_identity).await["azp"], CLIENT_ID);
}

/// `kind = "default"` on an Azure VM: nothing in the environment, IMDS answers.
fn default_on_a_vm(issuer: &IssuerHandle, dir: &std::path::Path) -> String {
    let (client, object, resource) = MANAGED_IDENTITY;
    issuer.register_managed_identity(client, object, resource);
    format!(
        "kind = \"default\"\nimds_endpoint = \"{}\"\naz_path = \"{}\"",
        issuer.imds_endpoint(),
        dir.join("no-az-here").display()
    )
}

#[tokio::test]
async fn the_default_chain_finds_the_managed_identity_or_says_what_it_tried() {
    assert_eq!(acting_as(default_on_a_vm).await["oid"], MANAGED_IDENTITY.1);

    // Off Azure, no variables, no az: the start fails, naming each attempt.
    let sim = airlock_sim::SimAzure::builder().start().await.unwrap();
    let issuer = airlock_sim::DevIssuer::start(TENANT_ID).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), airlock_tests::ALLOW_ALL).unwrap();
    let text = airlock_demo::LocalConfig::new(&sim, &issuer, dir.path(), "unused")
        .credential_toml(format!(
            "kind = \"default\"\nimds_endpoint = \"http://127.0.0.1:1/metadata/identity/oauth2/token\"\naz_path = \"{}\"",
            dir.path().join("no-az-here").display()
        ))
        .render();
    let config = airlock_gateway::Config::parse(&text, "airlock.toml", |_| None).unwrap();
    let error = airlock_gateway::Gateway::start(config)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("upstream.credential")
            && error.contains("managed identity")
            && error.contains("Azure CLI")
            && error.contains("az login"),
        "{error}"
    );
    sim.shutdown().await;
    issuer.shutdown().await;
}

/// `kind = "azure_cli"`: an `az` stand-in that prints a token the simulated
/// Entra minted for the developer.
fn azure_cli(issuer: &IssuerHandle, dir: &std::path::Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let token = issuer.mint(
        &airlock_sim::TokenSpec::agent()
            .audience("https://management.azure.com")
            .lifetime(Duration::from_secs(3600)),
    );
    let az = dir.join("az");
    std::fs::write(
        &az,
        format!("#!/bin/sh\necho \"{{\\\"accessToken\\\": \\\"{token}\\\", \\\"expires_on\\\": $(( $(date +%s) + 3600 ))}}\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!("kind = \"azure_cli\"\naz_path = \"{}\"", az.display())
}

#[tokio::test]
async fn for_development_the_gateway_acts_as_whoever_ran_az_login() {
    assert_eq!(
        acting_as(azure_cli).await["oid"],
        airlock_sim::TokenSpec::agent().object_id
    );
}

/// `kind = "client_certificate"`: a certificate registered on the app, its
/// key in the same PEM file.
fn client_certificate(issuer: &IssuerHandle, dir: &std::path::Path) -> String {
    use sha2::Digest as _;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["airlock-gateway".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let thumbprint = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        sha2::Sha256::digest(cert.der()),
    );
    issuer.register_certificate_client(CLIENT_ID, &key.public_key_pem(), &thumbprint, false);
    let file = dir.join("gateway.pem");
    std::fs::write(&file, format!("{}{}", cert.pem(), key.serialize_pem())).unwrap();
    format!(
        "kind = \"client_certificate\"\ntenant_id = \"{TENANT_ID}\"\nclient_id = \"{CLIENT_ID}\"\ncertificate_file = \"{}\"\nauthority_host = \"http://{}\"",
        file.display(),
        issuer.addr()
    )
}

#[tokio::test]
async fn the_gateway_signs_in_with_a_certificate() {
    assert_eq!(acting_as(client_certificate).await["azp"], CLIENT_ID);
}
