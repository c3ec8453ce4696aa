//! Run the gateway in your own process with your own `TokenProvider`.
//!
//! The gateway alone holds Azure credentials; how it gets them is a trait.
//! This provider reads the token from a file on every call (the way a
//! sidecar-refreshed token file works), and the example serves the gateway
//! in front of the simulated Azure, makes one call through it, and stops.
//!
//! ```text
//! cargo run -p airlock-examples --example custom_token_provider
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use airlock_core::{AccessToken, BoxFuture, TokenError, TokenProvider};
use airlock_demo::AgentClient;
use airlock_gateway::{Config, Gateway};

/// Reads the bearer token from a file each time it is asked.
#[derive(Debug)]
struct TokenFile(PathBuf);

impl TokenProvider for TokenFile {
    fn token<'a>(&'a self, _audience: &'a str) -> BoxFuture<'a, Result<AccessToken, TokenError>> {
        Box::pin(async move {
            let secret = tokio::fs::read_to_string(&self.0)
                .await
                .map_err(|e| TokenError(format!("cannot read {}: {e}", self.0.display())))?;
            Ok(AccessToken::new(secret.trim(), None))
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let sim = airlock_sim::SimAzure::builder()
        .expected_token("from-the-file")
        .start()
        .await?;
    // The gateway only admits verified callers: a development issuer stands in for Entra ID.
    let issuer = airlock_sim::DevIssuer::start(airlock_sim::TENANT_ID).await?;
    let dir = tempfile::tempdir()?;
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "from-the-file\n")?;
    let policy = dir.path().join("policy.toml");
    // Reads only: the demo's policy elevates approved writes to an
    // identity this gateway does not have, and would be refused at start.
    std::fs::write(
        &policy,
        format!(
            "[[rule]]\nname = \"agents-read\"\neffect = \"allow\"\nactions = [\"*/read\"]\n[rule.principals]\ngroups = [\"{}\"]\n",
            airlock_sim::AGENTS_GROUP
        ),
    )?;

    let config = Config::parse(
        &format!(
            r#"
            [listen]
            address = "127.0.0.1:0"
            [identity]
            tenants = ["{tenant}"]
            audiences = ["api://airlock"]
            discovery = "{discovery}"
            [policy]
            file = "{policy}"
            [masking]
            key_file = "{masking_key}"
            [upstream]
            arm_url = "{arm}"
            allow_insecure_http = true
            [upstream.credential]
            kind = "static"
            token = "unused: the provider below supplies tokens"
            "#,
            tenant = issuer.tenant_id(),
            discovery = issuer.issuer(),
            policy = policy.display(),
            masking_key = dir.path().join("masking.key").display(),
            arm = sim.arm_url()
        ),
        "example",
        |_| None,
    )?;
    let gateway = Gateway::start_with(config, Arc::new(TokenFile(token_file))).await?;

    let client = AgentClient::new(gateway.url(), None)?
        .with_token(issuer.mint(&airlock_sim::TokenSpec::agent()));
    let groups = client
        .get(&format!(
            "/subscriptions/{}/resourcegroups?api-version=2021-04-01",
            airlock_sim::SUBSCRIPTION_ID
        ))
        .await?;
    println!(
        "{} {}",
        groups.status,
        String::from_utf8_lossy(&groups.body)
    );
    assert_eq!(
        groups.status, 200,
        "the simulated Azure accepted the token read from the file"
    );

    gateway.shutdown().await;
    sim.shutdown().await;
    issuer.shutdown().await;
    Ok(())
}
