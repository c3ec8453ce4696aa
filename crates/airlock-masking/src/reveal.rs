//! [`RevealRule`]: who may receive which answers in clear, by rule or by
//! a human's approval of one request.

use std::time::Duration;

use airlock_core::{
    ApprovalWait, Approvers, Decision, Operation, OperationPattern, Principal, PrincipalSelector,
    RevealQuorum, ScopePattern,
};

use crate::MaskError;

/// Lets named principals receive the clear values of named operations'
/// answers (`[[masking.reveal]]`); everyone else still gets the mask.
///
/// A rule applies to a request when its principal is selected, its
/// operation and every operation it carries are among the rule's
/// operations, inside its scopes (if any), and classified (an unclassified
/// request is never revealed). It reveals the values the masking rules
/// select (a Key Vault secret's `value`, a storage account's keys); with
/// [`detectors`](Self::detectors) also what the detectors find elsewhere in
/// the answer. The audit trail keeps masked excerpts either way, and records
/// where values were revealed and by which rule.
///
/// With [`by_approval`](Self::by_approval) the rule reveals nothing by
/// itself: the agent asks for one answer with `x-airlock-reveal: <why>`
/// and a human approves that one request (see [`RevealLayer`](crate::RevealLayer)).
///
/// ```
/// use airlock_core::{Operation, Plane, Principal, PrincipalKind, PrincipalSelector, ResourceScope};
/// use airlock_masking::RevealRule;
///
/// let rule = RevealRule::new("pipeline-db", ["Microsoft.KeyVault/vaults/secrets/getSecret/action"])
///     .unwrap()
///     .principals(PrincipalSelector { ids: vec!["pipeline".into()], ..Default::default() })
///     .unwrap()
///     .scopes(["/providers/Microsoft.KeyVault/vaults/prod-kv/secrets/db-*"])
///     .unwrap();
/// let get = |secret: &str| Operation::new(
///     "Microsoft.KeyVault/vaults/secrets/getSecret/action",
///     Plane::Data,
///     ResourceScope::new(format!("/providers/Microsoft.KeyVault/vaults/prod-kv/secrets/{secret}")),
/// );
/// let pipeline = Principal::builder("pipeline", PrincipalKind::Application).build();
/// let other = Principal::builder("agent", PrincipalKind::Application).build();
/// assert!(rule.applies(&pipeline, &get("db-password")));
/// assert!(!rule.applies(&pipeline, &get("api-key")));
/// assert!(!rule.applies(&other, &get("db-password")));
/// ```
#[derive(Clone, Debug)]
pub struct RevealRule {
    name: String,
    principals: PrincipalSelector,
    operations: Vec<OperationPattern>,
    scopes: Vec<ScopePattern>,
    detectors: bool,
    approval: Option<RevealApproval>,
}

/// Who approves a reveal asked for with `x-airlock-reveal`, and for how long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevealApproval {
    /// Who may approve.
    pub approvers: Approvers,
    /// How many distinct approvers must.
    pub min_approvals: u32,
    /// How long the request is held open waiting.
    pub hold: Duration,
    /// How long an approval stays usable by a retry (once).
    pub ttl: Duration,
}

impl RevealRule {
    /// A rule named `name` for `operations` (role-definition patterns),
    /// selecting nobody yet: give it [`principals`](Self::principals).
    ///
    /// # Errors
    ///
    /// [`MaskError::NoOperations`] or [`MaskError::Operation`].
    pub fn new<O>(name: impl Into<String>, operations: O) -> Result<Self, MaskError>
    where
        O: IntoIterator,
        O::Item: AsRef<str>,
    {
        Ok(Self {
            name: name.into(),
            principals: PrincipalSelector::default(),
            operations: crate::rule::operation_patterns(operations)?,
            scopes: Vec::new(),
            detectors: false,
            approval: None,
        })
    }

    /// Who may receive the clear values.
    ///
    /// # Errors
    ///
    /// [`MaskError::Reveal`] for an empty selector: revealing to everyone
    /// is turning masking off for those operations, which
    /// `[[masking.rule]]` and `default_pack` already say plainly.
    pub fn principals(mut self, principals: PrincipalSelector) -> Result<Self, MaskError> {
        if principals.is_empty() {
            return Err(MaskError::Reveal(format!(
                "reveal rule '{}' selects no principals, so it would reveal to everyone",
                self.name
            )));
        }
        self.principals = principals;
        Ok(self)
    }

    /// Resource-id prefixes (segment globs allowed) the operations must lie in.
    ///
    /// # Errors
    ///
    /// [`MaskError::Reveal`] naming a malformed scope.
    pub fn scopes<S>(mut self, scopes: S) -> Result<Self, MaskError>
    where
        S: IntoIterator,
        S::Item: AsRef<str>,
    {
        self.scopes = scopes
            .into_iter()
            .map(|scope| {
                ScopePattern::parse(scope.as_ref())
                    .map_err(|e| MaskError::Reveal(format!("reveal rule '{}': {e}", self.name)))
            })
            .collect::<Result<_, _>>()?;
        Ok(self)
    }

    /// Whether what the detectors find (secret shapes anywhere in the
    /// answer) is revealed too, not only the values masking rules select
    /// (default `false`).
    #[must_use]
    pub fn detectors(mut self, on: bool) -> Self {
        self.detectors = on;
        self
    }

    /// Reveals only a request sent with `x-airlock-reveal`, once a human
    /// approves it.
    #[must_use]
    pub fn by_approval(mut self, approval: RevealApproval) -> Self {
        self.approval = Some(approval);
        self
    }

    /// The rule's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it reveals only by approval.
    pub fn needs_approval(&self) -> bool {
        self.approval.is_some()
    }

    /// Who approves its reveals, when it reveals by approval (the gateway
    /// lets them use the approval page and API).
    pub fn approvers(&self) -> Option<&Approvers> {
        self.approval.as_ref().map(|approval| &approval.approvers)
    }

    /// Whether the rule covers `operation` (and all it carries) for `principal`.
    pub fn applies(&self, principal: &Principal, operation: &Operation) -> bool {
        self.principals.matches(principal)
            && operation.flatten().into_iter().all(|op| {
                !op.is_unknown()
                    && airlock_core::scope_pattern::names(&self.operations, &self.scopes, op)
            })
    }

    /// This rule's approvers, as the second quorum of an approval that the
    /// operation needs too.
    pub(crate) fn quorum(&self) -> Option<RevealQuorum> {
        let approval = self.approval.as_ref()?;
        Some(RevealQuorum {
            rule: self.name.clone(),
            approvers: approval.approvers.clone(),
            min_approvals: approval.min_approvals,
        })
    }

    /// The decision that holds a reveal request for this rule's approvers.
    pub(crate) fn approval_decision(&self) -> Option<Decision> {
        let approval = self.approval.as_ref()?;
        Some(Decision::RequireApproval {
            rule: self.name.clone(),
            approvers: approval.approvers.clone(),
            min_approvals: approval.min_approvals,
            justification_required: true,
            hold: approval.hold,
            ttl: approval.ttl,
            wait: ApprovalWait::Hold,
            elevate_to: None,
        })
    }
}

/// How one answer is revealed, as the masking layer works it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Revealing {
    /// `rule '<name>'` or `approval <id> (rule '<name>')`.
    pub(crate) by: String,
    /// Detector finds too, not only rule-selected values.
    pub(crate) detectors: bool,
}

/// The rules of one layer, in order.
#[derive(Clone, Debug, Default)]
pub(crate) struct RevealRules(pub(crate) Vec<RevealRule>);

impl RevealRules {
    /// The first rule that reveals `operation` to `principal` by itself.
    pub(crate) fn by_rule(
        &self,
        principal: &Principal,
        operation: &Operation,
    ) -> Option<Revealing> {
        let rule = self
            .0
            .iter()
            .find(|rule| !rule.needs_approval() && rule.applies(principal, operation))?;
        Some(Revealing {
            by: format!("rule '{}'", rule.name),
            detectors: rule.detectors,
        })
    }

    /// The first rule that reveals `operation` to `principal` once approved.
    pub(crate) fn by_approval(
        &self,
        principal: &Principal,
        operation: &Operation,
    ) -> Option<&RevealRule> {
        self.0
            .iter()
            .find(|rule| rule.needs_approval() && rule.applies(principal, operation))
    }

    /// The rule an approval was granted under, if it still applies.
    pub(crate) fn granted(
        &self,
        grant: &airlock_core::RevealGrant,
        principal: &Principal,
        operation: &Operation,
    ) -> Option<Revealing> {
        let rule = self.0.iter().find(|rule| {
            rule.name == grant.rule && rule.needs_approval() && rule.applies(principal, operation)
        })?;
        Some(Revealing {
            by: grant.to_string(),
            detectors: rule.detectors,
        })
    }
}

/// Where values were revealed: what the fully masked body masked and the
/// body sent did not (each path counted as often as it occurs).
pub(crate) fn difference(all: &[String], left: &[String]) -> Vec<String> {
    let mut left: Vec<&String> = left.iter().collect();
    all.iter()
        .filter(|path| match left.iter().position(|l| l == path) {
            Some(at) => {
                left.swap_remove(at);
                false
            }
            None => true,
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn difference_counts_repeats() {
        let all = ["$.a".to_owned(), "$.a".to_owned(), "$.b (JWT)".to_owned()];
        let left = ["$.b (JWT)".to_owned(), "$.a".to_owned()];
        assert_eq!(difference(&all, &left), ["$.a"]);
        assert!(difference(&all, &all).is_empty());
    }

    #[test]
    fn batches_reveal_only_when_every_inner_operation_is_covered() {
        use airlock_core::{Plane, PrincipalKind, ResourceScope};
        let rule = RevealRule::new("r", ["Microsoft.Web/sites/config/list/action"])
            .unwrap()
            .principals(PrincipalSelector {
                ids: vec!["p".into()],
                ..Default::default()
            })
            .unwrap();
        let p = Principal::builder("P", PrincipalKind::Application).build();
        let scope = ResourceScope::new("/subscriptions/s");
        let list = Operation::new(
            "Microsoft.Web/sites/config/list/action",
            Plane::Management,
            scope.clone(),
        );
        let keys = Operation::new(
            "Microsoft.Storage/storageAccounts/listKeys/action",
            Plane::Management,
            scope.clone(),
        );
        let batch = Operation::new("Microsoft.Resources/batch/action", Plane::Management, scope)
            .with_child(list.clone());
        assert!(rule.applies(&p, &list));
        assert!(!rule.applies(&p, &batch), "the batch itself is not listed");
        let rule = RevealRule::new(
            "r",
            [
                "Microsoft.Web/sites/config/list/action",
                "Microsoft.Resources/batch/action",
            ],
        )
        .unwrap()
        .principals(PrincipalSelector {
            ids: vec!["p".into()],
            ..Default::default()
        })
        .unwrap();
        assert!(rule.applies(&p, &batch));
        assert!(!rule.applies(&p, &batch.clone().with_child(keys)));
        assert!(
            RevealRule::new("everyone", ["*"])
                .unwrap()
                .principals(PrincipalSelector::default())
                .is_err()
        );
    }
}
