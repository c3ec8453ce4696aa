//! [`ApprovalStore`]: where approval requests live, and the safety rules of deciding them.

use airlock_core::{BoxFuture, Principal};
use tokio::sync::watch;

use crate::{
    ApprovalError, ApprovalId, ApprovalRequest, ApprovalState, Execution, Fingerprint,
    SealedRequest,
};

/// What using a grant gives: the approval's stored request, for an async
/// approval (a held one has none: the request is still in hand).
#[derive(Debug)]
pub struct Grant {
    /// The approval whose grant was used.
    pub id: ApprovalId,
    /// The encrypted request to send, taken out of the store (it is erased there).
    pub request: Option<SealedRequest>,
}

/// Where approval requests live.
///
/// Implementations apply the [`rules`](crate::rules) inside their own
/// transaction, so that no caller (the layer, the REST API, the CLI) can get
/// them wrong:
///
/// - the requester can never decide their own request, even when a member of
///   an approver group ([`ApprovalError::SelfApproval`]);
/// - only the rule's approvers (groups or ids) may decide
///   ([`ApprovalError::NotAnApprover`]);
/// - each approver counts once; a request is approved when `min_approvals`
///   distinct approvers approved, and denied by any approver's denial;
/// - only a pending, unexpired request can be decided ([`ApprovalError::NotPending`]);
/// - a grant is used by exactly one request, even under concurrency;
/// - a stored request exists only while its approval is pending or
///   approved: it is erased when the grant is used, and on denial, expiry or
///   abandonment.
pub trait ApprovalStore: Send + Sync + 'static {
    /// Stores a new request (normally [`ApprovalState::Pending`]), with the
    /// encrypted request to send once approved (async approvals).
    fn create(
        &self,
        request: ApprovalRequest,
        sealed: Option<SealedRequest>,
    ) -> BoxFuture<'_, Result<(), ApprovalError>>;

    /// One request, if it exists.
    fn get(&self, id: ApprovalId) -> BoxFuture<'_, Result<Option<ApprovalRequest>, ApprovalError>>;

    /// All requests, or those in `state`, oldest first.
    fn list(
        &self,
        state: Option<ApprovalState>,
    ) -> BoxFuture<'_, Result<Vec<ApprovalRequest>, ApprovalError>>;

    /// Records `approver`'s answer ([`rules::decide`](crate::rules::decide))
    /// and returns the request as it now stands.
    fn decide<'a>(
        &'a self,
        id: ApprovalId,
        approver: &'a Principal,
        approve: bool,
        comment: Option<String>,
    ) -> BoxFuture<'a, Result<ApprovalRequest, ApprovalError>>;

    /// Uses the grant of an approved, unexpired, *held* approval with this
    /// fingerprint ([`rules::grant_usable_by_retry`](crate::rules::grant_usable_by_retry)):
    /// it becomes [`ApprovalState::Consumed`] and its id is returned. Of many
    /// concurrent calls, exactly one gets a given grant.
    fn consume_grant<'a>(
        &'a self,
        fingerprint: &'a Fingerprint,
    ) -> BoxFuture<'a, Result<Option<ApprovalId>, ApprovalError>>;

    /// Uses the grant of this very approval, if it is approved and unexpired:
    /// it becomes [`ApprovalState::Consumed`], and its stored request is
    /// handed over and erased. `None` if it is not (or no longer) usable.
    fn consume(&self, id: ApprovalId) -> BoxFuture<'_, Result<Option<Grant>, ApprovalError>>;

    /// Records what Azure answered to the approved request of an async approval.
    fn record_execution(
        &self,
        id: ApprovalId,
        execution: Execution,
    ) -> BoxFuture<'_, Result<ApprovalRequest, ApprovalError>>;

    /// Marks a pending request [`ApprovalState::Expired`] or
    /// [`ApprovalState::Abandoned`] ([`rules::mark`](crate::rules::mark)).
    fn mark(
        &self,
        id: ApprovalId,
        state: ApprovalState,
    ) -> BoxFuture<'_, Result<ApprovalRequest, ApprovalError>>;

    /// Expires every request that is due ([`rules::expire_if_due`](crate::rules::expire_if_due)),
    /// erasing their stored requests, and returns them.
    fn expire_due(&self) -> BoxFuture<'_, Result<Vec<ApprovalRequest>, ApprovalError>>;

    /// Follows a request's state: the receiver sees every change made
    /// through this store.
    fn subscribe(
        &self,
        id: ApprovalId,
    ) -> BoxFuture<'_, Result<watch::Receiver<ApprovalState>, ApprovalError>>;
}
