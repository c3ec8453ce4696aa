//! The Azure CLI source (a stand-in `az` program) and the default chain:
//! the first source the environment supports, or one error naming each.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use airlock_credentials::{AzureCli, DefaultChain, TokenSource};
use airlock_sim::{DevIssuer, TENANT_ID};

use crate::support::http;

const ARM: &str = "https://management.azure.com";

/// An `az` stand-in: prints what `az account get-access-token` prints,
/// the token naming its arguments, or fails, or hangs.
fn fake_az(dir: &Path, behaviour: &str) -> PathBuf {
    let body = match behaviour {
        "ok" => {
            r#"echo "{\"accessToken\": \"cli-token $*\", \"expires_on\": $(( $(date +%s) + 3600 )), \"tokenType\": \"Bearer\"}""#
        }
        "logged-out" => "echo \"ERROR: Please run 'az login' to setup account.\" >&2; exit 1",
        _ => "sleep 5",
    };
    let path = dir.join(format!("az-{behaviour}"));
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[tokio::test]
async fn the_azure_cli_source_runs_az_with_a_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let ok = AzureCli::new(fake_az(dir.path(), "ok")).tenant("t1");
    let fetched = ok.fetch("https://vault.azure.net/").await.unwrap();
    assert_eq!(
        fetched.token.secret(),
        "cli-token account get-access-token --output json --resource https://vault.azure.net --tenant t1"
    );
    assert!(fetched.token.expires_at().is_some());

    let logged_out = AzureCli::new(fake_az(dir.path(), "logged-out"))
        .fetch(ARM)
        .await
        .unwrap_err();
    assert!(
        !logged_out.transient && logged_out.message.contains("az login"),
        "{logged_out:?}"
    );

    let hung = AzureCli::new(fake_az(dir.path(), "hang"))
        .timeout(Duration::from_millis(300))
        .fetch(ARM)
        .await
        .unwrap_err();
    assert!(
        hung.transient && hung.message.contains("did not finish"),
        "{hung:?}"
    );

    let missing = AzureCli::new(dir.path().join("no-such-az"))
        .fetch(ARM)
        .await
        .unwrap_err();
    assert!(
        missing.message.contains("install the Azure CLI"),
        "{missing:?}"
    );
}

/// IMDS where nothing listens: off Azure.
fn no_imds() -> Option<String> {
    Some("http://127.0.0.1:1/metadata/identity/oauth2/token".into())
}

#[tokio::test]
async fn the_default_chain_takes_the_first_source_that_works() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = DevIssuer::start(TENANT_ID).await.unwrap();
    issuer.register_client("from-env", "env-secret");
    let authority = format!("http://{}", issuer.addr());
    let (http, platform) = (http(), http());

    // A developer's machine: nothing in the environment, no IMDS, az logged in.
    let chain = DefaultChain {
        imds_endpoint: no_imds(),
        az: fake_az(dir.path(), "ok"),
    };
    let candidates = chain.candidates(&http, &platform, |_| None);
    let chosen = DefaultChain::first_working(candidates, ARM).await.unwrap();
    assert!(
        chosen.identity().contains("Azure CLI"),
        "{}",
        chosen.identity()
    );

    // The environment names a client secret: it comes first.
    let env = |name: &str| match name {
        "AZURE_TENANT_ID" => Some(TENANT_ID.to_owned()),
        "AZURE_CLIENT_ID" => Some("from-env".to_owned()),
        "AZURE_CLIENT_SECRET" => Some("env-secret".to_owned()),
        "AZURE_AUTHORITY_HOST" => Some(authority.clone()),
        _ => None,
    };
    let chosen = DefaultChain::first_working(chain.candidates(&http, &platform, env), ARM)
        .await
        .unwrap();
    assert!(
        chosen.identity().contains("client from-env"),
        "{}",
        chosen.identity()
    );

    // Nothing works: one error saying what each said.
    let none = DefaultChain {
        imds_endpoint: no_imds(),
        az: fake_az(dir.path(), "logged-out"),
    };
    let error = DefaultChain::first_working(none.candidates(&http, &platform, |_| None), ARM)
        .await
        .err()
        .unwrap();
    assert!(
        error.contains("managed identity")
            && error.contains("could not be reached")
            && error.contains("az login"),
        "{error}"
    );
    issuer.shutdown().await;
}
