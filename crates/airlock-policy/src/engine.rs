//! [`PolicyEngine`]: the extension point the policy layer asks.

use std::sync::Arc;

use airlock_core::{Decision, Operation, Principal};

/// Decides what happens to one classified request of one principal.
///
/// Implement it to plug in another policy system (OPA, Cedar, a database);
/// [`Policy`](crate::Policy) is the built-in engine. Deciding must not
/// block: it runs on every request.
///
/// ```
/// use airlock_core::{Decision, Operation, Principal};
/// use airlock_policy::PolicyEngine;
///
/// /// Reads only.
/// struct ReadOnly;
///
/// impl PolicyEngine for ReadOnly {
///     fn decide(&self, _principal: &Principal, operation: &Operation) -> Decision {
///         let reads = operation.flatten().iter().all(|op| op.name().to_ascii_lowercase().ends_with("/read"));
///         if reads {
///             Decision::Allow { rule: "read-only".into() }
///         } else {
///             Decision::Deny { rule: "read-only".into(), reason: format!("{operation} is not a read") }
///         }
///     }
/// }
/// ```
pub trait PolicyEngine: Send + Sync + 'static {
    /// The decision for `operation` (and every operation it carries).
    fn decide(&self, principal: &Principal, operation: &Operation) -> Decision;

    /// Observe mode: what the engine would have decided had its
    /// observe-only rules enforced, when that is stricter than `decided`
    /// (what [`decide`](Self::decide) said). The policy layer records it
    /// as `would_have` and lets the request go on as decided. Engines
    /// without an observe mode keep this default: `None`.
    fn observed(
        &self,
        principal: &Principal,
        operation: &Operation,
        decided: &Decision,
    ) -> Option<Decision> {
        let _ = (principal, operation, decided);
        None
    }
}

impl<E: PolicyEngine + ?Sized> PolicyEngine for Arc<E> {
    fn decide(&self, principal: &Principal, operation: &Operation) -> Decision {
        (**self).decide(principal, operation)
    }

    fn observed(
        &self,
        principal: &Principal,
        operation: &Operation,
        decided: &Decision,
    ) -> Option<Decision> {
        (**self).observed(principal, operation, decided)
    }
}
