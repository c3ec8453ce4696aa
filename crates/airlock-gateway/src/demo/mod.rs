//! `airlock demo`: the gateway in front of a simulated Azure, with a
//! scripted agent walking through it. No Azure account needed.
//!
//! Everything runs in this process on free loopback ports: the simulated
//! Azure (`airlock-sim`), a development token issuer, and the gateway behind
//! a TLS listener with a freshly generated development CA. The script checks
//! every answer and the run exits non-zero if anything did not behave.

mod client;
mod script;

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;

use airlock_core::{StaticTokenProvider, TokenProvider};
use airlock_sim::{DevIssuer, IssuerHandle, SimAzure, SimHandle, TokenSpec};
use anyhow::Context as _;

pub use client::{AgentClient, AgentResponse};

use crate::tls::DevCertificates;
use crate::{Config, Gateway, RunningGateway};

/// The token the gateway presents to the simulated Azure.
const UPSTREAM_TOKEN: &str = "demo-upstream-token";
/// The demo's policy: reads allowed, storage account writes need approval,
/// VM deletes blocked.
pub const DEMO_POLICY: &str = include_str!("policy.toml");

/// The gateway's app ID URI: the audience agents ask their tokens for.
pub const AUDIENCE: &str = "api://airlock";

/// Everything the demo started; dropped together.
#[derive(Debug)]
pub struct DemoEnvironment {
    /// The simulated Azure.
    pub sim: SimHandle,
    /// The development token issuer.
    pub issuer: IssuerHandle,
    /// The gateway.
    pub gateway: RunningGateway,
    /// The directory holding `ca.pem`, `cert.pem`, `key.pem` and `airlock.toml`.
    pub dir: tempfile::TempDir,
    /// The development CA clients trust.
    pub ca_pem: String,
}

impl DemoEnvironment {
    /// Starts the simulated Azure, the token issuer and the gateway over TLS.
    pub async fn start() -> anyhow::Result<Self> {
        let sim = SimAzure::builder()
            .expected_token(UPSTREAM_TOKEN)
            .start()
            .await
            .context("starting the simulated Azure")?;
        let issuer = DevIssuer::start(airlock_sim::TENANT_ID)
            .await
            .context("starting the development token issuer")?;
        let dir =
            tempfile::tempdir().context("creating a directory for the demo's certificates")?;
        let certs = DevCertificates::generate(&[
            "localhost",
            &format!("{}.localhost", airlock_sim::VAULT),
            "not-allowed.localhost",
        ])?;
        certs
            .write_to(dir.path())
            .context("writing the demo's certificates")?;
        std::fs::write(dir.path().join("policy.toml"), DEMO_POLICY)
            .context("writing the demo's policy")?;
        let config_text = demo_config(&sim, &issuer, dir.path());
        std::fs::write(dir.path().join("airlock.toml"), &config_text)?;
        let config = Config::parse(&config_text, "demo airlock.toml", |_| None)?;
        let tokens: Arc<dyn TokenProvider> = Arc::new(StaticTokenProvider::new(UPSTREAM_TOKEN));
        let gateway = Gateway::start_with(config, tokens).await?;
        Ok(Self {
            sim,
            issuer,
            gateway,
            dir,
            ca_pem: certs.ca_pem,
        })
    }

    /// A client for the gateway, trusting the demo CA, carrying the agent's token.
    pub fn agent(&self) -> anyhow::Result<AgentClient> {
        Ok(AgentClient::new(self.gateway.url(), Some(&self.ca_pem))?
            .with_token(self.issuer.mint(&TokenSpec::agent())))
    }

    /// Stops everything, draining the gateway first.
    pub async fn shutdown(self) {
        self.gateway.shutdown().await;
        self.sim.shutdown().await;
        self.issuer.shutdown().await;
    }
}

fn demo_config(sim: &SimHandle, issuer: &IssuerHandle, dir: &std::path::Path) -> String {
    format!(
        r#"# Written by `airlock demo`.
[listen]
address = "127.0.0.1:0"

[listen.tls]
cert_file = "{cert}"
key_file = "{key}"

[identity]
tenants = ["{tenant}"]
audiences = ["{AUDIENCE}"]
discovery = "{discovery}"   # the development token issuer

[policy]
file = "{policy}"

[masking]
key_file = "{masking_key}"   # generated on first start

[upstream]
arm_url = "{arm}"
allow_insecure_http = true   # the simulated Azure speaks plain HTTP on loopback

[upstream.key_vault]
endpoint = "{kv}"
vaults = ["{vault}"]

[upstream.credential]
kind = "static"
token = "{UPSTREAM_TOKEN}"
"#,
        cert = dir.join("cert.pem").display(),
        tenant = issuer.tenant_id(),
        policy = dir.join("policy.toml").display(),
        masking_key = dir.join("masking.key").display(),
        discovery = issuer.issuer(),
        key = dir.join("key.pem").display(),
        arm = sim.arm_url(),
        kv = sim.key_vault_endpoint(),
        vault = airlock_sim::VAULT,
    )
}

/// Runs the demo. With `serve`, leaves everything running until `stop` resolves.
pub async fn run(serve: bool, stop: impl Future<Output = ()>) -> anyhow::Result<ExitCode> {
    let env = DemoEnvironment::start().await?;
    if serve {
        print_serve_help(&env);
        stop.await;
        env.shutdown().await;
        return Ok(ExitCode::SUCCESS);
    }
    let report = script::run(&env).await;
    env.shutdown().await;
    let report = report?;
    print!("{report}");
    Ok(if report.all_passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_serve_help(env: &DemoEnvironment) {
    let url = env.gateway.url();
    let ca = env.dir.path().join("ca.pem");
    let token = env.issuer.mint(&TokenSpec::agent());
    let sub = airlock_sim::SUBSCRIPTION_ID;
    let port = env.gateway.local_addr().port();
    println!("Airlock demo is running. Ctrl-C stops it.\n");
    println!("  gateway          {url}   (TLS; trust {})", ca.display());
    println!(
        "  key vault        https://{}.localhost:{port}",
        airlock_sim::VAULT
    );
    println!("  simulated Azure  {}", env.sim.arm_url());
    println!("  token issuer     {}", env.issuer.issuer());
    println!(
        "  config           {}\n",
        env.dir.path().join("airlock.toml").display()
    );
    println!("Try, as the demo agent:\n");
    println!("  TOKEN='{token}'\n");
    println!(
        "  curl --cacert {} -H \"Authorization: Bearer $TOKEN\" \\\n    '{url}/subscriptions/{sub}/resourcegroups?api-version=2021-04-01'\n",
        ca.display()
    );
    println!(
        "  curl --cacert {} -H \"Authorization: Bearer $TOKEN\" \\\n    'https://{}.localhost:{port}/secrets/db-password?api-version=7.4'",
        ca.display(),
        airlock_sim::VAULT
    );
}
