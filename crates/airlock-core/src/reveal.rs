//! Reveal: one answer that reaches the client unmasked, because a rule or
//! a human allowed it.

/// The response header that says how many values the masking layer masked
/// in the body (`0` when it looked and found none); absent on answers it
/// did not read.
pub const MASKED_HEADER: &str = "x-airlock-masked";

/// The request header with which an agent asks for one answer in clear,
/// saying why: `x-airlock-reveal: <justification>`. Without a reveal rule
/// that lets the request through (by itself or by approval), it is refused.
pub const REVEAL_HEADER: &str = "x-airlock-reveal";

/// The response header that says how many values reached the client in
/// clear (absent when none did).
pub const REVEALED_HEADER: &str = "x-airlock-revealed";

/// Put in a request's extensions by the reveal step when the request asks
/// for its answer in clear and the reveal rule says a human must agree: the
/// approval layer marks the approval it opens as a reveal, and shows the
/// justification to approvers.
///
/// ```
/// use airlock_core::RevealAsked;
/// let asked = RevealAsked { justification: "rotate the pipeline's connection string".into(), quorum: None };
/// assert!(!asked.justification.is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevealAsked {
    /// Why the agent needs the value (the header's text).
    pub justification: String,
    /// When the operation itself already needs approval (its decision is
    /// the policy's `RequireApproval`), the reveal rule's approvers: the one
    /// approval then needs both quorums, the operation's and this one.
    /// `None` when the decision is the reveal rule's own.
    pub quorum: Option<RevealQuorum>,
}

/// The reveal rule's approvers on an approval that is asked for the
/// operation too: it is approved only when the operation's approvers and
/// these have each given their number of approvals (one person entitled to
/// both counts for both).
///
/// ```
/// use airlock_core::{Approvers, RevealQuorum};
/// let quorum = RevealQuorum {
///     rule: "pipeline-secrets".into(),
///     approvers: Approvers { groups: vec!["secret-keepers".into()], ..Approvers::default() },
///     min_approvals: 1,
/// };
/// assert_eq!(quorum.min_approvals, 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevealQuorum {
    /// The reveal rule (`[[masking.reveal]]`) that asked for it.
    pub rule: String,
    /// Who may approve the reveal.
    pub approvers: crate::Approvers,
    /// How many distinct approvers among them must approve.
    pub min_approvals: u32,
}

/// Put in an approved request's extensions by the approval layer when its
/// approval was for a reveal: the masking layer sends this one answer in
/// clear. A retry without a new approval gets the mask again.
///
/// ```
/// use airlock_core::RevealGrant;
/// let grant = RevealGrant { approval_id: "a-1".into(), rule: "pipeline-secrets".into() };
/// assert_eq!(grant.to_string(), "approval a-1 (rule 'pipeline-secrets')");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevealGrant {
    /// The approval that granted it.
    pub approval_id: String,
    /// The reveal rule the approval was asked under.
    pub rule: String,
}

impl std::fmt::Display for RevealGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "approval {} (rule '{}')", self.approval_id, self.rule)
    }
}
