//! The masking layer, built from `[masking]` and the Azure default pack.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use airlock_azure::SECRET_RESPONSES;
use airlock_masking::{JsonMasker, MaskRule, MaskingLayer, TokenKey};

use crate::config::{MASKING_KEY_ENV, MaskingConfig};
use crate::{ConfigError, StartError};

/// Builds the layer around `masker`.
pub(crate) fn layer(config: &MaskingConfig, masker: Arc<JsonMasker>) -> MaskingLayer {
    MaskingLayer::new(masker).max_body_bytes(config.max_body_bytes)
}

/// Builds the masker: the default pack (unless turned off) and the
/// configured rules, under the deployment's token key.
pub(crate) fn masker(config: &MaskingConfig, key: TokenKey) -> Result<Arc<JsonMasker>, StartError> {
    let mut rules = if config.default_pack {
        default_rules().map_err(StartError::Masking)?
    } else {
        Vec::new()
    };
    for (index, configured) in config.rule.iter().enumerate() {
        let rule = MaskRule::new(
            configured.operations.iter().map(String::as_str),
            configured.json_paths.iter().map(String::as_str),
        )
        .map_err(|e| ConfigError::Invalid {
            key: "masking.rule",
            problem: format!("rule {}: {e}", index + 1),
            fix:
                "write operations as RBAC names (wildcards allowed) and paths as $.a.b, [*], ..name"
                    .into(),
        })?
        .detectors(configured.detectors);
        rules.push(rule);
    }
    Ok(Arc::new(
        JsonMasker::builder(key)
            .rules(rules)
            .detectors(true)
            .build(),
    ))
}

/// The Azure default pack ([`SECRET_RESPONSES`]) as masking rules.
///
/// # Errors
///
/// Never for the shipped pack (a test checks it); the message names the entry.
pub fn default_rules() -> Result<Vec<MaskRule>, String> {
    SECRET_RESPONSES
        .iter()
        .map(|entry| {
            MaskRule::new(
                entry.operations.iter().copied(),
                entry.json_paths.iter().copied(),
            )
            .map_err(|e| format!("the built-in rule for {}: {e}", entry.service))
        })
        .collect()
}

/// The deployment key: from `AIRLOCK_MASKING_KEY`, else `masking.key_file`,
/// else a new one written to `masking.key_file` (owner-only) so restarts keep
/// tokens stable. Masking tokens use it directly; other secrets (the sealing
/// key of stored approval requests) are derived from it.
pub(crate) fn token_key(
    config: &MaskingConfig,
    env: impl Fn(&str) -> Option<String>,
) -> Result<TokenKey, StartError> {
    let invalid = |problem: String, fix: &str| ConfigError::Invalid {
        key: "masking.key_file",
        problem,
        fix: fix.into(),
    };
    if let Some(hex) = env(MASKING_KEY_ENV).filter(|k| !k.trim().is_empty()) {
        return TokenKey::from_hex(hex.trim()).map_err(|e| {
            invalid(
                format!("{MASKING_KEY_ENV}: {e}"),
                "give 64 hex characters (32 random bytes)",
            )
            .into()
        });
    }
    let path = &config.key_file;
    match std::fs::read_to_string(path) {
        Ok(text) => TokenKey::from_hex(text.trim()).map_err(|e| {
            invalid(
                format!("{}: {e}", path.display()),
                "put 64 hex characters in the file, or delete it to have one generated",
            )
            .into()
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let key = TokenKey::generate().map_err(|e| StartError::Masking(e.to_string()))?;
            write_private(path, &key.to_hex()).map_err(|e| {
                invalid(
                    format!("cannot create {}: {e}", path.display()),
                    "make its directory writable, or set AIRLOCK_MASKING_KEY",
                )
            })?;
            tracing::info!(file = %path.display(), "generated a new masking key");
            Ok(key)
        }
        Err(error) => Err(invalid(
            format!("cannot read {}: {error}", path.display()),
            "make it readable by the gateway",
        )
        .into()),
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")
}
