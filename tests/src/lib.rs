//! Shared set-up for the end-to-end tests: a simulated Azure and a gateway in
//! front of it, on loopback ports, spoken to over real HTTP.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod browser;

use airlock_core::REQUEST_ID_HEADER;
use airlock_demo::{AgentClient, AgentResponse};
use airlock_demo::{DevCertificates, LocalConfig};
use airlock_gateway::{Config, Gateway, RunningGateway};
use airlock_sim::{DevIssuer, IssuerHandle, SimAzure, SimHandle, TokenSpec};
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The token the gateway presents upstream in tests.
pub const UPSTREAM_TOKEN: &str = "test-upstream-token";

/// A simulated Azure, a gateway in front of it, and the agent's client.
#[derive(Debug)]
pub struct Harness {
    /// The simulated Azure.
    pub sim: SimHandle,
    /// The gateway.
    pub gateway: RunningGateway,
    /// The development token issuer the gateway trusts.
    pub issuer: IssuerHandle,
    /// The demo agent's token (`TokenSpec::agent()`), minted by `issuer`.
    pub agent_token: String,
    /// A client carrying `agent_token`.
    pub agent: AgentClient,
    /// Where TLS files live, when TLS is on.
    pub dir: tempfile::TempDir,
    /// The development CA, when TLS is on.
    pub ca_pem: Option<String>,
    /// The configuration the gateway runs with (restarts reuse it).
    pub config_text: String,
    /// The database the gateway keeps approvals and the audit trail in.
    pub database: std::path::PathBuf,
}

/// Asks `attempt` until it answers `Some`, and fails the test once
/// `within` has passed: for what happens in the background (an event
/// written when a tunnel closes, a notification delivered). The deadline
/// decides, never a fixed sleep.
pub async fn eventually<T, F, Fut>(what: &str, within: std::time::Duration, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        // A polling interval, not a timing assumption.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
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
    /// The policy file's text; default [`ALLOW_ALL`].
    pub policy: Option<String>,
    /// Extra `[approval]` keys (polled every second by default).
    pub approval_toml: String,
    /// Extra `[store]` keys.
    pub store_toml: String,
    /// The database file (default `airlock.db` in the harness directory).
    pub database: Option<std::path::PathBuf>,
    /// Before the gateway starts, with the issuer: e.g. register the
    /// gateway's app registration and give `[upstream.credential]` keys
    /// signing in as it (the simulated Azure trusts the issuer's tokens, and
    /// still the static [`UPSTREAM_TOKEN`]).
    pub credential: Option<fn(&IssuerHandle, &std::path::Path) -> String>,
    /// Before the gateway starts, with the issuer: `[[upstream.identities]]`
    /// tables to add (each registering its app with the issuer).
    pub upstream_identities: Option<fn(&IssuerHandle, &std::path::Path) -> String>,
    /// Agents' token audiences accepted besides `api://airlock`.
    pub audiences: Vec<String>,
    /// Approvers sign in to the page (`[admin.sign_in]`) through the
    /// issuer's account picker, which lists [`sign_in_users`].
    pub sign_in: bool,
}

/// The approver app registration's client id in tests with sign-in.
pub const SIGN_IN_CLIENT_ID: &str = "00000000-0000-0000-0000-00000000c0de";

/// The people on the sign-in page's account picker, in order: Alice (an
/// approver) and Bob (signed in, but in no approvers' group).
pub fn sign_in_users() -> [TokenSpec; 2] {
    [
        TokenSpec::approver(),
        TokenSpec::new(
            "Bob Onlooker",
            "00000000-0000-0000-0000-0000000000b7",
            airlock_core::PrincipalKind::User,
            "00000000-0000-0000-0000-0000000000b8",
        )
        .username("bob@contoso.example"),
    ]
}

/// A policy that allows every operation, for tests about forwarding.
pub const ALLOW_ALL: &str = "[[rule]]\nname = \"test-allow-all\"\neffect = \"allow\"\nactions = [\"*\"]\ndata_actions = [\"*\"]\n";

impl Harness {
    /// Starts with plain HTTP and defaults.
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    /// Starts with the given options.
    pub async fn start_with(options: Options) -> Self {
        let issuer = DevIssuer::start(airlock_sim::TENANT_ID).await.unwrap();
        let sim = SimAzure::builder()
            .expected_token(UPSTREAM_TOKEN)
            .trust_issuer(issuer.verifier())
            .start()
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let database = options
            .database
            .clone()
            .unwrap_or_else(|| dir.path().join("airlock.db"));
        let policy_file = dir.path().join("policy.toml");
        std::fs::write(&policy_file, options.policy.as_deref().unwrap_or(ALLOW_ALL)).unwrap();
        let mut ca = None;
        if options.tls {
            let certs = DevCertificates::generate(&[
                "localhost",
                &format!("{}.localhost", airlock_sim::VAULT),
            ])
            .unwrap();
            certs.write_to(dir.path()).unwrap();
            ca = Some(certs.ca_pem);
        }
        let mut config = LocalConfig::new(&sim, &issuer, dir.path(), UPSTREAM_TOKEN)
            .tls(options.tls)
            .approval_toml(options.approval_toml)
            .store_toml(format!(
                "database = \"{}\"\n{}",
                database.display(),
                options.store_toml
            ))
            .upstream_toml(options.upstream_toml)
            .audiences(options.audiences);
        let identities = options
            .upstream_identities
            .map(|identities| identities(&issuer, dir.path()))
            .unwrap_or_default();
        let sign_in = if options.sign_in {
            let secret = dir.path().join("sign-in-secret");
            std::fs::write(&secret, "sign-in-secret-for-tests").unwrap();
            for user in sign_in_users() {
                issuer.register_user(user);
            }
            format!(
                "\n[admin.sign_in]\nclient_id = \"{SIGN_IN_CLIENT_ID}\"\nclient_secret_file = \"{}\"\n",
                secret.display()
            )
        } else {
            String::new()
        };
        config = config.extra_toml(format!("{identities}\n{}{sign_in}", options.extra_toml));
        if let Some(arm_url) = options.arm_url {
            config = config.arm_url(arm_url);
        }
        if let Some(credential) = options.credential {
            config = config.credential_toml(credential(&issuer, dir.path()));
        }
        let text = config.render();
        let gateway = start_gateway(&text).await;
        if options.sign_in {
            register_sign_in(&issuer, &gateway);
        }
        let agent_token = issuer.mint(&TokenSpec::agent());
        let agent = AgentClient::new(gateway.url(), ca.as_deref())
            .unwrap()
            .with_token(agent_token.clone());
        Self {
            sim,
            gateway,
            issuer,
            agent_token,
            agent,
            dir,
            ca_pem: ca,
            config_text: text,
            database,
        }
    }

    /// Stops the gateway and starts it again on the same configuration and
    /// files (a new port: the agent's client is rebuilt).
    pub async fn restart_gateway(&mut self) {
        let fresh = start_gateway(&self.config_text).await;
        register_sign_in(&self.issuer, &fresh);
        let old = std::mem::replace(&mut self.gateway, fresh);
        old.shutdown().await;
        self.agent = self.client(Some(&self.agent_token));
    }

    /// A client for the approval API (trusting the gateway's CA) with `token`.
    pub fn admin(&self, token: Option<&str>) -> AgentClient {
        let client = AgentClient::new(self.gateway.admin_url(), self.ca_pem.as_deref()).unwrap();
        match token {
            Some(token) => client.with_token(token),
            None => client,
        }
    }

    /// A client for the approval API carrying the development approver's token.
    pub fn approver(&self) -> AgentClient {
        self.admin(Some(&self.issuer.mint(&TokenSpec::approver())))
    }

    /// A client for the gateway (trusting its CA) with `token`, or none.
    pub fn client(&self, token: Option<&str>) -> AgentClient {
        let client = AgentClient::new(self.gateway.url(), self.ca_pem.as_deref()).unwrap();
        match token {
            Some(token) => client.with_token(token),
            None => client,
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

    /// The seeded secret's URL on the gateway's vault host (`GET` reads its value).
    pub fn secret_url(&self) -> String {
        format!(
            "{}/secrets/{}?api-version=7.4",
            self.vault_url(),
            airlock_sim::SECRET_NAME
        )
    }

    /// Every audit event in the gateway's database so far, in chain order
    /// (read from the file, as `airlock audit export` does).
    pub async fn audit_trail(&self) -> Vec<airlock_recorder::ChainedEvent> {
        let store = airlock_store::SqliteStore::open(&self.database)
            .await
            .unwrap();
        let mut pages = store.events_since(std::time::UNIX_EPOCH);
        let mut all = Vec::new();
        while let Some(page) = pages.next_page().await.unwrap() {
            all.extend(page);
        }
        all
    }

    /// `/metrics` on the admin listener, scraped as Prometheus does (no
    /// token): each sample by name with its labels
    /// (`airlock_requests_total{decision="allow",…}`), whole-number values
    /// only (histogram sums are left out).
    pub async fn metrics(&self) -> std::collections::HashMap<String, u64> {
        let answer = self.admin(None).get("/metrics").await.unwrap();
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(
            answer.headers[http::header::CONTENT_TYPE],
            airlock_metrics::OPENMETRICS_TEXT
        );
        std::str::from_utf8(&answer.body)
            .unwrap()
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (name, value) = line.rsplit_once(' ').unwrap();
                Some((name.to_owned(), value.parse().ok()?))
            })
            .collect()
    }

    /// Stops the gateway, the simulator and the issuer.
    pub async fn shutdown(self) {
        self.gateway.shutdown().await;
        self.sim.shutdown().await;
        self.issuer.shutdown().await;
    }
}

/// The approver app's redirect URI is the gateway's admin URL (a new port
/// each start).
fn register_sign_in(issuer: &IssuerHandle, gateway: &RunningGateway) {
    issuer.register_sign_in_client(
        SIGN_IN_CLIENT_ID,
        "sign-in-secret-for-tests",
        &[&format!("{}/ui/signin/callback", gateway.admin_url())],
    );
}

async fn start_gateway(text: &str) -> RunningGateway {
    let config = Config::parse(text, "test", |_| None).unwrap();
    Gateway::start(config).await.unwrap()
}

/// The resource group path of the seeded data.
pub fn rg_path() -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{}",
        airlock_sim::SUBSCRIPTION_ID,
        airlock_sim::RESOURCE_GROUP
    )
}

/// The response is an Airlock error with this code and a request id in header and body.
pub fn assert_airlock_error(
    response: &AgentResponse,
    status: StatusCode,
    code: &str,
) -> serde_json::Value {
    assert_eq!(
        response.status,
        status,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    let json = response.json();
    assert_eq!(json["error"]["code"], code, "{json}");
    let id = response
        .header(REQUEST_ID_HEADER)
        .expect("request id header");
    assert_eq!(json["error"]["airlock"]["requestId"], id);
    assert!(
        response.header("retry-after").is_none(),
        "Airlock errors never carry Retry-After"
    );
    assert!(
        response
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    json
}

/// Sends raw bytes and returns the raw answer (for request shapes clients won't produce).
pub async fn raw(h: &Harness, request: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(h.gateway.local_addr())
        .await
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}
