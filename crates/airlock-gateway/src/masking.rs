//! The masking layer, built from `[masking]` and the Azure default pack.

use std::sync::Arc;

use airlock_azure::{SECRET_RESPONSE_FALLBACKS, SECRET_RESPONSES};
use airlock_core::Approvers;
use airlock_masking::{
    JsonMasker, KeyFileError, MaskRule, MaskingLayer, RevealApproval, RevealRule, TokenKey,
};

use crate::config::{MASKING_KEY_ENV, MaskingConfig};
use crate::{ConfigError, StartError};

/// Builds the layer around `masker`; the request and response excerpts it
/// keeps for the audit record are as long as `[audit] max_body_chars` asks
/// (one setting: the excerpt is not capped a second time here). Its memory
/// budget (`max_buffered_bytes`) is shared with the upstream: the caller
/// sets it.
pub(crate) fn layer(
    config: &MaskingConfig,
    masker: Arc<JsonMasker>,
    excerpt_bytes: usize,
    reveal: Vec<RevealRule>,
) -> MaskingLayer {
    MaskingLayer::new(masker)
        .max_body_bytes(config.max_body_bytes)
        .excerpt_bytes(excerpt_bytes)
        .reveal(reveal)
}

/// The `[[masking.reveal]]` rules.
pub(crate) fn reveal_rules(config: &MaskingConfig) -> Result<Vec<RevealRule>, ConfigError> {
    config
        .reveal
        .iter()
        .map(|reveal| {
            let invalid = |e: airlock_masking::MaskError| ConfigError::Invalid {
                key: "masking.reveal",
                problem: format!("rule '{}': {e}", reveal.name),
                fix: "name principals (ids, groups, …), operations as RBAC names (wildcards allowed) and scopes as resource-id prefixes".into(),
            };
            let mut rule = RevealRule::new(&reveal.name, &reveal.operations)
                .and_then(|rule| rule.principals(reveal.principals.clone()))
                .and_then(|rule| rule.scopes(&reveal.scopes))
                .map_err(invalid)?
                .detectors(reveal.detectors);
            if let Some(approval) = &reveal.approval {
                rule = rule.by_approval(RevealApproval {
                    approvers: Approvers {
                        groups: approval.groups.clone(),
                        ids: approval.ids.clone(),
                        acting_user: false,
                    },
                    min_approvals: approval.min_approvals,
                    hold: approval.hold,
                    ttl: approval.ttl,
                });
            }
            Ok(rule)
        })
        .collect()
}

/// Builds the masker: the default pack (unless turned off) and the
/// configured rules, under the deployment's token key.
pub(crate) fn masker(config: &MaskingConfig, key: TokenKey) -> Result<Arc<JsonMasker>, StartError> {
    let mut rules = if config.default_pack {
        default_rules().map_err(|e| StartError::Masking(e.to_string()))?
    } else {
        Vec::new()
    };
    for (index, configured) in config.rule.iter().enumerate() {
        let rule = MaskRule::new(
            configured.operations.iter().map(String::as_str),
            configured.json_paths.iter().map(String::as_str),
        )
        .map(|rule| rule.xml_elements(configured.xml_elements.iter().cloned()))
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

/// The Azure default pack ([`SECRET_RESPONSES`], then its
/// [`SECRET_RESPONSE_FALLBACKS`] as fallback rules) as masking rules.
///
/// # Errors
///
/// Never for the shipped pack (a test checks it); the message names the entry.
pub fn default_rules() -> Result<Vec<MaskRule>, airlock_masking::MaskError> {
    let entries = SECRET_RESPONSES.iter().map(|entry| (entry, false));
    let fallbacks = SECRET_RESPONSE_FALLBACKS.iter().map(|entry| (entry, true));
    entries
        .chain(fallbacks)
        .map(|(entry, fallback)| {
            MaskRule::new(
                entry.operations.iter().copied(),
                entry.json_paths.iter().copied(),
            )
            .map(|rule| rule.xml_elements(entry.xml_elements.iter().copied()))
            .map(|rule| if fallback { rule.fallback() } else { rule })
            .inspect_err(|e| tracing::error!(service = entry.service, %e, "a built-in masking rule is invalid"))
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
    match TokenKey::load_or_create(path) {
        Ok((key, created)) => {
            if created {
                tracing::info!(file = %path.display(), "generated a new masking key");
            }
            Ok(key)
        }
        Err(error @ KeyFileError::Invalid { .. }) => Err(invalid(
            error.to_string(),
            "put 64 hex characters in the file, or delete it to have one generated",
        )
        .into()),
        Err(error @ KeyFileError::Read { .. }) => {
            Err(invalid(error.to_string(), "make it readable by the gateway").into())
        }
        Err(error @ KeyFileError::Create { .. }) => Err(invalid(
            error.to_string(),
            "make its directory writable, or set AIRLOCK_MASKING_KEY",
        )
        .into()),
        Err(error @ KeyFileError::Generate(_)) => Err(StartError::Masking(error.to_string())),
    }
}
