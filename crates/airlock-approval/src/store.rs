//! [`ApprovalStore`]: where approval requests live, and the safety rules of deciding them.

use airlock_core::{BoxFuture, Principal};
use tokio::sync::watch;

use crate::{ApprovalError, ApprovalId, ApprovalRequest, ApprovalState, Fingerprint};

/// Where approval requests live.
///
/// Implementations enforce the safety rules in [`decide`](Self::decide) and
/// [`consume_grant`](Self::consume_grant) themselves, so that no caller (the
/// layer, the REST API, the CLI) can get them wrong:
///
/// - the requester can never decide their own request, even when a member of
///   an approver group ([`ApprovalError::SelfApproval`]);
/// - only the rule's approvers (groups or ids) may decide
///   ([`ApprovalError::NotAnApprover`]);
/// - each approver counts once; a request is approved when `min_approvals`
///   distinct approvers approved, and denied by any approver's denial;
/// - only a pending, unexpired request can be decided ([`ApprovalError::NotPending`]);
/// - a grant is used by exactly one request, even under concurrency.
pub trait ApprovalStore: Send + Sync + 'static {
    /// Stores a new request (normally [`ApprovalState::Pending`]).
    fn create(&self, request: ApprovalRequest) -> BoxFuture<'_, Result<(), ApprovalError>>;

    /// One request, if it exists.
    fn get(&self, id: ApprovalId) -> BoxFuture<'_, Result<Option<ApprovalRequest>, ApprovalError>>;

    /// All requests, or those in `state`, oldest first.
    fn list(
        &self,
        state: Option<ApprovalState>,
    ) -> BoxFuture<'_, Result<Vec<ApprovalRequest>, ApprovalError>>;

    /// Records `approver`'s answer and returns the request as it now stands.
    fn decide<'a>(
        &'a self,
        id: ApprovalId,
        approver: &'a Principal,
        approve: bool,
        comment: Option<String>,
    ) -> BoxFuture<'a, Result<ApprovalRequest, ApprovalError>>;

    /// Uses the grant of an approved, unexpired request with this fingerprint:
    /// it becomes [`ApprovalState::Consumed`] and its id is returned. Of many
    /// concurrent calls, exactly one gets a given grant.
    fn consume_grant<'a>(
        &'a self,
        fingerprint: &'a Fingerprint,
    ) -> BoxFuture<'a, Result<Option<ApprovalId>, ApprovalError>>;

    /// Uses the grant of this very request, if it is approved and unexpired
    /// (the held request that the approval was given for). `false` if it is
    /// not (or no longer) usable.
    fn consume(&self, id: ApprovalId) -> BoxFuture<'_, Result<bool, ApprovalError>>;

    /// Marks a pending request [`ApprovalState::Expired`] or [`ApprovalState::Abandoned`].
    fn mark(
        &self,
        id: ApprovalId,
        state: ApprovalState,
    ) -> BoxFuture<'_, Result<ApprovalRequest, ApprovalError>>;

    /// Follows a request's state: the receiver sees every change.
    fn subscribe(
        &self,
        id: ApprovalId,
    ) -> BoxFuture<'_, Result<watch::Receiver<ApprovalState>, ApprovalError>>;
}
