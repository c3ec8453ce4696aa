//! One policy rule: who, which operations, where, and with what effect.

use std::fmt;
use std::time::Duration;

use airlock_core::{ApprovalWait, Approvers, Operation, Plane, Principal, PrincipalSelector};

use airlock_core::OperationPattern;
use airlock_core::ScopePattern;

/// What a matching rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Forward the request.
    Allow,
    /// Refuse it.
    Deny,
    /// Hold it for a human's approval.
    Approve,
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
            Effect::Approve => "approve",
        })
    }
}

/// The approval an `approve` rule asks for.
#[derive(Clone, Debug)]
pub(crate) struct Approval {
    pub(crate) approvers: Approvers,
    pub(crate) min_approvals: u32,
    pub(crate) justification: bool,
    pub(crate) hold: Duration,
    pub(crate) ttl: Duration,
    pub(crate) wait: ApprovalWait,
    pub(crate) elevate_to: Option<String>,
}

/// A validated rule.
#[derive(Clone, Debug)]
pub(crate) struct Rule {
    pub(crate) name: String,
    pub(crate) effect: Effect,
    pub(crate) reason: Option<String>,
    pub(crate) actions: Vec<OperationPattern>,
    pub(crate) not_actions: Vec<OperationPattern>,
    pub(crate) data_actions: Vec<OperationPattern>,
    pub(crate) not_data_actions: Vec<OperationPattern>,
    pub(crate) scopes: Vec<ScopePattern>,
    pub(crate) principals: PrincipalSelector,
    pub(crate) approval: Option<Approval>,
    /// Where the rule starts in its file (1-based), for messages.
    pub(crate) line: usize,
    /// `mode = "observe"`: what it would do is recorded, not done.
    pub(crate) observe: bool,
}

/// Why a rule did not apply to an operation (for `airlock policy explain`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skip {
    /// The principal does not match this selector field.
    Principal(&'static str),
    /// The rule names no operations of this plane (`actions` vs `data_actions`).
    Plane(Plane),
    /// The operation is not among the rule's actions.
    NotListed,
    /// `not_actions` / `not_data_actions` takes it out.
    Excluded(String),
    /// The operation is outside every scope of the rule.
    OutOfScope,
    /// The classifier did not understand the request; only a rule that names
    /// it exactly may allow it.
    UnknownNeedsExactName,
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::Principal(field) => write!(f, "the principal does not match principals.{field}"),
            Skip::Plane(Plane::Management) => {
                f.write_str("the rule lists no actions (management plane)")
            }
            Skip::Plane(Plane::Data) => f.write_str("the rule lists no data_actions (data plane)"),
            Skip::NotListed => f.write_str("the operation is not among its actions"),
            Skip::Excluded(pattern) => write!(f, "excluded by '{pattern}'"),
            Skip::OutOfScope => f.write_str("the operation is outside its scopes"),
            Skip::UnknownNeedsExactName => f.write_str(
                "the request was not classified; only a rule naming it exactly may allow it",
            ),
        }
    }
}

/// How a rule is compared with an operation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// Does the rule name *every* operation this one can stand for (to allow)?
    Covers,
    /// Does it name *any* of them (to deny or ask for approval)?
    Overlaps,
}

/// An operation prepared for matching.
pub(crate) struct Candidate<'o> {
    pub(crate) operation: &'o Operation,
    pub(crate) name: String,
    /// A name with `*`: stands for every operation it matches.
    pub(crate) is_pattern: bool,
}

impl<'o> Candidate<'o> {
    pub(crate) fn new(operation: &'o Operation) -> Self {
        let name = operation.name().to_lowercase();
        Self {
            operation,
            is_pattern: name.contains('*'),
            name,
        }
    }

    /// The provider namespace (`microsoft.compute`), unless the name is a
    /// pattern, an unclassified request, or has none.
    pub(crate) fn namespace(&self) -> Option<&str> {
        let (namespace, _) = self.name.split_once('/')?;
        (!namespace.contains('*') && !namespace.contains(' ')).then_some(namespace)
    }
}

impl Rule {
    /// The namespaces this rule can apply to (`None`: any).
    pub(crate) fn namespaces(&self) -> Option<Vec<&[u8]>> {
        let patterns = self.actions.iter().chain(&self.data_actions);
        patterns.map(OperationPattern::namespace).collect()
    }

    /// Whether this rule applies to `op` for `principal`, compared as `reach` asks.
    pub(crate) fn applies(
        &self,
        principal: &Principal,
        op: &Candidate<'_>,
        reach: Reach,
    ) -> Result<(), Skip> {
        let (listed, excluded) = match op.operation.plane() {
            Plane::Management => (&self.actions, &self.not_actions),
            Plane::Data => (&self.data_actions, &self.not_data_actions),
        };
        if listed.is_empty() {
            return Err(Skip::Plane(op.operation.plane()));
        }
        let name = op.name.as_bytes();
        let reach = if op.is_pattern { reach } else { Reach::Covers };
        let named = if op.operation.is_unknown() && reach == Reach::Covers {
            listed.iter().any(|p| p.is_literal() && p.covers(name))
        } else {
            match reach {
                Reach::Covers => listed.iter().any(|p| p.covers(name)),
                Reach::Overlaps => listed.iter().any(|p| p.overlaps(name)),
            }
        };
        if !named {
            return Err(if op.operation.is_unknown() && reach == Reach::Covers {
                Skip::UnknownNeedsExactName
            } else {
                Skip::NotListed
            });
        }
        // Selectors are cheap and, in large policies, the most selective check.
        if let Some(field) = self.principals.mismatch(principal) {
            return Err(Skip::Principal(field));
        }
        // To allow, nothing the operation stands for may be excluded; to deny,
        // an exclusion spares it only if it takes out all it stands for.
        let exclusion = match reach {
            Reach::Covers => excluded.iter().find(|p| p.overlaps(name)),
            Reach::Overlaps => excluded.iter().find(|p| p.covers(name)),
        };
        if let Some(pattern) = exclusion {
            return Err(Skip::Excluded(pattern.to_string()));
        }
        if !self.scopes.is_empty() {
            let scope = op.operation.scope().normalized();
            let inside = match reach {
                Reach::Covers => self.scopes.iter().any(|s| s.covers(scope)),
                Reach::Overlaps => self.scopes.iter().any(|s| s.overlaps(scope)),
            };
            if !inside {
                return Err(Skip::OutOfScope);
            }
        }
        Ok(())
    }
}
