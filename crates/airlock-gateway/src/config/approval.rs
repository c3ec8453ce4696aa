//! `[approval]` and `[admin]`: where approvals are kept, and where approvers
//! reach them.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, invalid};

/// `[approval]`. Optional: by default approvals live in the database
/// (`[store]`), async operations are polled every 5 s and due approvals are
/// expired every 10 s.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalConfig {
    /// `sqlite` (default: the `[store]` database; survives restarts) or
    /// `memory` (tests and demos).
    #[serde(default)]
    pub store: StoreKind,
    /// The `Retry-After` on the 202 answers of async approvals.
    #[serde(default = "default_poll_interval", with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How often pending approvals past their expiry are expired (and their
    /// stored requests erased).
    #[serde(default = "default_sweep_interval", with = "humantime_serde")]
    pub sweep_interval: Duration,
}

/// Where approvals are kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// A SQLite file: pending approvals survive a restart.
    #[default]
    Sqlite,
    /// In memory: lost on restart.
    Memory,
}

impl Default for ApprovalConfig {
    fn default() -> Self {
        Self {
            store: StoreKind::default(),
            poll_interval: default_poll_interval(),
            sweep_interval: default_sweep_interval(),
        }
    }
}

fn default_poll_interval() -> Duration {
    airlock_approval::DEFAULT_POLL_INTERVAL
}
fn default_sweep_interval() -> Duration {
    Duration::from_secs(10)
}

impl ApprovalConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("approval.poll_interval", self.poll_interval),
            ("approval.sweep_interval", self.sweep_interval),
        ] {
            if value < Duration::from_secs(1) {
                return Err(invalid(
                    key,
                    "must be at least one second",
                    "give a duration such as \"5s\"",
                ));
            }
        }
        Ok(())
    }
}

/// `[store]`: the database approvals and the audit trail live in.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// The SQLite file (created, with its directory's permissions, on first
    /// start; WAL mode, so `airlock.db-wal` and `-shm` sit beside it).
    #[serde(default = "default_database")]
    pub database: std::path::PathBuf,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            database: default_database(),
        }
    }
}

fn default_database() -> std::path::PathBuf {
    "airlock.db".into()
}

/// `[admin]`: the approvers' listener (the approval API), separate from the
/// agents' listener so it can be bound to an internal address. Optional: by
/// default it listens on `127.0.0.1:8444`, with the `[listen.tls]`
/// certificate when there is one.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Where approvers connect.
    #[serde(default = "default_admin_address")]
    pub address: SocketAddr,
    /// The URL approvers use, when it differs from `https://{address}`
    /// (it goes into pending answers and notifications).
    pub public_url: Option<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            address: default_admin_address(),
            public_url: None,
        }
    }
}

fn default_admin_address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8444))
}
