//! Shared set-up for the end-to-end tests: a simulated Azure and a gateway in
//! front of it, on loopback ports, spoken to over real HTTP.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::sync::Arc;

use airlock_core::{StaticTokenProvider, TokenProvider};
use airlock_gateway::demo::AgentClient;
use airlock_gateway::tls::DevCertificates;
use airlock_gateway::{Config, Gateway, RunningGateway};
use airlock_sim::{SimAzure, SimHandle};

/// The token the gateway presents upstream in tests.
pub const UPSTREAM_TOKEN: &str = "test-upstream-token";
/// The token the test agent presents to the gateway.
pub const AGENT_TOKEN: &str = "agent-token-that-must-never-reach-azure";

/// A simulated Azure, a gateway in front of it, and the agent's client.
#[derive(Debug)]
pub struct Harness {
    /// The simulated Azure.
    pub sim: SimHandle,
    /// The gateway.
    pub gateway: RunningGateway,
    /// A client carrying [`AGENT_TOKEN`].
    pub agent: AgentClient,
    /// Where TLS files live, when TLS is on.
    pub dir: tempfile::TempDir,
}

/// Knobs for [`Harness::start`].
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// Serve TLS with a development CA.
    pub tls: bool,
    /// Extra TOML appended to the generated config (e.g. a `[limits]` table).
    pub extra_toml: String,
    /// Extra `[upstream]` keys.
    pub upstream_toml: String,
    /// Point the gateway at this ARM URL instead of the simulator.
    pub arm_url: Option<String>,
}

impl Harness {
    /// Starts with plain HTTP and defaults.
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    /// Starts with the given options.
    pub async fn start_with(options: Options) -> Self {
        let sim = SimAzure::builder()
            .expected_token(UPSTREAM_TOKEN)
            .start()
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut ca = None;
        let mut tls_toml = String::new();
        if options.tls {
            let certs = DevCertificates::generate(&[
                "localhost",
                &format!("{}.localhost", airlock_sim::VAULT),
            ])
            .unwrap();
            certs.write_to(dir.path()).unwrap();
            tls_toml = format!(
                "[listen.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
                dir.path().join("cert.pem").display(),
                dir.path().join("key.pem").display()
            );
            ca = Some(certs.ca_pem);
        }
        let text = format!(
            "[listen]\naddress = \"127.0.0.1:0\"\n{tls_toml}\n[upstream]\narm_url = \"{arm}\"\nallow_insecure_http = true\n{upstream}\n[upstream.key_vault]\nendpoint = \"{kv}\"\nvaults = [\"{vault}\"]\n\n[upstream.credential]\nkind = \"static\"\ntoken = \"{UPSTREAM_TOKEN}\"\n\n{extra}",
            arm = options.arm_url.clone().unwrap_or_else(|| sim.arm_url()),
            upstream = options.upstream_toml,
            kv = sim.key_vault_endpoint(),
            vault = airlock_sim::VAULT,
            extra = options.extra_toml,
        );
        let config = Config::parse(&text, "test", |_| None).unwrap();
        let tokens: Arc<dyn TokenProvider> = Arc::new(StaticTokenProvider::new(UPSTREAM_TOKEN));
        let gateway = Gateway::start_with(config, tokens).await.unwrap();
        let agent = AgentClient::new(gateway.url(), ca.as_deref())
            .unwrap()
            .with_token(AGENT_TOKEN);
        Self {
            sim,
            gateway,
            agent,
            dir,
        }
    }

    /// `https://{vault}.localhost:{port}` (or `http://`) for the seeded vault.
    pub fn vault_url(&self) -> String {
        let scheme = if self.gateway.url().starts_with("https") {
            "https"
        } else {
            "http"
        };
        format!(
            "{scheme}://{}.localhost:{}",
            airlock_sim::VAULT,
            self.gateway.local_addr().port()
        )
    }

    /// Stops the gateway and the simulator.
    pub async fn shutdown(self) {
        self.gateway.shutdown().await;
        self.sim.shutdown().await;
    }
}

/// The resource group path of the seeded data.
pub fn rg_path() -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{}",
        airlock_sim::SUBSCRIPTION_ID,
        airlock_sim::RESOURCE_GROUP
    )
}
