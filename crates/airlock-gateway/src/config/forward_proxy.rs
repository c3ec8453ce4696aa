//! `[forward_proxy]`: `CONNECT` on the agents' listener, for tools that can
//! only be pointed at Azure through `HTTPS_PROXY`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, invalid};

/// `[forward_proxy]`.
///
/// ```toml
/// [forward_proxy]
/// enabled = true
/// ca_cert_file = "/etc/airlock/proxy-ca.pem"      # `airlock ca init` writes one
/// ca_key_file = "/etc/airlock/proxy-ca-key.pem"   # owner-only
/// tunnel_hosts = ["login.microsoftonline.com"]    # passed through unread (the agents' own sign-in)
/// proxy_auth = "required"                         # CONNECT without Proxy-Authorization: 407
/// ```
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardProxyConfig {
    /// Serve `CONNECT` on the agents' listener (base-URL requests still work there).
    #[serde(default)]
    pub enabled: bool,
    /// The CA certificate leaf certificates are minted from (PEM).
    pub ca_cert_file: Option<PathBuf>,
    /// Its private key (PEM; readable by the gateway's user only).
    pub ca_key_file: Option<PathBuf>,
    /// Hosts tunnelled blind, unread and unrecorded beyond host and byte
    /// counts: the agents' own token requests. Default: the cloud's Entra
    /// authority host. IMDS is never proxied.
    #[serde(default)]
    pub tunnel_hosts: Option<Vec<String>>,
    /// How long a minted leaf certificate is valid (default 24 h; re-minted
    /// when a quarter of that is left).
    #[serde(default = "default_leaf_lifetime", with = "humantime_serde")]
    pub leaf_lifetime: Duration,
    /// Where tunnel hosts are reached instead of their DNS names: for
    /// tests and air-gapped set-ups (`{ "login.microsoftonline.com" = "10.0.0.5:443" }`).
    #[serde(default)]
    pub resolve: BTreeMap<String, SocketAddr>,
    /// Whether a `CONNECT` must carry the agent's token in
    /// `Proxy-Authorization` (default `optional`: the requests inside the
    /// tunnel are identified by their own `Authorization` when it does not).
    #[serde(default)]
    pub proxy_auth: ProxyAuth,
}

/// `forward_proxy.proxy_auth`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProxyAuth {
    /// A token on the `CONNECT` identifies the tunnel; without one, each
    /// request inside brings its own.
    #[default]
    Optional,
    /// A `CONNECT` without a valid token is answered `407`, sign-in
    /// tunnels included.
    Required,
}

fn default_leaf_lifetime() -> Duration {
    Duration::from_secs(24 * 3600)
}

impl ForwardProxyConfig {
    /// The CA files must be given (and the key private) when enabled.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        for (key, file) in [
            ("forward_proxy.ca_cert_file", &self.ca_cert_file),
            ("forward_proxy.ca_key_file", &self.ca_key_file),
        ] {
            match file {
                None => {
                    return Err(invalid(
                        key,
                        "forward-proxy mode needs a CA to mint certificates from",
                        "run `airlock ca init --dir /etc/airlock` and point ca_cert_file and ca_key_file at what it writes",
                    ));
                }
                Some(file) if !file.is_file() => {
                    return Err(invalid(
                        key,
                        format!("{} does not exist or is not a file", file.display()),
                        "run `airlock ca init` or give the path of your CA's PEM file",
                    ));
                }
                Some(_) => {}
            }
        }
        #[cfg(unix)]
        if let Some(key_file) = &self.ca_key_file {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(key_file)
                .map(|m| m.permissions().mode())
                .unwrap_or(0);
            if mode & 0o077 != 0 {
                return Err(invalid(
                    "forward_proxy.ca_key_file",
                    format!(
                        "{} is readable by others (mode {:o}): whoever reads it can impersonate Azure to every client that trusts the CA",
                        key_file.display(),
                        mode & 0o777
                    ),
                    format!("chmod 600 {}", key_file.display()),
                ));
            }
        }
        if self.leaf_lifetime < Duration::from_secs(3600) {
            return Err(invalid(
                "forward_proxy.leaf_lifetime",
                "must be at least an hour",
                "give a duration such as \"24h\"",
            ));
        }
        Ok(())
    }
}
