//! What an approval request is: who asked, for what, who may approve, and
//! where it stands.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use airlock_core::{ApprovalWait, Approvers, Operation, Principal, PrincipalKind, RevealQuorum};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

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

impl<'de> Deserialize<'de> for ApprovalId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Where an approval request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

impl FromStr for ApprovalState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ApprovalState::ALL
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!(
                    "unknown approval state '{s}'; use one of pending, approved, denied, expired, abandoned, consumed"
                )
            })
    }
}

impl ApprovalState {
    /// Every state.
    pub const ALL: [ApprovalState; 6] = [
        ApprovalState::Pending,
        ApprovalState::Approved,
        ApprovalState::Denied,
        ApprovalState::Expired,
        ApprovalState::Abandoned,
        ApprovalState::Consumed,
    ];
    /// Whether nothing can change it any more (a sealed request is erased then).
    pub fn is_final(self) -> bool {
        !matches!(self, ApprovalState::Pending | ApprovalState::Approved)
    }
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The client application (`azp`/`appid`), where the token named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// `user`, `application`, `managed_identity`, `agent`, `agent_for_user`
    /// or `agent_user` (absent on approvals stored before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The AI agent that asked (Entra Agent ID): alone (`kind` `agent` or
    /// `agent_user`), or for the user this requester names (`agent_for_user`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<airlock_core::Agent>,
}

impl Requester {
    /// Summarises a verified principal.
    pub fn from_principal(principal: &Principal) -> Self {
        Self {
            id: principal.id().to_owned(),
            tenant_id: principal.tenant_id().to_owned(),
            display_name: principal.display_name().map(str::to_owned),
            groups: principal.groups().to_vec(),
            app_id: principal.app_id().map(str::to_owned),
            kind: Some(principal.kind().as_str().to_owned()),
            agent: principal.agent().cloned(),
        }
    }
    /// Who asked, in words: the display name (else the object id), and for
    /// an AI agent which one, e.g. `agent release-bot (blueprint b1) acting
    /// for Alice` (see [`airlock_core::Agent::describe`]).
    pub fn label(&self) -> String {
        airlock_core::describe_requester(
            self.display_name.as_deref().unwrap_or(&self.id),
            self.kind.as_deref(),
            self.agent.as_ref(),
        )
    }
    /// Whether `principal` is the person an agent asked for, signed in as
    /// themselves: this requester is an agent acting for a user, and
    /// `principal` is that user (a plain user, not an agent in their name).
    pub fn is_acting_user(&self, principal: &Principal) -> bool {
        self.kind.as_deref() == Some(PrincipalKind::AgentForUser.as_str())
            && principal.kind() == PrincipalKind::User
            && self.is(principal)
    }
    /// Whether `principal` is this requester: the same object id, in any
    /// tenant (stricter than needed, as Entra object ids are unique).
    pub fn is(&self, principal: &Principal) -> bool {
        self.id.eq_ignore_ascii_case(principal.id())
    }
}

/// What was asked for, as approvers see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Whether this is the acting user's confirmation of what their own
    /// agent asked for (`confirm_by = "acting_user"`), not an approver's
    /// independent approval.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub confirmation: bool,
    /// On an approval with a [`reveal_quorum`](ApprovalRequest::reveal_quorum):
    /// whether the approver is one of the reveal rule's approvers (counts
    /// toward that quorum).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub for_reveal: bool,
    /// Whether the approver is *only* the reveal rule's: it does not count
    /// toward the operation's own quorum.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reveal_only: bool,
    /// When.
    #[serde(with = "airlock_core::serde_time::rfc3339")]
    pub at: SystemTime,
}

impl ApproverDecision {
    /// The approver's name if known, else the object id.
    pub fn approver_label(&self) -> &str {
        self.approver_name.as_deref().unwrap_or(&self.approver)
    }
    /// `approved`, `denied`, or for the acting user `confirmed`, `rejected`.
    pub fn verb(&self) -> &'static str {
        match (self.confirmation, self.approve) {
            (false, true) => "approved",
            (false, false) => "denied",
            (true, true) => "confirmed",
            (true, false) => "rejected",
        }
    }
}

/// One request waiting for (or past) a human decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The start of [`body`](Self::body): its first
    /// [`BODY_PREVIEW_BYTES`](crate::BODY_PREVIEW_BYTES), for lists and notifications.
    #[serde(default)]
    pub body_preview: Option<String>,
    /// The whole request body as approvers see it: secrets masked (only
    /// when the layer was given a previewer: an unmasked body is never
    /// kept). Kept with the approval but left out of the API's listings:
    /// `GET /api/approvals/{id}/body` serves it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The HTTP request as it will run: method, path and query, the body's
    /// length (a preview may be shorter). Absent on approvals stored before
    /// this field existed.
    #[serde(default)]
    pub request: Option<RequestLine>,
    /// What a request must match to use the grant.
    pub fingerprint: Fingerprint,
    /// Held, or answered as a long-running operation ([`ApprovalWait::Hold`]
    /// or [`ApprovalWait::Async`], never `Auto`).
    pub wait: ApprovalWait,
    /// When it was asked.
    #[serde(with = "airlock_core::serde_time::rfc3339")]
    pub created_at: SystemTime,
    /// After this it can no longer be decided.
    #[serde(with = "airlock_core::serde_time::rfc3339")]
    pub expires_at: SystemTime,
    /// How long a grant stays valid once approved.
    #[serde(rename = "grantTtlMs", with = "airlock_core::serde_time::millis")]
    pub grant_ttl: Duration,
    /// Until when the grant may be used (set on approval).
    #[serde(with = "airlock_core::serde_time::rfc3339_option", default)]
    pub grant_expires_at: Option<SystemTime>,
    /// The approvers' answers, in order.
    pub decisions: Vec<ApproverDecision>,
    /// Where it stands.
    pub state: ApprovalState,
    /// What Azure answered when an approved async request was sent.
    #[serde(default)]
    pub execution: Option<Execution>,
    /// The upstream identity the approved request runs as instead of the
    /// requester's everyday one (the rule's `elevate_to`), shown to
    /// approvers before they decide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elevate_to: Option<String>,
    /// An approval of a reveal (`x-airlock-reveal`): once approved, the
    /// answer to this one request reaches the requester unmasked. `rule`
    /// is then the reveal rule. Shown to approvers before they decide.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reveal: bool,
    /// A reveal asked for together with an operation that needs approval
    /// itself: the reveal rule's approvers, whose quorum must be met too
    /// (`rule` is then the operation's rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reveal_quorum: Option<RevealQuorum>,
    /// An approval of an *answer* (`[[answer]]`, the exfiltration guard):
    /// Azure already answered, and the answer, sealed, waits for approvers,
    /// who see this description of it (never its secrets). `rule` is then
    /// the answer rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<HeldAnswer>,
}

/// What approvers see of a held answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldAnswer {
    /// The status Azure answered with.
    pub status: u16,
    /// Its size in bytes, as it would be sent (masked).
    pub bytes: u64,
    /// Its media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// How many items its list holds, when it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<u64>,
    /// The first items' names (`name`, else the last segment of `id`), up
    /// to [`HeldAnswer::MAX_NAMES`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// How many values masking masked in it.
    pub masked: u32,
    /// How many secret values it carries in clear (a reveal rule or
    /// approval applied to it).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub revealed: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl HeldAnswer {
    /// The most item names kept.
    pub const MAX_NAMES: usize = 20;
}

/// What Azure answered when the approved request of an async approval was
/// sent upstream, and how its own operation is followed from then on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    /// When it was sent.
    #[serde(with = "airlock_core::serde_time::rfc3339")]
    pub at: SystemTime,
    /// Azure's status code (0: no answer came back).
    pub status: u16,
    /// Azure's long-running operation, if it started one.
    pub tracking: Option<Tracking>,
    /// Azure's (or Airlock's) error code, when it failed.
    pub error_code: Option<String>,
    /// The error message that came with it.
    pub error_message: Option<String>,
    /// Azure's answer, when the request completed at once (no operation of
    /// its own to follow): what the operation's `Location` URL returns. It
    /// passed the masking layer on its way back, so it is kept masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<FinalAnswer>,
}

/// Azure's final answer to an approved async request, masked: what its
/// operation's `Location` URL (`…/result`) returns once it has completed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinalAnswer {
    /// Its `Content-Type`.
    pub content_type: Option<String>,
    /// Its body (text; a binary answer is not kept).
    pub body: String,
}

/// How Azure's own long-running operation is polled: its URL's path and
/// query, which the gateway forwards upstream like any other request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "path")]
pub enum Tracking {
    /// `Azure-AsyncOperation`: answers `{"status": …}`.
    AsyncOperation(String),
    /// `Location`: 202 while running, then the final answer.
    Location(String),
}

/// The HTTP request an approval is for, as it will run; together with the
/// operation and the body it is what the grant binds (see [`Fingerprint`](crate::Fingerprint)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestLine {
    /// `PUT`, `POST`, …
    pub method: String,
    /// Path and query as sent (secrets in the query masked, as in the preview).
    pub target: String,
    /// The whole body's length in bytes (as sent; the masked body's length
    /// may differ).
    pub body_bytes: u64,
    /// The body's `Content-Type`, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The other headers that change what Azure does (`x-ms-*` but the
    /// per-call ids and date), which the grant binds too: approvers see
    /// `x-ms-delete-snapshots: include` before they approve a delete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
}

impl ApprovalRequest {
    /// Whether `principal` can approve or deny it now: it is pending and
    /// unexpired, and `principal` is one of its approvers and not its
    /// requester, or the user its agent acted for where the rule lets them
    /// confirm ([`can_confirm`](Self::can_confirm)).
    pub fn can_decide(&self, principal: &Principal, now: SystemTime) -> bool {
        self.state == ApprovalState::Pending
            && now < self.expires_at
            && (self.admits_approver(principal) && !self.requester.is(principal)
                || self.can_confirm(principal))
    }
    /// Whether `principal` is one of its approvers: the rule's, or the
    /// reveal quorum's when it has one.
    pub fn admits_approver(&self, principal: &Principal) -> bool {
        self.approvers.admits(principal)
            || self
                .reveal_quorum
                .as_ref()
                .is_some_and(|q| q.approvers.admits(principal))
    }
    /// Whether `principal` decides it by confirming, as the user its agent
    /// acted for (the rule said `confirm_by = "acting_user"`).
    pub fn can_confirm(&self, principal: &Principal) -> bool {
        self.approvers.acting_user && self.requester.is_acting_user(principal)
    }
    /// Whether `principal` may see it: one of its approvers, or the user
    /// who may confirm it.
    pub fn visible_to(&self, principal: &Principal) -> bool {
        self.admits_approver(principal) || self.can_confirm(principal)
    }
    /// The reveal rule the approval reveals under: its
    /// [`reveal_quorum`](Self::reveal_quorum)'s, or `rule` for an approval
    /// of the reveal alone; `None` when it reveals nothing.
    pub fn reveal_rule(&self) -> Option<&str> {
        if !self.reveal {
            return None;
        }
        Some(self.reveal_quorum.as_ref().map_or(&self.rule, |q| &q.rule))
    }
    /// What it approves: `answer` (an answer held by the exfiltration
    /// guard), `reveal` (an answer in clear), `quota` (a request past a
    /// quota's limit) or `request` (what a policy rule holds).
    pub fn kind(&self) -> &'static str {
        if self.answer.is_some() {
            "answer"
        } else if self.reveal {
            "reveal"
        } else if self.rule.starts_with(airlock_core::QUOTA_RULE_PREFIX) {
            "quota"
        } else {
            "request"
        }
    }
    /// Whether its approvals suffice: `min_approvals` of the operation's
    /// approvers (or the acting user's confirmation), and, when it reveals
    /// under a [`reveal_quorum`](Self::reveal_quorum), that quorum's number
    /// of the reveal rule's approvers.
    pub fn quorum_met(&self) -> bool {
        let enough = |n: usize, min: u32| n >= min.max(1) as usize;
        let operation =
            self.confirmation().is_some() || enough(self.operation_approvals(), self.min_approvals);
        let reveal = self
            .reveal_quorum
            .as_ref()
            .is_none_or(|q| enough(self.reveal_approvals(), q.min_approvals));
        operation && reveal
    }
    /// How many distinct approvers approved for the operation's rule.
    pub fn operation_approvals(&self) -> usize {
        self.approved_by().iter().filter(|d| !d.reveal_only).count()
    }
    /// How many distinct approvers of the [`reveal_quorum`](Self::reveal_quorum) approved.
    pub fn reveal_approvals(&self) -> usize {
        self.approved_by().iter().filter(|d| d.for_reveal).count()
    }
    /// The acting user's confirmation, if they confirmed.
    pub fn confirmation(&self) -> Option<&ApproverDecision> {
        self.decisions.iter().find(|d| d.confirmation && d.approve)
    }
    /// The distinct approvers who approved, in order (confirmations are not
    /// approvals: see [`confirmation`](Self::confirmation)).
    pub fn approved_by(&self) -> Vec<&ApproverDecision> {
        let mut seen: Vec<&ApproverDecision> = Vec::new();
        for d in self
            .decisions
            .iter()
            .filter(|d| d.approve && !d.confirmation)
        {
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
