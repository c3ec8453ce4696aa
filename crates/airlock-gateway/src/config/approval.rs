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
    /// Pending approvals one principal may have open; one more is refused
    /// with 429 `AirlockTooManyPendingApprovals` (default 10).
    #[serde(default = "default_max_pending_per_principal")]
    pub max_pending_per_principal: usize,
    /// Pending approvals in all (default 200).
    #[serde(default = "default_max_pending")]
    pub max_pending: usize,
    /// The largest request body an async approval stores while it waits
    /// (default 1 MiB; 413 `AirlockApprovalBodyTooLarge` above it).
    #[serde(default = "default_max_stored_body_bytes")]
    pub max_stored_body_bytes: u64,
    /// Where approvers are told about approvals (`[[approval.notify]]`),
    /// besides the log.
    #[serde(default)]
    pub notify: Vec<NotifyConfig>,
}

/// `[[approval.notify]]`: one receiver of approval notifications.
///
/// ```toml
/// [[approval.notify]]
/// kind = "slack"                        # webhook | slack | teams
/// url_env = "AIRLOCK_SLACK_WEBHOOK_URL" # or url = "https://…" (chat webhook URLs are secrets)
/// rules = ["storage-writes-need-approval"]  # optional: only these rules' approvals
///
/// [[approval.notify]]
/// kind = "webhook"                      # Airlock's JSON, signed (X-Airlock-Signature)
/// url = "https://ops.contoso.com/hooks/airlock"
/// secret_file = "/etc/airlock/webhook-secret"   # or secret_env
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// What the receiver understands.
    pub kind: NotifyKind,
    /// Its URL (`https://`; `http://` only with `upstream.allow_insecure_http`).
    pub url: Option<String>,
    /// Or the environment variable holding the URL.
    pub url_env: Option<String>,
    /// The generic webhook's HMAC secret, in a file.
    pub secret_file: Option<std::path::PathBuf>,
    /// Or in an environment variable.
    pub secret_env: Option<String>,
    /// Only approvals asked for by these policy rules (default: all).
    pub rules: Option<Vec<String>>,
}

/// `[[approval.notify]] kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyKind {
    /// Airlock's JSON, signed with HMAC-SHA256.
    Webhook,
    /// A Slack incoming webhook (Block Kit).
    Slack,
    /// A Microsoft Teams incoming webhook or Workflows URL (Adaptive Card).
    Teams,
}

impl NotifyConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        const KEY: &str = "approval.notify";
        if self.url.is_some() == self.url_env.is_some() {
            return Err(invalid(
                KEY,
                "needs exactly one of url and url_env",
                "give the receiver's URL, or the name of the environment variable holding it",
            ));
        }
        let secret = self.secret_file.is_some() || self.secret_env.is_some();
        match self.kind {
            NotifyKind::Webhook if self.secret_file.is_some() == self.secret_env.is_some() => {
                Err(invalid(
                    KEY,
                    "a webhook needs exactly one of secret_file and secret_env (its payloads are signed)",
                    "write a random secret (openssl rand -hex 32) to a file only the gateway reads and name it in secret_file",
                ))
            }
            NotifyKind::Slack | NotifyKind::Teams if secret => Err(invalid(
                KEY,
                "Slack and Teams webhooks take no secret (their URL is the secret)",
                "remove secret_file / secret_env, and keep the URL in url_env",
            )),
            _ => Ok(()),
        }
    }
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
            max_pending_per_principal: default_max_pending_per_principal(),
            max_pending: default_max_pending(),
            max_stored_body_bytes: default_max_stored_body_bytes(),
            notify: Vec::new(),
        }
    }
}

fn default_max_pending_per_principal() -> usize {
    airlock_approval::PendingLimits::default().per_principal
}
fn default_max_pending() -> usize {
    airlock_approval::PendingLimits::default().total
}
fn default_max_stored_body_bytes() -> u64 {
    airlock_approval::DEFAULT_MAX_STORED_BODY_BYTES
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
        for (key, value) in [
            (
                "approval.max_pending_per_principal",
                self.max_pending_per_principal,
            ),
            ("approval.max_pending", self.max_pending),
        ] {
            if value == 0 {
                return Err(invalid(
                    key,
                    "must be at least 1 (0 would refuse every approval)",
                    "give a count such as 10; use a deny rule to refuse an operation outright",
                ));
            }
        }
        if self.max_pending_per_principal > self.max_pending {
            return Err(invalid(
                "approval.max_pending_per_principal",
                "is larger than approval.max_pending",
                "keep the per-principal limit at or below the total",
            ));
        }
        self.notify.iter().try_for_each(NotifyConfig::validate)
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
    /// The disk guard: while the database's file system has this many bytes
    /// free or fewer, new approvals are refused (503
    /// `AirlockApprovalStoreFull`), keeping the rest for the audit trail;
    /// reads and decisions go on. Default 64 MiB; 0 turns it off.
    #[serde(default = "default_min_free_bytes")]
    pub min_free_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            database: default_database(),
            min_free_bytes: default_min_free_bytes(),
        }
    }
}

fn default_min_free_bytes() -> u64 {
    64 * 1024 * 1024
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
