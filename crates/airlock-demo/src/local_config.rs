//! [`LocalConfig`]: the `airlock.toml` of a gateway in front of the
//! simulated Azure and the development token issuer.

use std::path::{Path, PathBuf};

use airlock_sim::{IssuerHandle, SimHandle};

use crate::AUDIENCE;

/// The configuration `airlock demo` writes, and end-to-end tests start
/// gateways (in process or as `airlock serve`) with: every file in one
/// directory (`policy.toml`, `masking.key`, `airlock.db`, and with TLS
/// `cert.pem`/`key.pem`), loopback listeners on free ports, the simulator
/// as ARM and as the one vault, and the issuer's tenant and discovery.
///
/// ```no_run
/// # async fn run() -> anyhow::Result<()> {
/// let sim = airlock_sim::SimAzure::builder().expected_token("t").start().await?;
/// let issuer = airlock_sim::DevIssuer::start(airlock_sim::TENANT_ID).await?;
/// let dir = tempfile::tempdir()?;
/// let text = airlock_demo::LocalConfig::new(&sim, &issuer, dir.path(), "t")
///     .extra_toml("[limits]\nrequest_timeout = \"5s\"\n")
///     .render();
/// let config = airlock_gateway::Config::parse(&text, "test", |_| None)?;
/// # let _ = config; Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct LocalConfig {
    dir: PathBuf,
    tenant: String,
    discovery: String,
    arm_url: String,
    key_vault_endpoint: String,
    blob_endpoint: String,
    upstream_token: String,
    listen: String,
    admin: String,
    tls: bool,
    approval_toml: String,
    store_toml: String,
    credential_toml: Option<String>,
    upstream_toml: String,
    extra_toml: String,
    audiences: Vec<String>,
}

impl LocalConfig {
    /// A gateway in front of `sim`, trusting `issuer`, its files in `dir`,
    /// presenting `upstream_token` to the simulator.
    pub fn new(sim: &SimHandle, issuer: &IssuerHandle, dir: &Path, upstream_token: &str) -> Self {
        Self {
            dir: dir.to_owned(),
            tenant: issuer.tenant_id().to_owned(),
            discovery: issuer.issuer(),
            arm_url: sim.arm_url(),
            key_vault_endpoint: sim.key_vault_endpoint(),
            blob_endpoint: sim.blob_endpoint(),
            upstream_token: upstream_token.to_owned(),
            listen: "127.0.0.1:0".to_owned(),
            admin: "127.0.0.1:0".to_owned(),
            tls: false,
            approval_toml: String::new(),
            store_toml: String::new(),
            credential_toml: None,
            upstream_toml: String::new(),
            extra_toml: String::new(),
            audiences: Vec::new(),
        }
    }

    /// The agents' listener (default `127.0.0.1:0`, a free port).
    #[must_use]
    pub fn listen(mut self, address: impl Into<String>) -> Self {
        self.listen = address.into();
        self
    }

    /// The admin listener (default `127.0.0.1:0`, a free port).
    #[must_use]
    pub fn admin(mut self, address: impl Into<String>) -> Self {
        self.admin = address.into();
        self
    }

    /// Serves TLS with `cert.pem` and `key.pem` from the directory.
    #[must_use]
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }

    /// Another ARM upstream instead of the simulator.
    #[must_use]
    pub fn arm_url(mut self, url: impl Into<String>) -> Self {
        self.arm_url = url.into();
        self
    }

    /// More `[approval]` keys.
    #[must_use]
    pub fn approval_toml(mut self, toml: impl Into<String>) -> Self {
        self.approval_toml = toml.into();
        self
    }

    /// More `[store]` keys; a `database` key here replaces the default
    /// `airlock.db` in the directory.
    #[must_use]
    pub fn store_toml(mut self, toml: impl Into<String>) -> Self {
        self.store_toml = toml.into();
        self
    }

    /// The `[upstream.credential]` table's keys, instead of the static
    /// token (e.g. `kind = "client_secret"` against the development issuer).
    #[must_use]
    pub fn credential_toml(mut self, toml: impl Into<String>) -> Self {
        self.credential_toml = Some(toml.into());
        self
    }

    /// Agents' tokens for these audiences are accepted too (besides
    /// `api://airlock`): Azure's own, for forward-proxy clients.
    #[must_use]
    pub fn audiences(mut self, audiences: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.audiences.extend(audiences.into_iter().map(Into::into));
        self
    }

    /// More `[upstream]` keys.
    #[must_use]
    pub fn upstream_toml(mut self, toml: impl Into<String>) -> Self {
        self.upstream_toml = toml.into();
        self
    }

    /// More tables, appended (e.g. `[limits]`, `[audit]`).
    #[must_use]
    pub fn extra_toml(mut self, toml: impl Into<String>) -> Self {
        self.extra_toml = toml.into();
        self
    }

    /// The TOML text, with a comment on every setting a reader may wonder about.
    pub fn render(&self) -> String {
        let file = |name: &str| self.dir.join(name).display().to_string();
        let tls = if self.tls {
            format!(
                "\n[listen.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
                file("cert.pem"),
                file("key.pem")
            )
        } else {
            String::new()
        };
        format!(
            r#"[listen]
address = "{listen}"
{tls}
[identity]
tenants = ["{tenant}"]
audiences = [{audiences}]
discovery = "{discovery}"   # the development token issuer

[policy]
file = "{policy}"

[masking]
key_file = "{masking_key}"   # generated on first start

[store]
{database}{store}

[approval]
poll_interval = "1s"         # the agent's SDK polls its approval every second
{approval}
[admin]
address = "{admin}"

[upstream]
arm_url = "{arm}"
allow_insecure_http = true   # the simulated Azure speaks plain HTTP on loopback
{upstream}
[upstream.key_vault]
endpoint = "{kv}"
vaults = ["{vault}"]

[upstream.storage]
blob_endpoint = "{blob}"
accounts = ["{account}"]

[upstream.credential]
{credential}

{extra}"#,
            listen = self.listen,
            tenant = self.tenant,
            audiences = std::iter::once(AUDIENCE)
                .chain(self.audiences.iter().map(String::as_str))
                .map(|a| format!("\"{a}\""))
                .collect::<Vec<_>>()
                .join(", "),
            discovery = self.discovery,
            policy = file("policy.toml"),
            masking_key = file("masking.key"),
            database = if self.store_toml.contains("database") {
                String::new()
            } else {
                format!(
                    "database = \"{}\"          # approvals and the audit trail\n",
                    file("airlock.db")
                )
            },
            store = self.store_toml,
            approval = self.approval_toml,
            admin = self.admin,
            arm = self.arm_url,
            upstream = self.upstream_toml,
            kv = self.key_vault_endpoint,
            vault = airlock_sim::VAULT,
            blob = self.blob_endpoint,
            account = airlock_sim::STORAGE_ACCOUNT,
            credential = self.credential_toml.clone().unwrap_or_else(|| format!(
                "kind = \"static\"\ntoken = \"{}\"",
                self.upstream_token
            )),
            extra = self.extra_toml,
        )
    }
}
