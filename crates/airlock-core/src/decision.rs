//! What policy decided about a request.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Who may approve a request that needs approval.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approvers {
    /// Entra group object ids whose members may approve.
    pub groups: Vec<String>,
    /// Principal object ids that may approve.
    pub ids: Vec<String>,
    /// Whether the user an agent acts for may confirm the agent's request
    /// themselves (`confirm_by = "acting_user"`): a confirmation, recorded
    /// as such, that stands instead of the approvers' approval.
    #[serde(
        default,
        skip_serializing_if = "std::ops::Not::not",
        rename = "actingUser"
    )]
    pub acting_user: bool,
}

impl Approvers {
    /// Whether `principal` is listed by object id or is a member of a listed
    /// group (ids compare case-insensitively), and is no AI agent. Says
    /// nothing about whether they asked for the request themselves.
    ///
    /// ```
    /// use airlock_core::{Approvers, Principal, PrincipalKind};
    /// let approvers = Approvers { groups: vec!["ops".into()], ids: vec!["carol".into()], ..Approvers::default() };
    /// assert!(approvers.admits(&Principal::builder("CAROL", PrincipalKind::User).build()));
    /// assert!(approvers.admits(&Principal::builder("dave", PrincipalKind::User).groups(["ops"]).build()));
    /// assert!(!approvers.admits(&Principal::builder("eve", PrincipalKind::User).build()));
    /// let bot = Principal::builder("carol", PrincipalKind::AgentForUser).groups(["ops"]).build();
    /// assert!(!approvers.admits(&bot));
    /// ```
    pub fn admits(&self, principal: &crate::Principal) -> bool {
        // An agent decides nothing for people: not acting alone, not for a
        // user (who must sign in themselves), not as an agent user.
        !principal.kind().is_agent()
            && (self
                .ids
                .iter()
                .any(|id| id.eq_ignore_ascii_case(principal.id()))
                || self.groups.iter().any(|g| principal.in_group(g)))
    }
}

/// How a request that needs approval waits for it.
///
/// ```
/// use airlock_core::ApprovalWait;
///
/// // Auto: PUT, PATCH and DELETE on the management plane are long-running in
/// // Azure, so they wait as an operation the SDK polls; everything else is held.
/// assert_eq!(ApprovalWait::Auto.resolve(&http::Method::PUT, true), ApprovalWait::Async);
/// assert_eq!(ApprovalWait::Auto.resolve(&http::Method::POST, true), ApprovalWait::Hold);
/// assert_eq!(ApprovalWait::Auto.resolve(&http::Method::DELETE, false), ApprovalWait::Hold);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ApprovalWait {
    /// `Async` for PUT, PATCH and DELETE on the management plane, else `Hold`.
    #[default]
    Auto,
    /// Hold the HTTP request open (up to the rule's `hold`).
    Hold,
    /// Answer `202 Accepted` at once with an operation URL the client polls.
    Async,
}

impl ApprovalWait {
    /// `Hold` or `Async` for a request with this method, on the management
    /// plane or not (Key Vault's data plane has no long-running operations).
    pub fn resolve(self, method: &http::Method, management: bool) -> Self {
        match self {
            ApprovalWait::Auto
                if management
                    && matches!(
                        *method,
                        http::Method::PUT | http::Method::PATCH | http::Method::DELETE
                    ) =>
            {
                ApprovalWait::Async
            }
            ApprovalWait::Auto => ApprovalWait::Hold,
            explicit => explicit,
        }
    }
}

/// How the rule of an approval asked for by a `[[quota]]` past its limit
/// begins (`quota:<name>`), so approvals and errors name the quota.
pub const QUOTA_RULE_PREFIX: &str = "quota:";

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
        /// Held, or answered as a long-running operation.
        wait: ApprovalWait,
        /// The upstream identity the approved request runs as, instead of
        /// the requester's everyday one (just-in-time elevation).
        #[serde(skip_serializing_if = "Option::is_none")]
        elevate_to: Option<String>,
    },
}

/// Put in an approved request's extensions by the approval layer when the
/// rule named an `elevate_to` identity: this request, and only it, is sent
/// upstream with that identity's token.
///
/// ```
/// use airlock_core::Elevation;
/// let elevation = Elevation { identity: "contributor".into(), approval_id: "a-1".into() };
/// assert_eq!(elevation.to_string(), "contributor (approval a-1)");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Elevation {
    /// The upstream identity's name (`[[upstream.identities]] name`).
    pub identity: String,
    /// The approval that granted it.
    pub approval_id: String,
}

impl std::fmt::Display for Elevation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (approval {})", self.identity, self.approval_id)
    }
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
                acting_user: false,
            },
            min_approvals: 1,
            justification_required: true,
            hold: Duration::from_secs(30),
            ttl: Duration::from_secs(600),
            wait: ApprovalWait::Auto,
            elevate_to: None,
        };
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["effect"], "requireApproval");
        assert_eq!(json["hold"], 30);
        assert_eq!(json["minApprovals"], 1);
        assert_eq!(d.rule(), "storage-needs-approval");
    }
}
