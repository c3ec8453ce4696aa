//! `[masking]`: how secrets in Azure's answers are replaced before they
//! reach the agent.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, invalid};

/// The environment variable holding the masking key (hex), overriding `masking.key_file`.
pub const MASKING_KEY_ENV: &str = "AIRLOCK_MASKING_KEY";

/// `[masking]`. Optional: by default the Azure pack is on, the detectors
/// run on every JSON answer, and the key lives in `airlock-masking.key`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskingConfig {
    /// Where the HMAC key for masked tokens is kept (hex, 32 bytes); created
    /// with owner-only permissions on first start if missing. Replicas that
    /// should give the same token for the same secret share the file (or
    /// `AIRLOCK_MASKING_KEY`).
    #[serde(default = "default_key_file")]
    pub key_file: PathBuf,
    /// The largest answer read to mask it; a larger one that must be masked is withheld (502).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: u64,
    /// The most memory all answers being masked may take at once: one of
    /// known length waits for its share, one of unknown length is refused
    /// (503 `AirlockMemoryBusy`, retryable) when it is spent. At least
    /// `max_body_bytes`; default 64 MiB.
    #[serde(default = "default_max_buffered")]
    pub max_buffered_bytes: u64,
    /// The built-in Azure pack (Key Vault secrets, storage keys, connection strings, …).
    #[serde(default = "yes")]
    pub default_pack: bool,
    /// Extra rules.
    #[serde(default)]
    pub rule: Vec<MaskRuleConfig>,
    /// Who may have which answers in clear, by rule or by approval.
    #[serde(default)]
    pub reveal: Vec<RevealConfig>,
}

/// `[[masking.reveal]]`: named principals receive the clear values of named
/// operations' answers (everyone else still gets the mask); with
/// `approval`, only for a request sent with `x-airlock-reveal: <why>`
/// that a human approved, once.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevealConfig {
    /// The rule's name, in audit events and approvals.
    pub name: String,
    /// Who (required: a reveal to everyone is masking turned off).
    #[serde(default)]
    pub principals: airlock_core::PrincipalSelector,
    /// Operation patterns (role-definition wildcards).
    pub operations: Vec<String>,
    /// Resource-id prefixes the operations must lie in (segment globs allowed).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Also reveal what the detectors find elsewhere in the answer, not
    /// only the values masking rules select.
    #[serde(default)]
    pub detectors: bool,
    /// Reveal only by approval: who approves, and for how long.
    pub approval: Option<RevealApprovalConfig>,
}

/// `[masking.reveal.approval]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevealApprovalConfig {
    /// Entra group object ids whose members may approve.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Principal object ids that may approve.
    #[serde(default)]
    pub ids: Vec<String>,
    /// How many distinct approvers must approve.
    #[serde(default = "one")]
    pub min_approvals: u32,
    /// How long the request is held open waiting (default 5m).
    #[serde(default = "default_hold", with = "humantime_serde")]
    pub hold: Duration,
    /// How long an approval stays usable by one retry (default 1h).
    #[serde(default = "default_ttl", with = "humantime_serde")]
    pub ttl: Duration,
}

fn one() -> u32 {
    1
}
fn default_hold() -> Duration {
    Duration::from_secs(300)
}
fn default_ttl() -> Duration {
    Duration::from_secs(3600)
}

/// `[[masking.rule]]`: secrets at JSON paths in the answers to some operations.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskRuleConfig {
    /// Operation patterns (role-definition wildcards).
    pub operations: Vec<String>,
    /// JSON paths (`$.a.b`, `[*]`, `..name`, `.*`).
    #[serde(default)]
    pub json_paths: Vec<String>,
    /// XML elements whose text is secret, for answers in XML (`["Value"]`);
    /// `@name` for an attribute whose value is (`["@userPWD"]`).
    #[serde(default)]
    pub xml_elements: Vec<String>,
    /// Whether the free-text detectors also run on these answers.
    #[serde(default = "yes")]
    pub detectors: bool,
}

impl Default for MaskingConfig {
    fn default() -> Self {
        Self {
            key_file: default_key_file(),
            max_body_bytes: default_max_body(),
            max_buffered_bytes: default_max_buffered(),
            default_pack: true,
            rule: Vec::new(),
            reveal: Vec::new(),
        }
    }
}

fn default_key_file() -> PathBuf {
    PathBuf::from("airlock-masking.key")
}
fn default_max_body() -> u64 {
    16 * 1024 * 1024
}
fn default_max_buffered() -> u64 {
    airlock_masking::DEFAULT_MAX_BUFFERED_BYTES
}
fn yes() -> bool {
    true
}

impl MaskingConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_body_bytes == 0 {
            return Err(invalid(
                "masking.max_body_bytes",
                "must be above zero",
                "give a size in bytes, e.g. 16777216",
            ));
        }
        if self.max_buffered_bytes < self.max_body_bytes {
            return Err(invalid(
                "masking.max_buffered_bytes",
                format!(
                    "is {} bytes, below masking.max_body_bytes ({}): the largest answer could never be masked",
                    self.max_buffered_bytes, self.max_body_bytes
                ),
                "make it at least masking.max_body_bytes, e.g. four times it",
            ));
        }
        if let Some(empty) = self.rule.iter().position(|r| r.operations.is_empty()) {
            return Err(invalid(
                "masking.rule",
                format!("rule {} names no operations", empty + 1),
                "list the operations whose answers hold the secrets, e.g. [\"Microsoft.Contoso/widgets/listSecrets/action\"]",
            ));
        }
        // Built once here, so `airlock check-config` finds what start would.
        crate::masking::reveal_rules(self)?;
        let mut names = std::collections::HashSet::new();
        for reveal in &self.reveal {
            if !names.insert(reveal.name.as_str()) {
                return Err(invalid(
                    "masking.reveal",
                    format!("two rules are named '{}'", reveal.name),
                    "give every reveal rule its own name",
                ));
            }
            if let Some(approval) = &reveal.approval {
                if approval.groups.is_empty() && approval.ids.is_empty() {
                    return Err(invalid(
                        "masking.reveal.approval",
                        format!("reveal rule '{}' names no approvers", reveal.name),
                        "list approver ids or groups, e.g. approval = { groups = [\"<security group object id>\"] }",
                    ));
                }
                if approval.min_approvals == 0 || approval.hold.is_zero() || approval.ttl.is_zero()
                {
                    return Err(invalid(
                        "masking.reveal.approval",
                        format!(
                            "reveal rule '{}': min_approvals, hold and ttl must be above zero",
                            reveal.name
                        ),
                        "e.g. min_approvals = 1, hold = \"2m\", ttl = \"10m\"",
                    ));
                }
            }
        }
        Ok(())
    }
}
