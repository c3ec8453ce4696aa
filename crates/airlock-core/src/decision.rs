//! What policy decided about a request.

use std::time::Duration;

use serde::Serialize;

/// Who may approve a request that needs approval.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Approvers {
    /// Entra group object ids whose members may approve.
    pub groups: Vec<String>,
    /// Principal object ids that may approve.
    pub ids: Vec<String>,
}

/// The outcome of policy for one request, put in the request's extensions.
///
/// The gateway's upstream service forwards only a request whose decision is
/// [`Decision::Allow`] (or that an approval admitted): a request without a
/// decision is refused, so a missing or misordered layer fails closed.
///
/// ```
/// use airlock_core::Decision;
///
/// let d = Decision::Deny { rule: "no-vm-delete".into(), reason: "blocked".into() };
/// assert_eq!(d.rule(), "no-vm-delete");
/// assert!(!d.is_allow());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "effect", rename_all = "camelCase")]
pub enum Decision {
    /// Forward the request.
    Allow {
        /// The rule that allowed it.
        rule: String,
    },
    /// Refuse the request.
    Deny {
        /// The rule that denied it (or a built-in reason such as `no-matching-rule`).
        rule: String,
        /// Why, in words an agent can repeat to its user.
        reason: String,
    },
    /// Hold the request until a human approves it.
    #[serde(rename_all = "camelCase")]
    RequireApproval {
        /// The rule that asked for approval.
        rule: String,
        /// Who may approve.
        approvers: Approvers,
        /// How many distinct approvers are needed.
        min_approvals: u32,
        /// Whether the requester must give a justification.
        justification_required: bool,
        /// How long a request is held open while waiting.
        #[serde(with = "secs")]
        hold: Duration,
        /// How long an approval stays valid.
        #[serde(with = "secs")]
        ttl: Duration,
    },
}

impl Decision {
    /// The rule behind the decision.
    pub fn rule(&self) -> &str {
        match self {
            Decision::Allow { rule }
            | Decision::Deny { rule, .. }
            | Decision::RequireApproval { rule, .. } => rule,
        }
    }
    /// Whether the request may be forwarded as it is.
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }
}

mod secs {
    use std::time::Duration;

    pub(super) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_with_effect_tag() {
        let d = Decision::RequireApproval {
            rule: "storage-needs-approval".into(),
            approvers: Approvers {
                groups: vec!["ops".into()],
                ids: vec![],
            },
            min_approvals: 1,
            justification_required: true,
            hold: Duration::from_secs(30),
            ttl: Duration::from_secs(600),
        };
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["effect"], "requireApproval");
        assert_eq!(json["hold"], 30);
        assert_eq!(json["minApprovals"], 1);
        assert_eq!(d.rule(), "storage-needs-approval");
    }
}
