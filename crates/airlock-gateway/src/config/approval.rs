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
    /// `database` (default: the `[store]` database; survives restarts) or
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
    /// The largest answer an `[[answer]]` rule holds for approval (sealed,
    /// in the store), and the memory all answers read to be held share; a
    /// larger one it would hold is refused (403
    /// `AirlockAnswerTooLargeToHold`). Default 256 MiB.
    #[serde(default = "default_max_held_answer_bytes")]
    pub max_held_answer_bytes: u64,
    /// Where approvers are told about approvals (`[[approval.notify]]`),
    /// besides the log.
    #[serde(default)]
    pub notify: Vec<NotifyConfig>,
    /// Whether the approval page shows what a request will change (default
    /// true): for a `PUT`/`PATCH` of an ARM resource the gateway reads the
    /// resource with its own credential and shows the difference; for a
    /// deployment it asks ARM's what-if. Both need the gateway's identity to
    /// have read access (and `Microsoft.Resources/deployments/whatIf/action`).
    #[serde(default = "default_true")]
    pub show_changes: bool,
}

fn default_true() -> bool {
    true
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
    /// The `[store]` database (the SQLite file, or PostgreSQL shared by
    /// replicas): pending approvals survive a restart. Also read as `sqlite`,
    /// its name before PostgreSQL.
    #[default]
    #[serde(alias = "sqlite")]
    Database,
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
            max_held_answer_bytes: default_max_held_answer_bytes(),
            notify: Vec::new(),
            show_changes: true,
        }
    }
}

fn default_max_pending_per_principal() -> usize {
    airlock_approval::PendingLimits::default().per_principal
}
fn default_max_pending() -> usize {
    airlock_approval::PendingLimits::default().total
}
fn default_max_held_answer_bytes() -> u64 {
    airlock_approval::DEFAULT_MAX_HELD_ANSWER_BYTES
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
    /// Browser sign-in for the approval page (`/ui/approvals`); without it
    /// the page answers that sign-in is not configured, and approvers use
    /// the API or `airlock approvals` with their tokens.
    pub sign_in: Option<SignInConfig>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            address: default_admin_address(),
            public_url: None,
            sign_in: None,
        }
    }
}

/// `[admin.sign_in]`: approvers sign in to the page with the OIDC
/// authorization-code flow (PKCE) through an app registration of their own.
///
/// ```toml
/// [admin.sign_in]
/// client_id = "5c7e…"                           # the approver app registration (Web platform)
/// client_secret_env = "AIRLOCK_SIGN_IN_SECRET"  # or client_secret_file
/// # issuer = "https://login.microsoftonline.com/<tenant>/v2.0"  # default: [identity].discovery
/// # session_ttl = "8h"
/// ```
///
/// Register `{admin public URL}/ui/signin/callback` as the app's redirect URI.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInConfig {
    /// The approver app registration's client id (the ID tokens' audience).
    pub client_id: String,
    /// A file holding its client secret.
    pub client_secret_file: Option<std::path::PathBuf>,
    /// An environment variable holding its client secret.
    pub client_secret_env: Option<String>,
    /// The OpenID provider (default: `[identity].discovery`, or Entra's v2
    /// issuer of the first tenant).
    pub issuer: Option<String>,
    /// How long a sign-in lasts (default 8 h; 5 minutes to 7 days).
    #[serde(default = "default_session_ttl", with = "humantime_serde")]
    pub session_ttl: Duration,
}

fn default_session_ttl() -> Duration {
    airlock_signin::DEFAULT_SESSION_TTL
}

impl SignInConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.client_id.trim().is_empty() {
            return Err(invalid(
                "admin.sign_in.client_id",
                "is empty",
                "set it to the approver app registration's Application (client) ID",
            ));
        }
        if self.client_secret_file.is_some() == self.client_secret_env.is_some() {
            return Err(invalid(
                "admin.sign_in.client_secret_file",
                "exactly one of client_secret_file and client_secret_env must be set",
                "point client_secret_file at a file holding the app's client secret, or name an environment variable in client_secret_env",
            ));
        }
        if !(Duration::from_secs(300)..=Duration::from_secs(7 * 86_400)).contains(&self.session_ttl)
        {
            return Err(invalid(
                "admin.sign_in.session_ttl",
                format!(
                    "{} is out of range",
                    humantime::format_duration(self.session_ttl)
                ),
                "choose between 5m and 7d (default 8h)",
            ));
        }
        Ok(())
    }

    /// The client secret, from its file or environment variable.
    pub(crate) fn secret(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<String, ConfigError> {
        let secret = match (&self.client_secret_file, &self.client_secret_env) {
            (Some(path), _) => std::fs::read_to_string(path).map_err(|e| {
                invalid(
                    "admin.sign_in.client_secret_file",
                    format!("cannot read {}: {e}", path.display()),
                    "point it at a readable file holding the client secret",
                )
            })?,
            (None, Some(name)) => env(name).ok_or_else(|| {
                invalid(
                    "admin.sign_in.client_secret_env",
                    format!("the environment variable {name} is not set"),
                    format!("export {name} with the approver app's client secret"),
                )
            })?,
            (None, None) => String::new(),
        };
        let secret = secret.trim().to_owned();
        if secret.is_empty() {
            return Err(invalid(
                "admin.sign_in.client_secret_file",
                "the client secret is empty",
                "create a client secret under the app registration's Certificates & secrets",
            ));
        }
        Ok(secret)
    }
}

fn default_admin_address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8444))
}
