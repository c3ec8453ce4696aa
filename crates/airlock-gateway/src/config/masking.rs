//! `[masking]`: how secrets in Azure's answers are replaced before they
//! reach the agent.

use std::path::PathBuf;

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
    /// XML elements whose text is secret, for answers in XML (`["Value"]`).
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
        Ok(())
    }
}
