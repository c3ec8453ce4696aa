//! [`AnswerRule`]: answers that wait for a human before they leave (the
//! policy file's `[[answer]]`): the exfiltration guard.

use airlock_core::scope_pattern::names;
use airlock_core::{
    ApprovalWait, Decision, Operation, OperationPattern, Principal, PrincipalSelector, ScopePattern,
};

use crate::rule::Approval;

/// What is known of one answer when the rules look at it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnswerFacts {
    /// Its size in bytes (as sent: after masking).
    pub bytes: u64,
    /// How many items its list holds (`value` of a JSON answer), when it is one.
    pub items: Option<u64>,
    /// How many values masking masked in it.
    pub masked: u32,
    /// How many secret values it carries in clear, revealed by a reveal
    /// rule or approval: `min_masked` counts them with the masked ones
    /// (a secret revealed is still a secret leaving).
    pub revealed: u32,
    /// Its media type (`Content-Type`), when given.
    pub content_type: Option<String>,
}

/// Holds matching answers for approval: requests of these principals for
/// these operations (any operation a request carries) whose answer meets
/// every condition given (`min_bytes`, `min_items`, `min_masked`,
/// `content_types`; at least one). The approval layer's answer step
/// (`airlock-approval`) enforces them.
///
/// ```
/// use airlock_core::{Operation, Plane, Principal, PrincipalKind, ResourceScope};
/// use airlock_policy::{AnswerFacts, Policy};
///
/// let policy = Policy::parse(r#"
///     [[answer]]
///     name = "big-downloads"
///     operations = ["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"]
///     min_bytes = 52428800
///     approval = { groups = ["sec"] }
/// "#, "policy.toml").unwrap();
/// let rule = &policy.answer_rules()[0];
/// let agent = Principal::builder("agent", PrincipalKind::ManagedIdentity).build();
/// let download = Operation::new(
///     "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
///     Plane::Data,
///     ResourceScope::new("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st/blobServices/default/containers/c/blobs/b"),
/// );
/// assert!(rule.applies(&agent, &download));
/// assert!(!rule.holds(&AnswerFacts { bytes: 1024, ..Default::default() }));
/// assert!(rule.holds(&AnswerFacts { bytes: 60 << 20, ..Default::default() }));
///
/// // `min_masked` counts the secrets in an answer, masked or revealed.
/// let policy = Policy::parse(r#"
///     [[answer]]
///     name = "secret-sweeps"
///     operations = ["Microsoft.KeyVault/vaults/secrets/*"]
///     min_masked = 3
///     approval = { groups = ["sec"] }
/// "#, "policy.toml").unwrap();
/// let rule = &policy.answer_rules()[0];
/// assert!(!rule.holds(&AnswerFacts { masked: 2, ..Default::default() }));
/// assert!(rule.holds(&AnswerFacts { masked: 1, revealed: 2, ..Default::default() }));
/// ```
#[derive(Clone, Debug)]
pub struct AnswerRule {
    pub(crate) name: String,
    pub(crate) principals: PrincipalSelector,
    pub(crate) operations: Vec<OperationPattern>,
    pub(crate) scopes: Vec<ScopePattern>,
    pub(crate) min_bytes: Option<u64>,
    pub(crate) min_items: Option<u64>,
    pub(crate) min_masked: Option<u32>,
    pub(crate) content_types: Vec<String>,
    pub(crate) approval: Approval,
}

impl AnswerRule {
    /// Its name (unique in the policy).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it looks at answers to `operation` (or any operation it
    /// carries) for `principal`.
    pub fn applies(&self, principal: &Principal, operation: &Operation) -> bool {
        self.principals.matches(principal)
            && operation
                .flatten()
                .into_iter()
                .any(|op| names(&self.operations, &self.scopes, op))
    }

    /// Whether it must count a list's items (the body must be read).
    pub fn counts_items(&self) -> bool {
        self.min_items.is_some()
    }

    /// The smallest answer it can hold, when it names one.
    pub fn min_bytes(&self) -> Option<u64> {
        self.min_bytes
    }

    /// Whether an answer with these facts is held: every condition given holds.
    pub fn holds(&self, answer: &AnswerFacts) -> bool {
        self.min_bytes.is_none_or(|min| answer.bytes >= min)
            && self
                .min_items
                .is_none_or(|min| answer.items.is_some_and(|n| n >= min))
            && self
                .min_masked
                .is_none_or(|min| answer.masked.saturating_add(answer.revealed) >= min)
            && (self.content_types.is_empty()
                || answer.content_type.as_deref().is_some_and(|found| {
                    self.content_types.iter().any(|t| media_matches(t, found))
                }))
    }

    /// The approval a held answer waits for (held, never as an operation:
    /// a read cannot become a long-running one).
    pub fn approval(&self) -> Decision {
        Decision::RequireApproval {
            rule: self.name.clone(),
            approvers: self.approval.approvers.clone(),
            min_approvals: self.approval.min_approvals,
            justification_required: false,
            hold: self.approval.hold,
            ttl: self.approval.ttl,
            wait: ApprovalWait::Hold,
            elevate_to: None,
        }
    }

    pub(crate) fn approvers(&self) -> &airlock_core::Approvers {
        &self.approval.approvers
    }
}

/// `application/json` matches `Application/JSON; charset=utf-8`;
/// `image/*` matches any image.
fn media_matches(pattern: &str, found: &str) -> bool {
    let essence = found.split(';').next().unwrap_or_default().trim();
    match pattern.strip_suffix("/*") {
        Some(kind) => essence
            .split_once('/')
            .is_some_and(|(found_kind, _)| found_kind.eq_ignore_ascii_case(kind)),
        None => essence.eq_ignore_ascii_case(pattern.trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::media_matches;

    #[test]
    fn media_types_match_by_essence_and_kind() {
        assert!(media_matches(
            "application/json",
            "Application/JSON; charset=utf-8"
        ));
        assert!(media_matches("image/*", "image/png"));
        assert!(!media_matches("image/*", "application/png"));
        assert!(!media_matches("application/json", "application/jsonp"));
    }
}
