//! [`Quota`]: at most so many operations, or so many bytes of answers, per
//! principal (or group) per sliding window: the policy file's `[[quota]]`.

use std::fmt;
use std::time::Duration;

use airlock_core::scope_pattern::names;
use airlock_core::{
    Decision, Operation, OperationPattern, Principal, PrincipalSelector, ScopePattern,
};

use crate::rule::Approval;

/// What a quota counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// Matching operations (each one a request carries counts: a `/batch`
    /// of twenty secret reads is twenty).
    Requests(u64),
    /// Bytes of the answers to matching requests.
    Bytes(u64),
}

impl Limit {
    /// The number the limit allows.
    pub fn max(self) -> u64 {
        match self {
            Limit::Requests(n) | Limit::Bytes(n) => n,
        }
    }

    /// `operations` or `bytes`, for messages.
    pub fn unit(self) -> &'static str {
        match self {
            Limit::Requests(_) => "operations",
            Limit::Bytes(_) => "bytes",
        }
    }
}

/// Whom a quota's count belongs to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Per {
    /// Each principal has its own count (by object id).
    #[default]
    Principal,
    /// The members of each group the quota's `principals.groups` names
    /// share one count.
    Group,
}

/// One `[[quota]]`. Built by [`Policy::parse`](crate::Policy::parse);
/// enforced by the [`QuotaLayer`](crate::QuotaLayer).
///
/// ```
/// use airlock_core::{Operation, Plane, Principal, PrincipalKind, ResourceScope};
/// use airlock_policy::Policy;
///
/// let policy = Policy::parse(r#"
///     [[quota]]
///     name = "secret-reads"
///     operations = ["Microsoft.KeyVault/vaults/secrets/getSecret/action"]
///     max_requests = 5
///     window = "1h"
/// "#, "policy.toml").unwrap();
/// let quota = &policy.quotas()[0];
/// let agent = Principal::builder("agent-1", PrincipalKind::ManagedIdentity).build();
/// let read = Operation::new(
///     "Microsoft.KeyVault/vaults/secrets/getSecret/action",
///     Plane::Data,
///     ResourceScope::new("/providers/Microsoft.KeyVault/vaults/kv/secrets/db"),
/// );
/// assert_eq!(quota.counts(&agent, &read), 1);
/// assert_eq!(quota.subject(&agent).as_deref(), Some("agent-1"));
/// ```
#[derive(Clone, Debug)]
pub struct Quota {
    pub(crate) name: String,
    pub(crate) principals: PrincipalSelector,
    pub(crate) operations: Vec<OperationPattern>,
    pub(crate) scopes: Vec<ScopePattern>,
    pub(crate) limit: Limit,
    pub(crate) window: Duration,
    pub(crate) per: Per,
    /// `None`: deny past the limit; else ask for this approval.
    pub(crate) approval: Option<Approval>,
}

impl Quota {
    /// Its name (unique in the policy).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// What it counts, and how many.
    pub fn limit(&self) -> Limit {
        self.limit
    }
    /// The sliding window the count covers.
    pub fn window(&self) -> Duration {
        self.window
    }
    /// Whom a count belongs to.
    pub fn per(&self) -> Per {
        self.per
    }

    /// How many of the operations `operation` stands for (itself and all it
    /// carries) this quota counts for `principal`: 0 when it does not apply.
    pub fn counts(&self, principal: &Principal, operation: &Operation) -> u64 {
        if !self.principals.matches(principal) || self.subject(principal).is_none() {
            return 0;
        }
        let counted = operation.flatten().into_iter();
        counted
            .filter(|op| names(&self.operations, &self.scopes, op))
            .count() as u64
    }

    /// The key `principal`'s use is counted under: its object id, or for
    /// [`Per::Group`] `group:<id>` of the first of the quota's groups it is
    /// in (`None` when it is in none of them).
    pub fn subject(&self, principal: &Principal) -> Option<String> {
        match self.per {
            Per::Principal => Some(principal.id().to_ascii_lowercase()),
            Per::Group => self
                .principals
                .groups
                .iter()
                .find(|group| principal.in_group(group))
                .map(|group| format!("group:{}", group.to_ascii_lowercase())),
        }
    }

    /// What past the limit means: `None` to deny, else the approval to ask for.
    pub fn exceeded(&self) -> Option<Decision> {
        let approval = self.approval.as_ref()?;
        Some(Decision::RequireApproval {
            rule: format!("{}{}", airlock_core::QUOTA_RULE_PREFIX, self.name),
            approvers: approval.approvers.clone(),
            min_approvals: approval.min_approvals,
            justification_required: approval.justification,
            hold: approval.hold,
            ttl: approval.ttl,
            wait: approval.wait,
            elevate_to: approval.elevate_to.clone(),
        })
    }

    pub(crate) fn approvers(&self) -> Option<&airlock_core::Approvers> {
        self.approval.as_ref().map(|a| &a.approvers)
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "quota '{}' ({} {} per {} per {})",
            self.name,
            self.limit.max(),
            self.limit.unit(),
            humantime::format_duration(self.window),
            match self.per {
                Per::Principal => "principal",
                Per::Group => "group",
            }
        )
    }
}
