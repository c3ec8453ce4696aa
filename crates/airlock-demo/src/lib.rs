//! `airlock demo`: the gateway in front of a simulated Azure, with a
//! scripted agent walking through it. No Azure account needed.
//!
//! Everything runs in this process on free loopback ports: the simulated
//! Azure (`airlock-sim`), a development token issuer, and the gateway behind
//! a TLS listener with a freshly generated development CA. The script checks
//! every answer and the run exits non-zero if anything did not behave.

mod client;
mod dev_certs;
mod local_config;
mod lro;
mod script;

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use airlock_sim::{DevIssuer, IssuerHandle, SimAzure, SimHandle, TokenSpec};
use anyhow::Context as _;

pub use client::{AgentClient, AgentResponse};
pub use dev_certs::DevCertificates;
pub use local_config::LocalConfig;
pub use lro::LongRunning;

use airlock_gateway::{Config, Gateway, RunningGateway};

/// The gateway's app registration in the simulated Entra: it signs in with
/// a client secret and gets tokens the simulated Azure checks.
pub const GATEWAY_CLIENT_ID: &str = "airlock-demo-gateway";
/// The app registration the demo gateway acts as for an approved request
/// that its rule elevates (`elevate_to = "contributor"`).
pub const CONTRIBUTOR_CLIENT_ID: &str = "airlock-demo-contributor";

/// The release bot: an Entra Agent ID agent identity that acts for people
/// (its tokens are Alice's, with the bot as actor).
pub const RELEASE_BOT_APP: &str = "7d1c0000-0000-0000-0000-0000000000c2";
/// The agent identity blueprint the release bot was made from.
pub const RELEASE_BOT_BLUEPRINT: &str = "b1000000-0000-0000-0000-0000000000b1";

/// The approver app registration people sign in to the approval page with.
pub const SIGN_IN_CLIENT_ID: &str = "airlock-demo-approvers";
/// How long the simulated Entra's tokens for the gateway live in the demo:
/// short, so the run shows the gateway refreshing its credential.
pub const GATEWAY_TOKEN_LIFETIME: Duration = Duration::from_secs(8);
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
    /// The CA forward-proxy mode mints Azure hosts' certificates from
    /// (`proxy-ca.pem`).
    pub proxy_ca_pem: String,
}

impl DemoEnvironment {
    /// Starts the simulated Azure, the token issuer and the gateway over TLS.
    pub async fn start() -> anyhow::Result<Self> {
        let issuer = DevIssuer::start(airlock_sim::TENANT_ID)
            .await
            .context("starting the development token issuer")?;
        // Azure accepts only real tokens from the issuer: the gateway's own.
        let sim = SimAzure::builder()
            .trust_issuer(issuer.verifier())
            .start()
            .await
            .context("starting the simulated Azure")?;
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
        for (client_id, file) in [
            (GATEWAY_CLIENT_ID, "client-secret"),
            (CONTRIBUTOR_CLIENT_ID, "contributor-secret"),
            (SIGN_IN_CLIENT_ID, "sign-in-secret"),
        ] {
            let secret = uuid::Uuid::new_v4().to_string();
            if client_id == GATEWAY_CLIENT_ID {
                // People's and their agents' tokens are issued to it: it may
                // trade them for their own tokens for Azure (on-behalf-of).
                issuer.register_on_behalf_of_client(client_id, &secret, AUDIENCE);
            } else {
                issuer.register_client(client_id, &secret);
            }
            std::fs::write(dir.path().join(file), &secret)
                .context("writing the gateway's client secrets")?;
        }
        issuer.set_app_token_lifetime(GATEWAY_TOKEN_LIFETIME);
        // Alice's own Azure role: Reader on the demo group, no more.
        sim.assign_role(
            &TokenSpec::approver().object_id,
            airlock_sim::Role::Reader,
            &format!(
                "/subscriptions/{}/resourceGroups/{}",
                airlock_sim::SUBSCRIPTION_ID,
                airlock_sim::RESOURCE_GROUP
            ),
        );
        let proxy_ca_pem = write_proxy_ca(dir.path())?;
        let config_text = demo_config(&sim, &issuer, dir.path());
        std::fs::write(dir.path().join("airlock.toml"), &config_text)?;
        let config = Config::parse(&config_text, "demo airlock.toml", |_| None)?;
        let gateway = Gateway::start(config).await?;
        // Development sign-in: the issuer's account picker lists Alice, the
        // demo approver; the redirect URI is the admin listener's (its port
        // is known now).
        let sign_in_secret = std::fs::read_to_string(dir.path().join("sign-in-secret"))?;
        issuer.register_sign_in_client(
            SIGN_IN_CLIENT_ID,
            &sign_in_secret,
            &[&format!("{}/ui/signin/callback", gateway.admin_url())],
        );
        issuer.register_user(TokenSpec::approver());
        Ok(Self {
            sim,
            issuer,
            gateway,
            dir,
            ca_pem: certs.ca_pem,
            proxy_ca_pem,
        })
    }

    /// A client that reaches Azure's own host `base` through the gateway
    /// as a forward proxy (`HTTPS_PROXY`), as the demo agent, identified
    /// at the `CONNECT`.
    pub fn agent_through_proxy(&self, base: &str) -> anyhow::Result<AgentClient> {
        AgentClient::through_proxy(
            base,
            self.gateway.url(),
            &[&self.ca_pem, &self.proxy_ca_pem],
            &self.issuer.mint(&TokenSpec::agent()),
        )
    }

    /// A client for the gateway, trusting the demo CA, carrying the agent's token.
    pub fn agent(&self) -> anyhow::Result<AgentClient> {
        Ok(AgentClient::new(self.gateway.url(), Some(&self.ca_pem))?
            .with_token(self.issuer.mint(&TokenSpec::agent())))
    }

    /// A client for the gateway as the release bot acting for Alice.
    pub fn release_bot_for_alice(&self) -> anyhow::Result<AgentClient> {
        let token = self.issuer.mint(
            &TokenSpec::agent_for_user(TokenSpec::approver(), RELEASE_BOT_APP)
                .blueprint(RELEASE_BOT_BLUEPRINT),
        );
        Ok(AgentClient::new(self.gateway.url(), Some(&self.ca_pem))?.with_token(token))
    }

    /// A client for the approval API, trusting the demo CA, carrying `token`.
    pub fn admin(&self, token: Option<&str>) -> anyhow::Result<AgentClient> {
        let client = AgentClient::new(self.gateway.admin_url(), Some(&self.ca_pem))?;
        Ok(match token {
            Some(token) => client.with_token(token),
            None => client,
        })
    }

    /// A client for the approval API as the demo approver, Alice.
    pub fn approver(&self) -> anyhow::Result<AgentClient> {
        self.admin(Some(&self.issuer.mint(&TokenSpec::approver())))
    }

    /// Stops everything, draining the gateway first.
    pub async fn shutdown(self) {
        self.gateway.shutdown().await;
        self.sim.shutdown().await;
        self.issuer.shutdown().await;
    }
}

/// `proxy-ca.pem` and `proxy-ca-key.pem` (owner-only), as `airlock ca init`
/// writes them; the certificate's PEM.
fn write_proxy_ca(dir: &std::path::Path) -> anyhow::Result<String> {
    let (cert, key) = airlock_gateway::generate_ca("Airlock demo proxy CA")
        .context("generating the demo's forward-proxy CA")?;
    std::fs::write(dir.join("proxy-ca.pem"), &cert)?;
    let key_file = dir.join("proxy-ca-key.pem");
    std::fs::write(&key_file, key)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(cert)
}

fn demo_config(sim: &SimHandle, issuer: &IssuerHandle, dir: &std::path::Path) -> String {
    let credential = format!(
        "kind = \"client_secret\"            # the gateway signs in to the simulated Entra\ntenant_id = \"{}\"\nclient_id = \"{GATEWAY_CLIENT_ID}\"\nclient_secret_file = \"{}\"\nauthority_host = \"http://{}\"",
        issuer.tenant_id(),
        dir.join("client-secret").display(),
        issuer.addr()
    );
    let contributor = format!(
        r#"# Approved requests whose rule says elevate_to = "contributor" run as
# this app registration, and only they.
[[upstream.identities]]
name = "contributor"
credential = {{ kind = "client_secret", tenant_id = "{tenant}", client_id = "{CONTRIBUTOR_CLIENT_ID}", client_secret_file = "{}", authority_host = "http://{authority}" }}

# Agents acting for people reach Azure as those people, with their own token
# (the gateway's app trades it, on-behalf-of): Azure applies their own roles.
[[upstream.identities]]
name = "as-the-person"
on_behalf_of = true
serves = {{ kinds = ["agent_for_user"] }}
credential = {{ kind = "client_secret", tenant_id = "{tenant}", client_id = "{GATEWAY_CLIENT_ID}", client_secret_file = "{}", authority_host = "http://{authority}" }}
"#,
        dir.join("contributor-secret").display(),
        dir.join("client-secret").display(),
        tenant = issuer.tenant_id(),
        authority = issuer.addr()
    );
    let forward_proxy = format!(
        r#"
# Tools that only know HTTPS_PROXY reach Azure's real host names through
# this same listener (CONNECT); the agent's token rides on the CONNECT.
[forward_proxy]
enabled = true
ca_cert_file = "{}"
ca_key_file = "{}"
"#,
        dir.join("proxy-ca.pem").display(),
        dir.join("proxy-ca-key.pem").display()
    );
    let sign_in = format!(
        r#"
# Approvers sign in to the approval page (/ui/approvals); the development
# issuer's sign-in page offers the demo approver, no password.
[admin.sign_in]
client_id = "{SIGN_IN_CLIENT_ID}"
client_secret_file = "{}"
"#,
        dir.join("sign-in-secret").display()
    );
    let text = LocalConfig::new(sim, issuer, dir, "")
        .tls(true)
        .credential_toml(credential)
        .extra_toml(format!("{contributor}{forward_proxy}{sign_in}{REVEAL}"))
        .render();
    format!("# Written by `airlock demo`.\n{text}")
}

/// The demo's reveal rule: an agent may have a Key Vault secret in clear,
/// one answer at a time, when an approver agrees.
const REVEAL: &str = r#"
# An agent that needs a secret in clear asks with `x-airlock-reveal: <why>`;
# an approver releases that one answer (everyone else, always: the mask).
[[masking.reveal]]
name = "agents-secrets-by-approval"
principals = { groups = ["00000000-0000-0000-0000-0000000000c1"] }
operations = ["Microsoft.KeyVault/vaults/secrets/getSecret/action"]
approval = { groups = ["00000000-0000-0000-0000-0000000000c2"], hold = "2m", ttl = "10m" }
"#;

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
    println!("  approval API     {}   (same CA)", env.gateway.admin_url());
    println!(
        "  approval page    {}/ui/approvals   (sign in as Alice Approver: development sign-in, no password)",
        env.gateway.admin_url()
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
    println!(
        "\nOr with Azure's real host names, the gateway as a forward proxy (HTTPS_PROXY; the token on the CONNECT):\n"
    );
    println!(
        "  curl --proxy {url} --proxy-cacert {} --cacert {} \\\n    --proxy-header \"Proxy-Authorization: Bearer $TOKEN\" \\\n    'https://management.azure.com/subscriptions/{sub}/resourcegroups?api-version=2021-04-01'",
        ca.display(),
        env.dir.path().join("proxy-ca.pem").display()
    );
    println!(
        "\nA storage account create waits for approval (it answers 202; poll the Azure-AsyncOperation URL):\n"
    );
    println!(
        "  curl --cacert {} -X PUT -H \"Authorization: Bearer $TOKEN\" -H 'content-type: application/json' \\\n    -H 'x-airlock-justification: trying the demo' -d '{{\"location\":\"westeurope\"}}' -i \\\n    '{url}/subscriptions/{sub}/resourceGroups/{}/providers/Microsoft.Storage/storageAccounts/mynewacct?api-version=2023-05-01'\n",
        ca.display(),
        airlock_sim::RESOURCE_GROUP
    );
    println!(
        "Then approve it as Alice, the demo approver: on the approval page (a browser trusting {}), or:\n",
        ca.display()
    );
    println!(
        "  export AIRLOCK_ADMIN_URL='{}' AIRLOCK_TOKEN='{}'",
        env.gateway.admin_url(),
        env.issuer.mint(&TokenSpec::approver())
    );
    println!(
        "  airlock approvals list --ca-file {}\n  airlock approvals approve <ID> --ca-file {} --comment ok",
        ca.display(),
        ca.display()
    );
}
