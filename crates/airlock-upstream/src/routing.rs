//! Which Azure endpoint a request is for, decided from configuration alone.
//!
//! Clients address the gateway in base-URL mode:
//!
//! | client sends | goes to |
//! |---|---|
//! | `https://<gateway>/subscriptions/…` | the ARM endpoint (`upstream.arm_url`) |
//! | `https://<vault>.<gateway>/secrets/…` | that vault (`upstream.key_vault.endpoint`), if listed in `upstream.key_vault.vaults` |
//! | `https://<account>.blob.<gateway>/<container>/…` | that account's Blob service (`upstream.storage.blob_endpoint`), if listed in `upstream.storage.accounts` |
//!
//! The upstream host never comes from the client: a request for any other
//! host (an absolute-form proxy request, an unknown vault, a foreign `Host`)
//! is refused, so the gateway is not an open proxy. The upstream hosts
//! themselves (`management.azure.com`, `{vault}.vault.azure.net`) are also
//! recognised, which is what a forward-proxy mode that keeps the real vault
//! host needs.
//!
//! Azure answers with absolute URLs on its own hosts (`nextLink`,
//! `Location`, `Azure-AsyncOperation`); [`Routes::rewrite_url`] maps them
//! back onto the gateway so that the client's next call comes through it too.

use std::collections::HashSet;

use airlock_azure::AzureEndpoint;
use airlock_core::AirlockError;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Uri, header::HOST};

use crate::{InvalidConfig, UpstreamConfig};

/// Why a URL is not a usable upstream endpoint.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EndpointError(String);

/// An upstream base URL: scheme and authority, no path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Endpoint {
    /// Parses `scheme://host[:port]` (a trailing `/` is allowed).
    ///
    /// # Errors
    ///
    /// Not an http(s) URL with a host, or one with a path or query.
    pub fn parse(text: &str) -> Result<Self, EndpointError> {
        let uri: Uri = text
            .parse()
            .map_err(|_| EndpointError(format!("'{text}' is not a URL")))?;
        let (Some(scheme @ ("http" | "https")), Some(authority)) =
            (uri.scheme_str(), uri.authority())
        else {
            return Err(EndpointError(format!(
                "'{text}' must be an http(s) URL with a host"
            )));
        };
        if !(uri.path() == "/" || uri.path().is_empty()) || uri.query().is_some() {
            return Err(EndpointError(format!(
                "'{text}' must not have a path or query"
            )));
        }
        Ok(Self {
            scheme: scheme.to_owned(),
            host: authority.host().to_ascii_lowercase(),
            port: authority.port_u16(),
        })
    }
    /// `http` or `https`.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }
    /// Lower-case host.
    pub fn host(&self) -> &str {
        &self.host
    }
    /// Scheme and authority, parsed: what an upstream request's URI is
    /// built from, with the client's path and query as they came.
    fn target(&self) -> Result<Target, http::Error> {
        let authority = match self.port {
            Some(port) => Authority::try_from(format!("{}:{port}", self.host))?,
            None => Authority::try_from(self.host.as_str())?,
        };
        Ok(Target {
            scheme: Scheme::try_from(self.scheme.as_str())?,
            authority,
        })
    }
    fn base(&self) -> String {
        match self.port {
            Some(port) => format!("{}://{}:{port}", self.scheme, self.host),
            None => format!("{}://{}", self.scheme, self.host),
        }
    }
}

/// A URL template whose host begins with a name: `scheme://{vault}.suffix[:port]`
/// (Key Vault), `scheme://{account}.suffix` (Storage).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostTemplate {
    scheme: String,
    /// Host suffix after the name's label, e.g. `vault.azure.net`.
    suffix: String,
    port: Option<u16>,
}

impl HostTemplate {
    /// Parses a template such as `https://{vault}.vault.azure.net`, whose
    /// host begins with `placeholder` (`{vault}`, `{account}`).
    ///
    /// # Errors
    ///
    /// Not an http(s) URL whose host begins with `{placeholder}.`.
    pub fn parse(text: &str, placeholder: &str) -> Result<Self, EndpointError> {
        let rest = text.strip_suffix('/').unwrap_or(text);
        let (scheme, rest) = rest
            .split_once("://")
            .ok_or_else(|| EndpointError(format!("'{text}' is not a URL")))?;
        if !matches!(scheme, "http" | "https") {
            return Err(EndpointError(format!("'{text}' must start with https://")));
        }
        let host_port = rest
            .strip_prefix(placeholder)
            .and_then(|r| r.strip_prefix('.'))
            .ok_or_else(|| {
                EndpointError(format!("'{text}' must begin its host with {placeholder}."))
            })?;
        let endpoint = Endpoint::parse(&format!("{scheme}://{host_port}"))?;
        Ok(Self {
            scheme: endpoint.scheme,
            suffix: endpoint.host,
            port: endpoint.port,
        })
    }
    /// `http` or `https`.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }
    fn endpoint_for(&self, name: &str) -> Endpoint {
        Endpoint {
            scheme: self.scheme.clone(),
            host: format!("{name}.{}", self.suffix),
            port: self.port,
        }
    }
    fn base_for(&self, name: &str) -> String {
        self.endpoint_for(name).base()
    }
    /// The name label of `host`, if `host` is `{label}.{suffix}`.
    fn name_of<'h>(&self, host: &'h str) -> Option<&'h str> {
        host.strip_suffix(self.suffix.as_str())?.strip_suffix('.')
    }
    /// Whether `scheme` and `port` are this template's.
    fn same_origin(&self, scheme: &str, port: Option<u16>) -> bool {
        self.scheme == scheme && self.port == port
    }
}

fn invalid_cloud(error: &EndpointError) -> InvalidConfig {
    InvalidConfig {
        key: "upstream.cloud",
        problem: error.to_string(),
        fix: "report this: a built-in cloud preset is malformed".into(),
    }
}

/// Whether `name` is a valid storage account name: 3-24 lower-case letters and digits.
pub fn valid_account_name(name: &str) -> bool {
    (3..=24).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// Whether `name` is a valid Key Vault name: 3-24 characters, letters, digits
/// and hyphens, starting with a letter, not ending with a hyphen, no `--`.
pub fn valid_vault_name(name: &str) -> bool {
    (3..=24).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && !name.ends_with('-')
        && !name.contains("--")
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// The names the gateway itself answers to: its public URL, extra host
/// names, and the address it listens on (a loopback listener also answers to
/// `localhost`, `127.0.0.1` and `[::1]`; a specific address to that address).
#[derive(Clone, Debug)]
pub struct GatewayHosts {
    public: Endpoint,
    extra_hosts: Vec<String>,
    listen_ip: std::net::IpAddr,
}

impl GatewayHosts {
    /// The gateway at `public` (`https://airlock.contoso.com`), listening on
    /// every address.
    pub fn new(public: Endpoint) -> Self {
        Self {
            public,
            extra_hosts: Vec::new(),
            listen_ip: std::net::Ipv4Addr::UNSPECIFIED.into(),
        }
    }

    /// More names clients may use for ARM (`listen.extra_hosts`).
    #[must_use]
    pub fn extra_hosts(mut self, hosts: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.extra_hosts.extend(hosts.into_iter().map(Into::into));
        self
    }

    /// The address the listener is bound to.
    #[must_use]
    pub fn listen_ip(mut self, ip: std::net::IpAddr) -> Self {
        self.listen_ip = ip;
        self
    }
}

/// Where an upstream request goes: its URI's scheme and authority.
#[derive(Clone, Debug)]
struct Target {
    scheme: Scheme,
    authority: Authority,
}

/// The gateway's routing table, built once from configuration.
#[derive(Clone, Debug)]
pub struct Routes {
    arm: Endpoint,
    /// `arm`, parsed once: most requests go there.
    arm_target: Target,
    arm_audience: String,
    key_vault: HostTemplate,
    key_vault_audience: String,
    vaults: HashSet<String>,
    blob: HostTemplate,
    storage_audience: String,
    accounts: HashSet<String>,
    /// The cloud's own names for these services (`management.azure.com`,
    /// `{vault}.vault.azure.net`, `{account}.blob.core.windows.net`), which
    /// forward-proxy clients address, whatever the upstreams are.
    azure_arm: String,
    azure_vault: HostTemplate,
    azure_blob: HostTemplate,
    public: Endpoint,
    arm_hosts: HashSet<String>,
    /// Each upstream base URL with what it stands for, and one automaton
    /// finding all of them in a body in one pass.
    base_rewrites: BaseRewrites,
}

/// Which names a client addressed: the gateway's (base-URL mode) or Azure's
/// own (forward-proxy mode). Absolute URLs in Azure's answers are given
/// back in the same names, so a client following one comes back the way it
/// came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Face {
    /// `https://airlock.contoso.com`, `https://{vault}.airlock.contoso.com`.
    Gateway,
    /// `https://management.azure.com`, `https://{vault}.vault.azure.net`.
    Azure,
}

/// The upstream base URLs to rewrite in answer bodies.
#[derive(Clone, Debug)]
struct BaseRewrites {
    /// Each upstream base, the gateway's base for it and Azure's own.
    pairs: Vec<(String, String, String)>,
    /// Finds every upstream base at once (leftmost-longest).
    finder: aho_corasick::AhoCorasick,
}

impl BaseRewrites {
    /// Fails only for a pattern set too large for the automaton: the table
    /// is then refused rather than leave internal URLs unrewritten.
    fn new(pairs: Vec<(String, String, String)>) -> Result<Self, InvalidConfig> {
        let finder = aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .build(pairs.iter().map(|(upstream, _, _)| upstream))
            .map_err(|e| InvalidConfig {
                key: "upstream.key_vault.vaults",
                problem: format!(
                    "too many vaults and storage accounts to rewrite answers for: {e}"
                ),
                fix: "list fewer vaults and accounts per gateway".into(),
            })?;
        Ok(Self { pairs, finder })
    }
}

impl Routes {
    /// Builds the table from validated `[upstream]` configuration and the
    /// names the gateway itself answers to.
    ///
    /// # Errors
    ///
    /// An unusable upstream URL (see [`UpstreamConfig::validate`]).
    pub fn new(config: &UpstreamConfig, gateway: &GatewayHosts) -> Result<Self, InvalidConfig> {
        let public = gateway.public.clone();
        let arm = config.arm_endpoint()?;
        let mut arm_hosts: HashSet<String> = gateway
            .extra_hosts
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        arm_hosts.insert(public.host.clone());
        arm_hosts.insert(arm.host.clone());
        let ip = gateway.listen_ip;
        if ip.is_loopback() {
            arm_hosts.extend([
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
                "[::1]".to_owned(),
            ]);
        } else if !ip.is_unspecified() {
            arm_hosts.insert(match ip {
                std::net::IpAddr::V4(v4) => v4.to_string(),
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            });
        }
        let arm_target = arm.target().map_err(|e| InvalidConfig {
            key: "upstream.arm_url",
            problem: format!("'{}' is not a usable URL: {e}", arm.base()),
            fix: "give a URL such as https://management.azure.com".into(),
        })?;
        Self {
            arm,
            arm_target,
            arm_audience: config.arm_audience.clone(),
            key_vault: config.key_vault_endpoint()?,
            key_vault_audience: config.key_vault.audience.clone(),
            vaults: config
                .key_vault
                .vaults
                .iter()
                .map(|v| v.to_ascii_lowercase())
                .collect(),
            blob: config.blob_endpoint()?,
            azure_arm: Endpoint::parse(config.cloud.endpoints().arm)
                .map(|e| e.host)
                .unwrap_or_default(),
            azure_vault: HostTemplate::parse(config.cloud.endpoints().key_vault, "{vault}")
                .map_err(|e| invalid_cloud(&e))?,
            azure_blob: HostTemplate::parse(config.cloud.endpoints().blob, "{account}")
                .map_err(|e| invalid_cloud(&e))?,
            storage_audience: config.storage.audience.clone(),
            accounts: config.storage.accounts.iter().cloned().collect(),
            public,
            arm_hosts,
            base_rewrites: BaseRewrites::new(Vec::new())?,
        }
        .with_base_rewrites()
    }

    fn with_base_rewrites(mut self) -> Result<Self, InvalidConfig> {
        let mut pairs = vec![(
            self.arm.base(),
            self.public.base(),
            format!("https://{}", self.azure_arm),
        )];
        let mut vaults: Vec<&String> = self.vaults.iter().collect();
        vaults.sort();
        for vault in vaults {
            pairs.push((
                self.key_vault.base_for(vault),
                self.gateway_vault(vault).base(),
                self.azure_vault.base_for(vault),
            ));
        }
        let mut accounts: Vec<&String> = self.accounts.iter().collect();
        accounts.sort();
        for account in accounts {
            pairs.push((
                self.blob.base_for(account),
                self.gateway_account(account).base(),
                self.azure_blob.base_for(account),
            ));
        }
        self.base_rewrites = BaseRewrites::new(pairs)?;
        Ok(self)
    }

    /// Which names a request addressed (see [`Face`]): Azure's own when its
    /// host is the cloud's name for ARM, a vault or a storage account.
    ///
    /// ```
    /// use airlock_upstream::{Endpoint, Face, GatewayHosts, Routes, UpstreamConfig};
    /// use http::{HeaderMap, Uri};
    ///
    /// let config: UpstreamConfig = toml::from_str(r#"credential = { kind = "static", token = "t" }"#).unwrap();
    /// let routes = Routes::new(&config, &GatewayHosts::new(Endpoint::parse("https://gw.example").unwrap())).unwrap();
    /// let face = |uri: &str| routes.face(&uri.parse::<Uri>().unwrap(), &HeaderMap::new());
    /// assert_eq!(face("https://management.azure.com/subscriptions"), Face::Azure);
    /// assert_eq!(face("https://kv1.vault.azure.net/secrets"), Face::Azure);
    /// assert_eq!(face("https://gw.example/subscriptions"), Face::Gateway);
    /// ```
    pub fn face(&self, uri: &Uri, headers: &HeaderMap) -> Face {
        match request_host(uri, headers) {
            Ok(host)
                if host == self.azure_arm
                    || self.azure_vault.name_of(&host).is_some()
                    || self.azure_blob.name_of(&host).is_some() =>
            {
                Face::Azure
            }
            _ => Face::Gateway,
        }
    }

    /// Whether `endpoint` is one this table forwards to (ARM, a listed
    /// vault, a listed storage account).
    pub fn allows(&self, endpoint: &AzureEndpoint) -> bool {
        match endpoint {
            AzureEndpoint::Arm => true,
            AzureEndpoint::KeyVault { vault } => self.vaults.contains(vault.as_str()),
            AzureEndpoint::Blob { account } => self.accounts.contains(account.as_str()),
        }
    }

    /// The gateway's own host for an account's Blob service: `{account}.blob.{public host}`.
    fn gateway_account(&self, account: &str) -> Endpoint {
        Endpoint {
            host: format!("{account}.blob.{}", self.public.host),
            ..self.public.clone()
        }
    }

    /// The gateway's own host for a vault: `{vault}.{public host}`.
    fn gateway_vault(&self, vault: &str) -> Endpoint {
        Endpoint {
            host: format!("{vault}.{}", self.public.host),
            ..self.public.clone()
        }
    }

    /// Decides the upstream for a request from its authority (HTTP/2, absolute form) or `Host`.
    ///
    /// # Errors
    ///
    /// [`AirlockError::HostNotAllowed`] for any host not in the table; a
    /// 400 for a missing, repeated or malformed host.
    pub fn resolve(&self, uri: &Uri, headers: &HeaderMap) -> Result<AzureEndpoint, AirlockError> {
        let host = request_host(uri, headers)?;
        if self.arm_hosts.contains(host.as_str()) {
            return Ok(AzureEndpoint::Arm);
        }
        if let Some(endpoint) = self.azure_host(&host) {
            return Ok(endpoint);
        }
        let on_gateway = host
            .strip_suffix(self.public.host.as_str())
            .and_then(|label| label.strip_suffix('.'));
        let account = on_gateway
            .and_then(|label| label.strip_suffix(".blob"))
            .or_else(|| self.blob.name_of(&host));
        if let Some(account) = account {
            return if self.accounts.contains(account) {
                Ok(AzureEndpoint::Blob {
                    account: account.to_owned(),
                })
            } else {
                Err(AirlockError::HostNotAllowed { host })
            };
        }
        let vault = on_gateway.or_else(|| self.key_vault.name_of(&host));
        match vault {
            Some(vault) if self.vaults.contains(vault) => Ok(AzureEndpoint::KeyVault {
                vault: vault.to_owned(),
            }),
            _ => Err(AirlockError::HostNotAllowed { host }),
        }
    }

    /// The endpoint of an Azure host name (lower case, no port): an upstream
    /// host or the cloud's own name for ARM, a listed vault or a listed
    /// storage account; never the gateway's own names, never an IP literal.
    /// This is what forward-proxy mode intercepts.
    ///
    /// ```
    /// use airlock_azure::AzureEndpoint;
    /// use airlock_upstream::{Endpoint, GatewayHosts, Routes, UpstreamConfig};
    ///
    /// let config: UpstreamConfig = toml::from_str(r#"
    ///     arm_url = "http://127.0.0.1:9000"
    ///     allow_insecure_http = true
    ///     key_vault.vaults = ["kv1"]
    ///     credential = { kind = "static", token = "t" }
    /// "#).unwrap();
    /// let routes = Routes::new(&config, &GatewayHosts::new(Endpoint::parse("https://gw.example").unwrap())).unwrap();
    /// assert_eq!(routes.azure_host("management.azure.com"), Some(AzureEndpoint::Arm));
    /// assert_eq!(routes.azure_host("kv1.vault.azure.net"), Some(AzureEndpoint::KeyVault { vault: "kv1".into() }));
    /// assert_eq!(routes.azure_host("kv2.vault.azure.net"), None);
    /// assert_eq!(routes.azure_host("127.0.0.1"), None);
    /// assert_eq!(routes.azure_host("gw.example"), None);
    /// ```
    pub fn azure_host(&self, host: &str) -> Option<AzureEndpoint> {
        if host.starts_with('[') || host.parse::<std::net::IpAddr>().is_ok() {
            return None;
        }
        if host == self.azure_arm || host == self.arm.host {
            return Some(AzureEndpoint::Arm);
        }
        let account = self
            .blob
            .name_of(host)
            .or_else(|| self.azure_blob.name_of(host));
        if let Some(account) = account {
            return self
                .accounts
                .contains(account)
                .then(|| AzureEndpoint::Blob {
                    account: account.to_owned(),
                });
        }
        self.key_vault
            .name_of(host)
            .or_else(|| self.azure_vault.name_of(host))
            .filter(|vault| self.vaults.contains(*vault))
            .map(|vault| AzureEndpoint::KeyVault {
                vault: vault.to_owned(),
            })
    }

    /// The absolute upstream URI for a target and the client's path and query.
    ///
    /// # Errors
    ///
    /// A 400 when the path and query do not make a valid URI.
    pub fn upstream_uri(
        &self,
        endpoint: &AzureEndpoint,
        path_and_query: &PathAndQuery,
    ) -> Result<Uri, AirlockError> {
        let invalid = || AirlockError::BadRequest {
            code: "InvalidRequestUri",
            message: "the request path is not a valid URI".into(),
        };
        // Built from parts: the client's path and query as hyper parsed
        // them, ARM's scheme and authority as parsed once.
        // Origin form only (`OPTIONS *` and the like go nowhere).
        if !path_and_query.path().starts_with('/') {
            return Err(invalid());
        }
        let target = match endpoint {
            AzureEndpoint::Arm => self.arm_target.clone(),
            AzureEndpoint::KeyVault { vault } => self
                .key_vault
                .endpoint_for(vault)
                .target()
                .map_err(|_| invalid())?,
            AzureEndpoint::Blob { account } => self
                .blob
                .endpoint_for(account)
                .target()
                .map_err(|_| invalid())?,
        };
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(target.scheme);
        parts.authority = Some(target.authority);
        parts.path_and_query = Some(path_and_query.clone());
        Uri::from_parts(parts).map_err(|_| invalid())
    }

    /// The audience of the gateway's token for a target.
    pub fn audience(&self, endpoint: &AzureEndpoint) -> &str {
        match endpoint {
            AzureEndpoint::Arm => &self.arm_audience,
            AzureEndpoint::KeyVault { .. } => &self.key_vault_audience,
            AzureEndpoint::Blob { .. } => &self.storage_audience,
        }
    }

    /// Every upstream base URL (ARM, each allowed vault and storage account)
    /// in `body` replaced by what it stands for in `face`'s names, where
    /// the URL's authority ends there (`/`, `?`, `#`, a quote or the end),
    /// never inside a longer host; `None` when there is none. One pass,
    /// however many vaults and accounts are listed (the automaton is built
    /// once, with the table).
    pub(crate) fn rewrite_bases(&self, body: &[u8], face: Face) -> Option<Vec<u8>> {
        let rewrites = &self.base_rewrites;
        let mut out: Option<Vec<u8>> = None;
        let mut copied = 0;
        for found in rewrites.finder.find_iter(body) {
            let boundary = body
                .get(found.end())
                .is_none_or(|b| matches!(b, b'/' | b'?' | b'#' | b'"' | b'\\'));
            if !boundary {
                continue;
            }
            let (_, gateway, azure) = &rewrites.pairs[found.pattern().as_usize()];
            let target = match face {
                Face::Gateway => gateway,
                Face::Azure => azure,
            };
            let out = out.get_or_insert_with(|| Vec::with_capacity(body.len()));
            out.extend_from_slice(&body[copied..found.start()]);
            out.extend_from_slice(target.as_bytes());
            copied = found.end();
        }
        let mut out = out?;
        out.extend_from_slice(&body[copied..]);
        Some(out)
    }

    /// The gateway URL for an absolute Azure URL on an allowed upstream, so the
    /// client's next call comes back through the gateway. Other URLs: `None`.
    ///
    /// ```
    /// use airlock_upstream::{Endpoint, GatewayHosts, Routes, UpstreamConfig};
    ///
    /// let config: UpstreamConfig = toml::from_str(r#"
    ///     key_vault.vaults = ["kv1"]
    ///     credential = { kind = "static", token = "t" }
    /// "#).unwrap();
    /// let gateway = GatewayHosts::new(Endpoint::parse("https://airlock.example:8443").unwrap());
    /// let routes = Routes::new(&config, &gateway).unwrap();
    /// assert_eq!(
    ///     routes.rewrite_url("https://management.azure.com/subscriptions/s/resourcegroups?api-version=1&$skiptoken=2").as_deref(),
    ///     Some("https://airlock.example:8443/subscriptions/s/resourcegroups?api-version=1&$skiptoken=2"),
    /// );
    /// assert_eq!(
    ///     routes.rewrite_url("https://KV1.vault.azure.net/secrets?api-version=7.4&$skiptoken=x").as_deref(),
    ///     Some("https://kv1.airlock.example:8443/secrets?api-version=7.4&$skiptoken=x"),
    /// );
    /// assert_eq!(routes.rewrite_url("https://other.vault.azure.net/secrets"), None);
    /// assert_eq!(routes.rewrite_url("https://management.azure.com.evil.example/x"), None);
    /// ```
    pub fn rewrite_url(&self, url: &str) -> Option<String> {
        self.rewrite_url_for(url, Face::Gateway)
    }

    /// [`rewrite_url`](Self::rewrite_url) in `face`'s names: with
    /// [`Face::Azure`], an upstream URL becomes Azure's own
    /// (`https://management.azure.com/…`), as a forward-proxy client
    /// addressed it.
    pub fn rewrite_url_for(&self, url: &str, face: Face) -> Option<String> {
        let (scheme, rest) = url.split_once("://")?;
        let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(split);
        let authority: Authority = authority.parse().ok()?;
        if authority.as_str().contains('@') {
            return None;
        }
        let host = authority.host().to_ascii_lowercase();
        let port = authority.port_u16();
        let scheme = scheme.to_ascii_lowercase();
        let base = if scheme == self.arm.scheme && host == self.arm.host && port == self.arm.port {
            match face {
                Face::Gateway => self.public.base(),
                Face::Azure => format!("https://{}", self.azure_arm),
            }
        } else if self.blob.same_origin(&scheme, port)
            && let Some(account) = self.blob.name_of(&host)
        {
            if !self.accounts.contains(account) {
                return None;
            }
            match face {
                Face::Gateway => self.gateway_account(account).base(),
                Face::Azure => self.azure_blob.base_for(account),
            }
        } else if self.key_vault.same_origin(&scheme, port) {
            let vault = self
                .key_vault
                .name_of(&host)
                .filter(|v| self.vaults.contains(*v))?;
            match face {
                Face::Gateway => self.gateway_vault(vault).base(),
                Face::Azure => self.azure_vault.base_for(vault),
            }
        } else {
            return None;
        };
        Some(format!("{base}{tail}"))
    }
}

/// The lower-case host a request is addressed to, without port.
///
/// One authority per request: when the target carries one (absolute form,
/// HTTP/2 `:authority`) and a `Host` header is sent too, both must name the
/// same host and port, else 400. Otherwise what is routed and what is
/// recorded could differ.
fn request_host(uri: &Uri, headers: &HeaderMap) -> Result<String, AirlockError> {
    let bad = |message: String| AirlockError::BadRequest {
        code: "InvalidHost",
        message,
    };
    let mut hosts = headers.get_all(HOST).iter();
    let host_header = match (hosts.next(), hosts.next()) {
        (None, _) => None,
        (Some(host), None) => Some(
            host.to_str()
                .map_err(|_| bad("the Host header is not valid text".into()))?
                .parse::<Authority>()
                .map_err(|_| bad("the Host header is not a host name".into()))?,
        ),
        (Some(_), Some(_)) => {
            return Err(bad("the request must carry exactly one Host header".into()));
        }
    };
    let authority = match (uri.authority(), host_header) {
        (Some(target), Some(host)) => {
            if !same_authority(target, &host, uri.scheme_str()) {
                return Err(bad(format!(
                    "the request target names {target} but its Host header names {host}; send one host"
                )));
            }
            target.clone()
        }
        (Some(target), None) => target.clone(),
        (None, Some(host)) => host,
        (None, None) => {
            return Err(bad("the request must carry exactly one Host header".into()));
        }
    };
    if authority.as_str().contains('@') {
        return Err(bad(
            "user information is not allowed in the request authority".into(),
        ));
    }
    Ok(authority.host().trim_end_matches('.').to_ascii_lowercase())
}

/// Whether two authorities name the same host (any case, a trailing dot
/// ignored) and port (an absent port being the scheme's default).
fn same_authority(a: &Authority, b: &Authority, scheme: Option<&str>) -> bool {
    let default = match scheme {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    };
    let host = |x: &Authority| x.host().trim_end_matches('.').to_ascii_lowercase();
    host(a) == host(b) && a.port_u16().or(default) == b.port_u16().or(default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn routes() -> Routes {
        let config: UpstreamConfig = toml::from_str(
            r#"
            key_vault.vaults = ["demo-vault"]
            storage.accounts = ["demostore"]
            credential = { kind = "static", token = "t" }
            "#,
        )
        .unwrap();
        let gateway = GatewayHosts::new(Endpoint::parse("https://localhost:8443").unwrap())
            .listen_ip(std::net::Ipv4Addr::LOCALHOST.into());
        Routes::new(&config, &gateway).unwrap()
    }

    fn target_for_host(host: &str) -> Result<AzureEndpoint, AirlockError> {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_str(host).unwrap());
        routes().resolve(&Uri::from_static("/subscriptions"), &headers)
    }

    #[test]
    fn hosts_route_to_arm_or_listed_vaults_only() {
        assert_eq!(
            target_for_host("localhost:8443").unwrap(),
            AzureEndpoint::Arm
        );
        assert_eq!(
            target_for_host("127.0.0.1:8443").unwrap(),
            AzureEndpoint::Arm
        );
        assert_eq!(target_for_host("LOCALHOST.").unwrap(), AzureEndpoint::Arm);
        assert_eq!(
            target_for_host("Demo-Vault.localhost:8443").unwrap(),
            AzureEndpoint::KeyVault {
                vault: "demo-vault".into()
            }
        );
        assert_eq!(
            target_for_host("demo-vault.vault.azure.net").unwrap(),
            AzureEndpoint::KeyVault {
                vault: "demo-vault".into()
            }
        );
        assert_eq!(
            target_for_host("management.azure.com").unwrap(),
            AzureEndpoint::Arm
        );
        for refused in [
            "other-vault.localhost",
            "a.demo-vault.localhost",
            "evil.example",
            "other.vault.azure.net",
            "localhost.evil.example",
        ] {
            assert!(
                matches!(
                    target_for_host(refused),
                    Err(AirlockError::HostNotAllowed { .. })
                ),
                "{refused}"
            );
        }
    }

    #[test]
    fn blob_hosts_route_to_listed_accounts_only() {
        let demostore = AzureEndpoint::Blob {
            account: "demostore".into(),
        };
        assert_eq!(
            target_for_host("demostore.blob.localhost:8443").unwrap(),
            demostore
        );
        assert_eq!(
            target_for_host("DemoStore.blob.core.windows.net").unwrap(),
            demostore
        );
        for refused in [
            "otherstore.blob.localhost",
            "otherstore.blob.core.windows.net",
            "a.demostore.blob.localhost",
            "demostore.blob.evil.example",
        ] {
            assert!(
                matches!(
                    target_for_host(refused),
                    Err(AirlockError::HostNotAllowed { .. })
                ),
                "{refused}"
            );
        }
        let routes = routes();
        assert_eq!(routes.audience(&demostore), "https://storage.azure.com");
        assert_eq!(
            routes
                .upstream_uri(&demostore, &PathAndQuery::from_static("/logs/a.txt"))
                .unwrap(),
            "https://demostore.blob.core.windows.net/logs/a.txt"
        );
        assert_eq!(
            routes
                .rewrite_url("https://demostore.blob.core.windows.net/logs/a.txt")
                .as_deref(),
            Some("https://demostore.blob.localhost:8443/logs/a.txt")
        );
        assert_eq!(
            routes.rewrite_url("https://otherstore.blob.core.windows.net/logs"),
            None
        );
    }

    #[test]
    fn an_absolute_form_authority_and_a_different_host_header_are_refused() {
        // The review's finding: routed by one, recorded by the other.
        let mut headers = HeaderMap::new();
        headers.insert(
            HOST,
            HeaderValue::from_static("audit-says-this-is-arm.example"),
        );
        let uri = Uri::from_static("http://demo-vault.localhost:8443/secrets/x");
        let error = routes().resolve(&uri, &headers).unwrap_err();
        assert!(
            matches!(&error, AirlockError::BadRequest { code: "InvalidHost", message } if message.contains("send one host")),
            "{error:?}"
        );
        // The same host in both (any case, default port spelled or not) is one authority.
        headers.insert(HOST, HeaderValue::from_static("Demo-Vault.localhost:8443"));
        assert!(routes().resolve(&uri, &headers).is_ok());
        let uri = Uri::from_static("http://localhost/subscriptions");
        headers.insert(HOST, HeaderValue::from_static("localhost:80"));
        assert_eq!(
            routes().resolve(&uri, &headers).unwrap(),
            AzureEndpoint::Arm
        );
        // An absolute-form target alone still decides.
        let uri = Uri::from_static("http://evil.example/subscriptions");
        assert!(
            matches!(routes().resolve(&uri, &HeaderMap::new()), Err(AirlockError::HostNotAllowed { host }) if host == "evil.example")
        );
    }

    #[test]
    fn missing_duplicate_or_userinfo_hosts_are_bad_requests() {
        let routes = routes();
        let uri = Uri::from_static("/x");
        assert!(matches!(
            routes.resolve(&uri, &HeaderMap::new()),
            Err(AirlockError::BadRequest { .. })
        ));
        let mut two = HeaderMap::new();
        two.append(HOST, HeaderValue::from_static("localhost"));
        two.append(HOST, HeaderValue::from_static("evil.example"));
        assert!(matches!(
            routes.resolve(&uri, &two),
            Err(AirlockError::BadRequest { .. })
        ));
        let userinfo = Uri::from_static("http://localhost@evil.example/x");
        assert!(routes.resolve(&userinfo, &HeaderMap::new()).is_err());
    }

    #[test]
    fn only_listed_vaults_are_allowed_endpoints() {
        let routes = routes();
        assert!(routes.allows(&AzureEndpoint::Arm));
        assert!(routes.allows(&AzureEndpoint::KeyVault {
            vault: "demo-vault".into()
        }));
        assert!(!routes.allows(&AzureEndpoint::KeyVault {
            vault: "other".into()
        }));
    }

    #[test]
    fn upstream_uris_come_from_configuration() {
        let routes = routes();
        assert_eq!(
            routes
                .upstream_uri(
                    &AzureEndpoint::Arm,
                    &PathAndQuery::from_static("/subscriptions?api-version=1")
                )
                .unwrap(),
            "https://management.azure.com/subscriptions?api-version=1"
        );
        assert!(
            routes
                .upstream_uri(&AzureEndpoint::Arm, &PathAndQuery::from_static("*"))
                .is_err()
        );
        assert_eq!(
            routes
                .upstream_uri(
                    &AzureEndpoint::KeyVault {
                        vault: "demo-vault".into()
                    },
                    &PathAndQuery::from_static("/secrets/x?api-version=7.4")
                )
                .unwrap(),
            "https://demo-vault.vault.azure.net/secrets/x?api-version=7.4"
        );
        assert_eq!(
            routes.audience(&AzureEndpoint::KeyVault {
                vault: "demo-vault".into()
            }),
            "https://vault.azure.net"
        );
    }

    #[test]
    fn only_allowed_upstream_urls_are_rewritten() {
        let routes = routes();
        assert_eq!(
            routes
                .rewrite_url("https://management.azure.com")
                .as_deref(),
            Some("https://localhost:8443")
        );
        assert_eq!(
            routes.rewrite_url("http://management.azure.com/x"),
            None,
            "scheme must match"
        );
        assert_eq!(
            routes.rewrite_url("https://management.azure.com:444/x"),
            None,
            "port must match"
        );
        assert_eq!(
            routes.rewrite_url("https://user@management.azure.com/x"),
            None
        );
        assert_eq!(routes.rewrite_url("not a url"), None);
    }

    #[test]
    fn vault_names_follow_azure_rules() {
        for ok in ["kv1", "demo-vault", "A23456789012345678901234"] {
            assert!(valid_vault_name(ok), "{ok}");
        }
        for bad in [
            "kv",
            "1kv",
            "kv-",
            "k--v",
            "kv.x",
            "a234567890123456789012345",
            "",
        ] {
            assert!(!valid_vault_name(bad), "{bad}");
        }
    }
}
