//! `airlock.toml`: the gateway's one configuration file.
//!
//! Parsed with `deny_unknown_fields` and validated before anything starts;
//! every error names the key and the fix. Secrets can come from the
//! environment instead of the file:
//!
//! | variable | overrides |
//! |---|---|
//! | `AIRLOCK_UPSTREAM_TOKEN` | `upstream.credential.token` (`kind = "static"`) |
//! | `AIRLOCK_UPSTREAM_CLIENT_SECRET` | `upstream.credential.client_secret` (`kind = "client_secret"`) |
//! | `AIRLOCK_MASKING_KEY` | `masking.key_file` (the key itself, hex) |
//!
//! ```
//! let config = airlock_gateway::Config::from_toml_str(r#"
//!     [listen]
//!     address = "127.0.0.1:8443"
//!
//!     [identity]
//!     tenants = ["72f988bf-86f1-41af-91ab-2d7cd011db47"]
//!     audiences = ["api://airlock"]
//!
//!     [policy]
//!     file = "policy.toml"
//!
//!     [upstream.credential]
//!     kind = "static"
//!     token = "dev-token"
//! "#).unwrap();
//! assert_eq!(config.upstream.arm_url, "https://management.azure.com");
//! assert_eq!(config.public_url().unwrap().to_string(), "http://localhost:8443/");
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::Uri;
use serde::Deserialize;

use airlock_upstream::{Endpoint, GatewayHosts, InvalidConfig, Routes, UpstreamConfig};

mod approval;
mod audit;
mod forward_proxy;
mod identity;
mod masking;
mod provider;
mod store;

pub use approval::{AdminConfig, ApprovalConfig, NotifyConfig, NotifyKind, StoreKind};
pub use audit::AuditConfig;
pub use forward_proxy::{ForwardProxyConfig, ProxyAuth};
pub use identity::{GroupResolverKind, GroupsConfig, IdentityConfig, KeysFrom};
pub use masking::{MASKING_KEY_ENV, MaskRuleConfig, MaskingConfig};
pub use provider::{ClaimsConfig, ProviderConfig};
pub use store::StoreConfig;

pub use airlock_upstream::UPSTREAM_TOKEN_ENV;

/// The whole configuration file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where clients connect.
    pub listen: ListenConfig,
    /// Whose tokens are accepted.
    pub identity: IdentityConfig,
    /// What they may do.
    pub policy: PolicyConfig,
    /// Which secrets in Azure's answers are masked.
    #[serde(default)]
    pub masking: MaskingConfig,
    /// The database approvals and the audit trail live in.
    #[serde(default)]
    pub store: StoreConfig,
    /// How approvals wait and expire.
    #[serde(default)]
    pub approval: ApprovalConfig,
    /// Where approvers reach the approval API.
    #[serde(default)]
    pub admin: AdminConfig,
    /// How every request is recorded.
    #[serde(default)]
    pub audit: AuditConfig,
    /// Where requests go, and with which credential.
    pub upstream: UpstreamConfig,
    /// Sizes and durations that bound each request.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// `CONNECT` for clients that use `HTTPS_PROXY`.
    #[serde(default)]
    pub forward_proxy: ForwardProxyConfig,
    /// How the gateway logs.
    #[serde(default)]
    pub log: LogConfig,
}

/// `[log]`: the gateway's log lines on standard error (what is logged is
/// `RUST_LOG`'s filter, default `info`).
///
/// ```toml
/// [log]
/// format = "json"   # one JSON object per line, for a log pipeline; default "text"
/// # Request spans to an OpenTelemetry collector (OTLP over HTTP, protobuf);
/// # needs an `airlock` built with the `otel` feature.
/// otlp_endpoint = "http://otel-collector:4318/v1/traces"
/// ```
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (default) or `json`.
    #[serde(default)]
    pub format: LogFormat,
    /// Where request spans are exported (the whole OTLP/HTTP traces URL);
    /// none by default.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
}

impl LogConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let Some(endpoint) = &self.otlp_endpoint else {
            return Ok(());
        };
        match endpoint.parse::<http::Uri>() {
            Ok(uri)
                if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() =>
            {
                Ok(())
            }
            _ => Err(invalid(
                "log.otlp_endpoint",
                format!("'{endpoint}' is not an http(s) URL"),
                "give the collector's OTLP/HTTP traces URL, e.g. http://otel-collector:4318/v1/traces",
            )),
        }
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (time, level, target, fields, spans).
    Json,
}

/// `[policy]`: the rules every request is decided by. Required: without a
/// policy nothing could be allowed.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// The policy file (relative paths are relative to the working directory).
    pub file: PathBuf,
    /// How often the file is checked for changes; SIGHUP reloads at once.
    #[serde(default = "default_policy_reload", with = "humantime_serde")]
    pub reload_interval: Duration,
    /// `enforce` (the default), or `observe`: a first rollout where every
    /// request is allowed and what the rules would have done is only
    /// recorded (`would_have` in the audit trail, counted on `/metrics`).
    /// Warned about at start; never the default.
    #[serde(default)]
    pub mode: PolicyMode,
}

/// `[policy] mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyMode {
    /// Rules decide.
    #[default]
    Enforce,
    /// Rules only record what they would have decided.
    Observe,
}

fn default_policy_reload() -> Duration {
    Duration::from_secs(2)
}

/// `[listen]`: the client-facing listener.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// Socket address to bind, e.g. `0.0.0.0:8443`.
    pub address: SocketAddr,
    /// How clients address the gateway (`https://airlock.contoso.com`); used to
    /// route Key Vault hosts (`{vault}.<host>`) and to rewrite Azure URLs in
    /// responses. Defaults to `http(s)://localhost:<port>` on loopback, else the bind address.
    pub public_url: Option<String>,
    /// More host names clients may use for ARM requests (DNS aliases behind a load balancer).
    #[serde(default)]
    pub extra_hosts: Vec<String>,
    /// TLS certificate and key; without it the listener speaks plain HTTP,
    /// which real Azure SDKs refuse for bearer tokens.
    pub tls: Option<TlsConfig>,
}

/// `[listen.tls]`: PEM files for the TLS listener.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain (leaf first), PEM.
    pub cert_file: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1), PEM.
    pub key_file: PathBuf,
}

/// `[limits]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body accepted (413 above).
    #[serde(default = "default_max_request_body")]
    pub max_request_body_bytes: u64,
    /// Largest JSON response the gateway buffers to rewrite `nextLink` (502 above).
    #[serde(default = "default_max_response_rewrite")]
    pub max_response_rewrite_bytes: u64,
    /// Time for the whole request, including Azure's answer (504 after).
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Time for the client to send its request body (408 after).
    #[serde(default = "default_request_body_timeout", with = "humantime_serde")]
    pub request_body_timeout: Duration,
    /// Time for a request head to arrive whole, for a new connection's first
    /// bytes, and for an idle keep-alive connection's next request; the
    /// connection is closed after it (HTTP/2: the ping interval and timeout).
    #[serde(default = "default_header_read_timeout", with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Time for a client's TLS handshake.
    #[serde(default = "default_tls_handshake_timeout", with = "humantime_serde")]
    pub tls_handshake_timeout: Duration,
    /// Open client connections per listener; more are closed unread.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Open client connections per client address, per listener.
    #[serde(default = "default_max_connections_per_client")]
    pub max_connections_per_client: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_request_body_bytes: default_max_request_body(),
            max_response_rewrite_bytes: default_max_response_rewrite(),
            request_timeout: default_request_timeout(),
            request_body_timeout: default_request_body_timeout(),
            header_read_timeout: default_header_read_timeout(),
            tls_handshake_timeout: default_tls_handshake_timeout(),
            max_connections: default_max_connections(),
            max_connections_per_client: default_max_connections_per_client(),
        }
    }
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(120)
}
fn default_request_body_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_header_read_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_tls_handshake_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_max_connections() -> usize {
    10_000
}
fn default_max_connections_per_client() -> usize {
    512
}
fn default_max_request_body() -> u64 {
    4 * 1024 * 1024
}
fn default_max_response_rewrite() -> u64 {
    16 * 1024 * 1024
}

/// A configuration that cannot be used, with the key at fault and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the schema.
    #[error("{origin}: {message}")]
    Parse {
        /// File name (or `<string>`).
        origin: String,
        /// toml's message, which names the line and the key.
        message: String,
    },
    /// A value is present but unusable.
    #[error("{key}: {problem}; fix: {fix}")]
    Invalid {
        /// Dotted key, e.g. `upstream.arm_url`.
        key: &'static str,
        /// What is wrong with it.
        problem: String,
        /// What to do.
        fix: String,
    },
}

/// The text of a file a configuration key names; the error names the key,
/// the file and why it could not be read.
pub(crate) fn read_file(key: &'static str, file: &std::path::Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(file).map_err(|e| ConfigError::Invalid {
        key,
        problem: format!("cannot read {}: {e}", file.display()),
        fix: "make it readable by the gateway".into(),
    })
}

fn invalid(key: &'static str, problem: impl Into<String>, fix: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        problem: problem.into(),
        fix: fix.into(),
    }
}

impl Config {
    /// An identity that forwards callers' own tokens needs the forward
    /// proxy (where clients reach Azure's own hosts with tokens for them)
    /// and some Azure audience among `[identity].audiences`: otherwise every
    /// token it could forward was issued for the gateway, not for Azure.
    fn check_forwarded_caller_tokens(&self) -> Result<(), ConfigError> {
        let Some(identity) = self
            .upstream
            .identities
            .iter()
            .find(|i| i.forward_caller_token)
        else {
            return Ok(());
        };
        let name = &identity.name;
        if !self.forward_proxy.enabled {
            return Err(invalid(
                "upstream.identities.forward_caller_token",
                format!(
                    "identity '{name}' forwards callers' own tokens, but the forward proxy is off: clients addressing the gateway get tokens for the gateway, which Azure must never be sent"
                ),
                "enable [forward_proxy], or act as the caller with on_behalf_of instead",
            ));
        }
        let azure = self.upstream.azure_audiences();
        let accepted = |audience: &str| {
            self.identity
                .audiences
                .iter()
                .any(|a| a.trim_end_matches('/') == audience.trim_end_matches('/'))
        };
        if !azure.iter().any(|(_, audience)| accepted(audience)) {
            return Err(invalid(
                "upstream.identities.forward_caller_token",
                format!(
                    "identity '{name}' forwards callers' own tokens, but identity.audiences accepts no Azure audience, so no token it could forward was issued for Azure"
                ),
                "add the audiences forward-proxy clients ask for, e.g. \"https://management.azure.com\"",
            ));
        }
        Ok(())
    }

    /// Reads, parses, applies environment overrides and validates a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string(), |name| {
            std::env::var(name).ok()
        })
    }

    /// Parses and validates TOML text, with environment overrides from the process.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        Self::parse(text, "<string>", |name| std::env::var(name).ok())
    }

    /// Parses and validates TOML text; `env` supplies overrides (tests pass their own).
    pub fn parse(
        text: &str,
        origin: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        config.upstream.apply_env(env);
        config.validate()?;
        Ok(config)
    }

    /// Checks every value that parsing alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.public_url()?;
        self.admin_url()?;
        if self.admin.address == self.listen.address && self.listen.address.port() != 0 {
            return Err(invalid(
                "admin.address",
                format!("{} is also listen.address", self.admin.address),
                "give the approval API its own port (default 127.0.0.1:8444)",
            ));
        }
        self.identity.validate(self.upstream.allow_insecure_http)?;
        if let Some(sign_in) = &self.admin.sign_in {
            sign_in.validate()?;
        }
        self.masking.validate()?;
        self.approval.validate()?;
        self.audit.validate()?;
        self.store.validate()?;
        self.log.validate()?;
        if self.policy.reload_interval.is_zero() {
            return Err(invalid(
                "policy.reload_interval",
                "must be longer than zero",
                "give a duration such as \"2s\"",
            ));
        }
        self.upstream.validate()?;
        self.forward_proxy.validate()?;
        self.check_forwarded_caller_tokens()?;
        for (key, value) in [
            ("limits.request_timeout", self.limits.request_timeout),
            (
                "limits.request_body_timeout",
                self.limits.request_body_timeout,
            ),
            (
                "limits.header_read_timeout",
                self.limits.header_read_timeout,
            ),
            (
                "limits.tls_handshake_timeout",
                self.limits.tls_handshake_timeout,
            ),
        ] {
            if value.is_zero() {
                return Err(invalid(
                    key,
                    "must be longer than zero",
                    "give a duration such as \"30s\"",
                ));
            }
        }
        for (key, value) in [
            ("limits.max_connections", self.limits.max_connections),
            (
                "limits.max_connections_per_client",
                self.limits.max_connections_per_client,
            ),
        ] {
            if value == 0 {
                return Err(invalid(
                    key,
                    "must be above zero",
                    "give a number of connections, e.g. 512",
                ));
            }
        }
        if self.limits.max_request_body_bytes == 0 {
            return Err(invalid(
                "limits.max_request_body_bytes",
                "must be above zero",
                "give a size in bytes, e.g. 4194304",
            ));
        }
        if let Some(tls) = &self.listen.tls {
            for (key, path) in [
                ("listen.tls.cert_file", &tls.cert_file),
                ("listen.tls.key_file", &tls.key_file),
            ] {
                if !path.is_file() {
                    return Err(invalid(
                        key,
                        format!("{} does not exist or is not a file", path.display()),
                        "point it at a PEM file",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The URL clients use to reach the gateway.
    pub fn public_url(&self) -> Result<Uri, ConfigError> {
        self.listener_url(
            "listen.public_url",
            self.listen.public_url.as_deref(),
            self.listen.address,
        )
    }

    /// The URL approvers use to reach the approval API (`[admin]`), served
    /// with the same TLS certificate as the agents' listener.
    pub fn admin_url(&self) -> Result<Uri, ConfigError> {
        self.listener_url(
            "admin.public_url",
            self.admin.public_url.as_deref(),
            self.admin.address,
        )
    }

    fn listener_url(
        &self,
        key: &'static str,
        explicit: Option<&str>,
        address: SocketAddr,
    ) -> Result<Uri, ConfigError> {
        let scheme = if self.listen.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let text = match explicit {
            Some(url) => url.to_owned(),
            None if address.ip().is_loopback() => {
                format!("{scheme}://localhost:{}/", address.port())
            }
            None => format!("{scheme}://{address}/"),
        };
        let uri: Uri = text.parse().map_err(|_| {
            invalid(
                key,
                format!("'{text}' is not a URL"),
                "write it as https://host[:port]",
            )
        })?;
        match (uri.scheme_str(), uri.host()) {
            (Some("http" | "https"), Some(_)) if uri.path() == "/" || uri.path().is_empty() => {
                Ok(uri)
            }
            _ => Err(invalid(
                key,
                format!("'{text}' must be an http(s) URL with a host and no path"),
                "write it as https://host[:port]",
            )),
        }
    }

    /// The names the gateway answers to, for routing.
    pub fn gateway_hosts(&self) -> Result<GatewayHosts, ConfigError> {
        let public_url = self.public_url()?;
        let public = Endpoint::parse(&public_url.to_string()).map_err(|problem| {
            invalid(
                "listen.public_url",
                problem.to_string(),
                "write it as https://host[:port]",
            )
        })?;
        Ok(GatewayHosts::new(public)
            .extra_hosts(self.listen.extra_hosts.iter().cloned())
            .listen_ip(self.listen.address.ip()))
    }

    /// The routing table: `[upstream]` and the names the gateway answers to.
    pub fn routes(&self) -> Result<Routes, ConfigError> {
        Ok(Routes::new(&self.upstream, &self.gateway_hosts()?)?)
    }
}

impl From<InvalidConfig> for ConfigError {
    fn from(error: InvalidConfig) -> Self {
        ConfigError::Invalid {
            key: error.key,
            problem: error.problem,
            fix: error.fix,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "[listen]\naddress = \"127.0.0.1:8443\"\n[identity]\ntenants = [\"t1\"]\naudiences = [\"api://airlock\"]\n[policy]\nfile = \"policy.toml\"\n[upstream.credential]\nkind = \"static\"\ntoken = \"t\"\n";

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, "airlock.toml", |_| None)
    }

    fn error_of(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn notification_receivers_name_what_is_missing() {
        let with = |rest: &str| format!("{MINIMAL}[[approval.notify]]\n{rest}\n");
        for (receiver, problem) in [
            ("kind = \"slack\"", "exactly one of url and url_env"),
            (
                "kind = \"slack\"\nurl = \"https://x\"\nurl_env = \"U\"",
                "exactly one of url and url_env",
            ),
            (
                "kind = \"webhook\"\nurl = \"https://x\"",
                "exactly one of secret_file and secret_env",
            ),
            (
                "kind = \"teams\"\nurl = \"https://x\"\nsecret_env = \"S\"",
                "take no secret",
            ),
            ("kind = \"email\"\nurl = \"https://x\"", "unknown variant"),
        ] {
            let message = error_of(&with(receiver));
            assert!(message.contains(problem), "{receiver}: {message}");
        }
        let config = parse(&with(
            "kind = \"slack\"\nurl_env = \"SLACK_URL\"\nrules = [\"r1\"]",
        ))
        .unwrap();
        assert_eq!(config.approval.notify[0].kind, NotifyKind::Slack);
    }

    #[test]
    fn identity_providers_are_named_apart_and_own_their_issuers() {
        let with = |providers: &str| format!("{MINIMAL}{providers}");
        let aks = "[[identity.provider]]\nname = \"aks-prod\"\nissuer = \"https://oidc.aks.example/t/1/\"\n[identity.provider.claims]\ngroups = \"groups\"\n";
        let config = parse(&with(aks)).unwrap();
        let provider = &config.identity.providers[0];
        assert_eq!(
            (provider.name.as_str(), provider.claims.id.as_str()),
            ("aks-prod", "sub")
        );
        assert_eq!(
            provider.keys_from().unwrap(),
            KeysFrom::Discovery("https://oidc.aks.example/t/1/".into())
        );
        let github = "[[identity.provider]]\nname = \"github\"\nissuer = \"https://token.actions.githubusercontent.com\"\n";
        assert!(parse(&with(&format!("{aks}{github}"))).is_ok());
        for (providers, problem) in [
            (format!("{aks}{aks}"), "two providers are named 'aks-prod'"),
            (
                format!(
                    "{aks}{}",
                    github.replace(
                        "https://token.actions.githubusercontent.com",
                        "https://oidc.aks.example/t/1/"
                    )
                ),
                "issuer 'https://oidc.aks.example/t/1/' is configured twice",
            ),
            (
                github.replace(
                    "https://token.actions.githubusercontent.com",
                    "https://login.microsoftonline.com/t1/v2.0",
                ),
                "configured twice",
            ),
            (
                github.replace("github", "GitHub Actions"),
                "is not a provider name",
            ),
            (
                github.replace("https://", "http://"),
                "is not an https:// issuer",
            ),
            (
                format!("{github}jwks_url = \"https://k\"\njwks_file = \"k.json\"\n"),
                "more than one of discovery",
            ),
            (
                format!("{github}[identity.provider.claims]\nid = \"\"\n"),
                "names no id claim",
            ),
            (format!("{github}mapping = 1\n"), "unknown field"),
        ] {
            let message = error_of(&with(&providers));
            assert!(message.contains(problem), "{providers}: {message}");
        }
    }

    #[test]
    fn minimal_config_gets_public_cloud_defaults() {
        let config = parse(MINIMAL).unwrap();
        assert_eq!(
            config.upstream.key_vault.endpoint,
            "https://{vault}.vault.azure.net"
        );
        assert_eq!(config.upstream.read_timeout, Duration::from_secs(60));
        assert_eq!(config.limits.max_request_body_bytes, 4 * 1024 * 1024);
        assert_eq!(config.upstream.static_token(), Some("t"));
    }

    #[test]
    fn an_otlp_endpoint_must_be_an_http_url() {
        let with = |endpoint: &str| format!("{MINIMAL}[log]\notlp_endpoint = \"{endpoint}\"\n");
        let config = parse(&with("http://collector:4318/v1/traces")).unwrap();
        assert_eq!(
            config.log.otlp_endpoint.as_deref(),
            Some("http://collector:4318/v1/traces")
        );
        for bad in ["collector:4318", "ftp://collector/v1/traces", "not a url"] {
            let message = error_of(&with(bad));
            assert!(
                message.contains("log.otlp_endpoint") && message.contains("/v1/traces"),
                "{bad}: {message}"
            );
        }
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let message = error_of(&format!("{MINIMAL}[limits]\nmax_body = 3\n"));
        assert!(message.starts_with("airlock.toml: "), "{message}");
        assert!(message.contains("unknown field `max_body`"), "{message}");
        assert!(message.contains("line 12"), "{message}");
    }

    #[test]
    fn plain_http_upstream_needs_explicit_opt_in() {
        let text = MINIMAL.replace(
            "[upstream.credential]",
            "[upstream]\narm_url = \"http://127.0.0.1:9\"\n[upstream.credential]",
        );
        let message = error_of(&text);
        assert!(
            message.contains("upstream.arm_url") && message.contains("allow_insecure_http = true"),
            "{message}"
        );
        let allowed = text.replace("[upstream]\n", "[upstream]\nallow_insecure_http = true\n");
        assert!(parse(&allowed).is_ok());
    }

    #[test]
    fn missing_token_points_at_the_environment_variable() {
        let text = MINIMAL.replace("token = \"t\"\n", "");
        let message = error_of(&text);
        assert!(
            message.contains("upstream.credential.token") && message.contains(UPSTREAM_TOKEN_ENV),
            "{message}"
        );
        let from_env = Config::parse(&text, "x", |name| {
            (name == UPSTREAM_TOKEN_ENV).then(|| "from-env".to_owned())
        })
        .unwrap();
        assert_eq!(from_env.upstream.static_token(), Some("from-env"));
    }

    #[test]
    fn a_client_secret_credential_is_checked_and_its_secret_kept_out_of_debug() {
        let text = MINIMAL.replace(
            "kind = \"static\"\ntoken = \"t\"\n",
            "kind = \"client_secret\"\ntenant_id = \"t1\"\nclient_id = \"app-1\"\n",
        );
        let message = error_of(&text);
        assert!(
            message.starts_with("upstream.credential.client_secret")
                && message.contains("AIRLOCK_UPSTREAM_CLIENT_SECRET"),
            "{message}"
        );
        let config = Config::parse(&text, "x", |name| {
            (name == "AIRLOCK_UPSTREAM_CLIENT_SECRET").then(|| "s3cret-value".to_owned())
        })
        .unwrap();
        assert!(!format!("{config:?}").contains("s3cret-value"));
        let insecure = format!("{text}authority_host = \"http://127.0.0.1:9\"\n");
        let message = Config::parse(&insecure, "x", |name| {
            (name == "AIRLOCK_UPSTREAM_CLIENT_SECRET").then(|| "s".to_owned())
        })
        .unwrap_err()
        .to_string();
        assert!(
            message.starts_with("upstream.credential.authority_host")
                && message.contains("allow_insecure_http"),
            "{message}"
        );
        let no_client = text.replace("client_id = \"app-1\"", "client_id = \"\"");
        assert!(error_of(&no_client).starts_with("upstream.credential.client_id"));
    }

    #[test]
    fn a_sovereign_cloud_preset_moves_every_default_but_keeps_what_is_set() {
        let text = MINIMAL
            .replace("[upstream.credential]", "[upstream]\ncloud = \"china\"\nstorage.accounts = [\"logs01\"]\n[upstream.credential]")
            .replace(
                "kind = \"static\"\ntoken = \"t\"\n",
                "kind = \"client_secret\"\ntenant_id = \"t1\"\nclient_id = \"app-1\"\nclient_secret = \"s\"\n",
            );
        let china = parse(&text).unwrap().upstream;
        assert_eq!(china.arm_url, "https://management.chinacloudapi.cn");
        assert_eq!(china.arm_audience, "https://management.chinacloudapi.cn");
        assert_eq!(china.key_vault.endpoint, "https://{vault}.vault.azure.cn");
        assert_eq!(china.key_vault.audience, "https://vault.azure.cn");
        assert_eq!(
            china.storage.blob_endpoint,
            "https://{account}.blob.core.chinacloudapi.cn"
        );
        assert_eq!(china.storage.audience, "https://storage.azure.com");
        assert!(format!("{:?}", china.credential).contains("https://login.chinacloudapi.cn"));
        let own = text.replace(
            "cloud = \"china\"",
            "cloud = \"us_government\"\narm_url = \"https://arm.private.example\"",
        );
        let gov = parse(&own).unwrap().upstream;
        assert_eq!(gov.arm_url, "https://arm.private.example");
        assert_eq!(gov.arm_audience, "https://management.usgovcloudapi.net");
        assert!(error_of(&text.replace("china", "mars")).contains("unknown variant `mars`"));
    }

    #[test]
    fn forward_proxy_mode_needs_a_ca_whose_key_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = crate::generate_ca("test").unwrap();
        let (cert_file, key_file) = (dir.path().join("ca.pem"), dir.path().join("ca-key.pem"));
        std::fs::write(&cert_file, cert).unwrap();
        std::fs::write(&key_file, key).unwrap();
        let with = |rest: &str| format!("{MINIMAL}[forward_proxy]\nenabled = true\n{rest}");
        assert!(error_of(&with("")).starts_with("forward_proxy.ca_cert_file"));
        let both = format!(
            "ca_cert_file = \"{}\"\nca_key_file = \"{}\"\n",
            cert_file.display(),
            key_file.display()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
            let message = error_of(&with(&both));
            assert!(
                message.starts_with("forward_proxy.ca_key_file") && message.contains("chmod 600"),
                "{message}"
            );
            std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(parse(&with(&both)).unwrap().forward_proxy.enabled);
        // Off, nothing is needed.
        assert!(!parse(MINIMAL).unwrap().forward_proxy.enabled);
    }

    #[test]
    fn storage_accounts_and_their_keys_are_checked() {
        let with = |storage: &str| {
            MINIMAL.replace(
                "[upstream.credential]",
                &format!("[upstream.storage]\n{storage}\n[upstream.credential]"),
            )
        };
        for (storage, expected) in [
            (
                "accounts = [\"Logs\"]",
                "'Logs' is not a storage account name",
            ),
            (
                "accounts = [\"logs\"]\nshared_keys.other = { key = \"a2V5\" }",
                "'other' is not in upstream.storage.accounts",
            ),
            (
                "accounts = [\"logs\"]\nshared_keys.logs = { key = \"a2V5\", key_env = \"K\" }",
                "exactly one of key_file, key_env, key",
            ),
            (
                "accounts = [\"logs\"]\nshared_keys.logs = { key_env = \"LOGS_KEY\" }",
                "LOGS_KEY, which is not set",
            ),
            (
                "blob_endpoint = \"https://blob.example\"",
                "must begin its host with {account}.",
            ),
        ] {
            let message = error_of(&with(storage));
            assert!(message.contains(expected), "{expected}: {message}");
        }
        let from_env = Config::parse(
            &with("accounts = [\"logs\"]\nshared_keys.logs = { key_env = \"LOGS_KEY\" }"),
            "x",
            |name| (name == "LOGS_KEY").then(|| "a2V5LW1hdGVyaWFs".to_owned()),
        )
        .unwrap();
        assert_eq!(
            from_env.upstream.storage.shared_keys["logs"]
                .read()
                .unwrap(),
            "a2V5LW1hdGVyaWFs"
        );
        assert!(!format!("{from_env:?}").contains("a2V5LW1hdGVyaWFs"));
    }

    #[test]
    fn upstream_identities_are_checked_and_take_their_secrets_from_named_variables() {
        let identity = |name: &str, rest: &str| {
            format!(
                "{MINIMAL}[[upstream.identities]]\nname = \"{name}\"\n{rest}credential = {{ kind = \"client_secret\", tenant_id = \"t1\", client_id = \"app-2\" }}\n"
            )
        };
        let reader = identity("ops-reader", "serves = { groups = [\"readers\"] }\n");
        let message = error_of(&reader);
        assert!(
            message.starts_with("upstream.identities.credential")
                && message.contains("identity 'ops-reader': credential.client_secret")
                && message.contains("AIRLOCK_UPSTREAM_OPS_READER_CLIENT_SECRET"),
            "{message}"
        );
        let config = Config::parse(&reader, "x", |name| {
            (name == "AIRLOCK_UPSTREAM_OPS_READER_CLIENT_SECRET")
                .then(|| "reader-s3cret".to_owned())
        })
        .unwrap();
        assert_eq!(config.upstream.identities[0].name, "ops-reader");
        assert!(!format!("{config:?}").contains("reader-s3cret"));

        let with_secret = |name: &str, rest: &str| {
            identity(name, rest).replace(
                "client_id = \"app-2\"",
                "client_id = \"app-2\", client_secret = \"s\"",
            )
        };
        for (text, expected) in [
            (
                with_secret("default", ""),
                "'default' is the name of [upstream.credential]",
            ),
            (with_secret("a b", ""), "'a b' is not a usable name"),
            (
                format!(
                    "{}{}",
                    with_secret("twin", ""),
                    with_secret("Twin", "").replace(MINIMAL, "")
                ),
                "two identities are named 'Twin'",
            ),
            (with_secret("x", "serves = {}\n"), "is empty"),
            (
                with_secret("x", "serves = { kinds = [\"robot\"] }\n"),
                "'robot' is not one of application, managed_identity, user",
            ),
        ] {
            let message = error_of(&text);
            assert!(message.contains(expected), "{expected}: {message}");
        }
    }

    #[test]
    fn a_managed_identity_is_named_once_and_app_service_found_in_the_environment() {
        let text = MINIMAL.replace(
            "kind = \"static\"\ntoken = \"t\"\n",
            "kind = \"managed_identity\"\nclient_id = \"c\"\nobject_id = \"o\"\n",
        );
        assert!(error_of(&text).starts_with("upstream.credential.client_id"));
        let one = text.replace("object_id = \"o\"\n", "");
        let config = Config::parse(&one, "x", |name| match name {
            "IDENTITY_ENDPOINT" => Some("http://localhost:4141/msi/token".into()),
            "IDENTITY_HEADER" => Some("platform-secret".into()),
            _ => None,
        })
        .unwrap();
        let shown = format!("{config:?}");
        assert!(
            shown.contains("localhost:4141") && !shown.contains("platform-secret"),
            "{shown}"
        );
        let bad = format!("{one}imds_endpoint = \"169.254.169.254\"\n");
        assert!(error_of(&bad).starts_with("upstream.credential.imds_endpoint"));
    }

    #[test]
    fn workload_identity_takes_what_the_platform_sets() {
        let text = MINIMAL.replace(
            "kind = \"static\"\ntoken = \"t\"\n",
            "kind = \"workload_identity\"\n",
        );
        let message = error_of(&text);
        assert!(
            message.starts_with("upstream.credential.tenant_id")
                && message.contains("AZURE_TENANT_ID"),
            "{message}"
        );
        let aks = |name: &str| match name {
            "AZURE_TENANT_ID" => Some("t1".to_owned()),
            "AZURE_CLIENT_ID" => Some("app-1".to_owned()),
            "AZURE_FEDERATED_TOKEN_FILE" => {
                Some("/var/run/secrets/azure/tokens/azure-identity-token".to_owned())
            }
            _ => None,
        };
        let config = Config::parse(&text, "x", aks).unwrap();
        let shown = format!("{:?}", config.upstream.credential);
        assert!(
            shown.contains("azure-identity-token") && shown.contains("login.microsoftonline.com"),
            "{shown}"
        );
        let no_file = Config::parse(&text, "x", |name| {
            (name != "AZURE_FEDERATED_TOKEN_FILE")
                .then(|| aks(name))
                .flatten()
        })
        .unwrap_err()
        .to_string();
        assert!(
            no_file.starts_with("upstream.credential.token_file"),
            "{no_file}"
        );
    }

    #[test]
    fn token_never_shows_in_debug_output() {
        let config = parse(MINIMAL.replace("\"t\"", "\"super-secret-token\"").as_str()).unwrap();
        assert!(!format!("{config:?}").contains("super-secret-token"));
    }

    #[test]
    fn bad_values_name_key_and_fix() {
        let cases = [
            (MINIMAL.replace("[upstream.credential]", "[upstream.key_vault]\nvaults = [\"https://x.vault.azure.net\"]\n[upstream.credential]"), "upstream.key_vault.vaults"),
            (MINIMAL.replace("[upstream.credential]", "[upstream.key_vault]\nendpoint = \"https://vault.azure.net\"\n[upstream.credential]"), "upstream.key_vault.endpoint"),
            (MINIMAL.replace("[upstream.credential]", "[upstream]\nread_timeout = \"0s\"\n[upstream.credential]"), "upstream.read_timeout"),
            (MINIMAL.replace("[upstream.credential]", "[upstream]\narm_url = \"https://management.azure.com/sub\"\n[upstream.credential]"), "upstream.arm_url"),
            (MINIMAL.replace("address = \"127.0.0.1:8443\"", "address = \"127.0.0.1:8443\"\npublic_url = \"ftp://x\""), "listen.public_url"),
            (MINIMAL.replace("address = \"127.0.0.1:8443\"", "address = \"127.0.0.1:8443\"\n[listen.tls]\ncert_file = \"/nonexistent/c.pem\"\nkey_file = \"/nonexistent/k.pem\""), "listen.tls.cert_file"),
            (format!("{MINIMAL}[approval]\nmax_pending = 0\n"), "approval.max_pending"),
            (format!("{MINIMAL}[approval]\nmax_pending = 5\nmax_pending_per_principal = 6\n"), "approval.max_pending_per_principal"),
            (format!("{MINIMAL}[masking]\nmax_body_bytes = 2048\nmax_buffered_bytes = 1024\n"), "masking.max_buffered_bytes"),
        ];
        for (text, key) in cases {
            let message = error_of(&text);
            assert!(
                message.starts_with(key) && message.contains("fix: "),
                "{key}: {message}"
            );
        }
    }

    #[test]
    fn wrong_type_and_bad_duration_are_parse_errors_naming_the_key() {
        let message = error_of(&MINIMAL.replace(
            "[upstream.credential]",
            "[upstream]\nconnect_timeout = \"soon\"\n[upstream.credential]",
        ));
        assert!(
            message.contains("connect_timeout") || message.contains("line 4"),
            "{message}"
        );
        let message = error_of("[listen]\naddress = \"not an address\"\n");
        assert!(
            message.contains("address") || message.contains("line 2"),
            "{message}"
        );
    }

    #[test]
    fn missing_file_is_reported_with_its_path() {
        let message = Config::load(Path::new("/nonexistent/airlock.toml"))
            .unwrap_err()
            .to_string();
        assert!(message.contains("/nonexistent/airlock.toml"), "{message}");
    }
}
