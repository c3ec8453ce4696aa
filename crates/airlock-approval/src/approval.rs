//! What an approval request is: who asked, for what, who may approve, and
//! where it stands.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use airlock_core::{Approvers, Operation, Principal};
use serde::{Serialize, Serializer};

use crate::Fingerprint;

/// The id of one approval request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApprovalId(uuid::Uuid);

impl ApprovalId {
    /// A new random id.
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4())
    }
    /// The id as a UUID.
    pub fn as_uuid(&self) -> &uuid::Uuid {
        &self.0
    }
}

impl Default for ApprovalId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ApprovalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for ApprovalId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s).map(Self)
    }
}

impl Serialize for ApprovalId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// Where an approval request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ApprovalState {
    /// Waiting for approvers.
    Pending,
    /// Enough approvers approved: a grant for one matching request.
    Approved,
    /// An approver denied it.
    Denied,
    /// Nobody decided in time.
    Expired,
    /// The held client went away before a decision.
    Abandoned,
    /// Approved, and the grant was used by a request.
    Consumed,
}

impl ApprovalState {
    /// The lower-case name used in APIs and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Denied => "denied",
            ApprovalState::Expired => "expired",
            ApprovalState::Abandoned => "abandoned",
            ApprovalState::Consumed => "consumed",
        }
    }
}

impl fmt::Display for ApprovalState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who asked, as approvers see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Requester {
    /// Object id.
    pub id: String,
    /// Tenant id.
    pub tenant_id: String,
    /// Display name, where the token carried one.
    pub display_name: Option<String>,
    /// Group object ids.
    pub groups: Vec<String>,
}

impl Requester {
    /// Summarises a verified principal.
    pub fn from_principal(principal: &Principal) -> Self {
        Self {
            id: principal.id().to_owned(),
            tenant_id: principal.tenant_id().to_owned(),
            display_name: principal.display_name().map(str::to_owned),
            groups: principal.groups().to_vec(),
        }
    }
    /// Whether `principal` is this requester: the same object id, in any
    /// tenant (stricter than needed, as Entra object ids are unique).
    pub fn is(&self, principal: &Principal) -> bool {
        self.id.eq_ignore_ascii_case(principal.id())
    }
}

/// What was asked for, as approvers see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestedOperation {
    /// The RBAC operation name.
    pub name: String,
    /// The resource scope, as the client spelled it.
    pub scope: String,
    /// The names of the operations it carries (`/batch`, deployments), depth first.
    pub children: Vec<String>,
}

impl RequestedOperation {
    /// Summarises a classified operation.
    pub fn from_operation(operation: &Operation) -> Self {
        Self {
            name: operation.name().to_owned(),
            scope: operation.scope().as_str().to_owned(),
            children: operation
                .flatten()
                .into_iter()
                .skip(1)
                .map(|op| op.name().to_owned())
                .collect(),
        }
    }
}

/// One approver's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApproverDecision {
    /// The approver's object id.
    pub approver: String,
    /// The approver's display name, where known.
    pub approver_name: Option<String>,
    /// Approve (`true`) or deny.
    pub approve: bool,
    /// The approver's comment (the reason, on a denial).
    pub comment: Option<String>,
    /// When.
    pub at: SystemTime,
}

impl ApproverDecision {
    /// The approver's name if known, else the object id.
    pub fn approver_label(&self) -> &str {
        self.approver_name.as_deref().unwrap_or(&self.approver)
    }
}

/// One request waiting for (or past) a human decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRequest {
    /// Its id.
    pub id: ApprovalId,
    /// Who asked.
    pub requester: Requester,
    /// What for.
    pub operation: RequestedOperation,
    /// The policy rule that asked for approval.
    pub rule: String,
    /// Who may approve.
    pub approvers: Approvers,
    /// How many distinct approvers must approve.
    pub min_approvals: u32,
    /// Whether the rule asked for a justification.
    pub justification_required: bool,
    /// The requester's justification (`x-airlock-justification`).
    pub justification: Option<String>,
    /// What a request must match to use the grant.
    pub fingerprint: Fingerprint,
    /// When it was asked.
    pub created_at: SystemTime,
    /// After this it can no longer be decided.
    pub expires_at: SystemTime,
    /// How long a grant stays valid once approved.
    #[serde(skip)]
    pub grant_ttl: Duration,
    /// Until when the grant may be used (set on approval).
    pub grant_expires_at: Option<SystemTime>,
    /// The approvers' answers, in order.
    pub decisions: Vec<ApproverDecision>,
    /// Where it stands.
    pub state: ApprovalState,
}

impl ApprovalRequest {
    /// The distinct approvers who approved, in order.
    pub fn approved_by(&self) -> Vec<&ApproverDecision> {
        let mut seen: Vec<&ApproverDecision> = Vec::new();
        for d in self.decisions.iter().filter(|d| d.approve) {
            if !seen
                .iter()
                .any(|s| s.approver.eq_ignore_ascii_case(&d.approver))
            {
                seen.push(d);
            }
        }
        seen
    }
    /// The decision that denied it, if one did.
    pub fn denial(&self) -> Option<&ApproverDecision> {
        self.decisions.iter().find(|d| !d.approve)
    }
}

/// `at + duration`, saturating far in the future instead of panicking.
pub(crate) fn later(at: SystemTime, duration: Duration) -> SystemTime {
    at.checked_add(duration)
        .unwrap_or_else(|| at + Duration::from_secs(100 * 365 * 24 * 3600))
}
