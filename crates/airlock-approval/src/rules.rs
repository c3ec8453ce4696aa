//! The safety rules of deciding and using approvals, as pure functions over
//! one [`ApprovalRequest`], so every [`ApprovalStore`](crate::ApprovalStore)
//! applies the very same rules inside its own transaction.

use std::time::SystemTime;

use airlock_core::{ApprovalWait, Principal};

use crate::approval::later;
use crate::{ApprovalError, ApprovalRequest, ApprovalState, ApproverDecision};

/// Records `approver`'s answer on `request` at `now`, enforcing:
///
/// - only a pending, unexpired request can be decided (an expired one
///   becomes [`ApprovalState::Expired`] here, and the error says so);
/// - the requester never decides their own request, even as a member of an
///   approver group, nor does the user an agent acted for (no self-approval
///   through delegation), unless the rule lets that user confirm
///   (`confirm_by = "acting_user"`): then their answer is recorded as a
///   confirmation, and a confirmation approves at once;
/// - only the rule's approvers (ids or groups) decide otherwise, and on an
///   approval that reveals too, the reveal rule's approvers;
/// - each approver counts once; `min_approvals` distinct approvals approve
///   (and the reveal quorum's number of its approvers, when there is one:
///   one person entitled to both counts for both), any denial denies.
///
/// On approval the grant's expiry is set from `grant_ttl`.
///
/// Tested through every store in `tests/approval.rs` and `airlock-store`.
pub fn decide(
    request: &mut ApprovalRequest,
    approver: &Principal,
    approve: bool,
    comment: Option<String>,
    now: SystemTime,
) -> Result<(), ApprovalError> {
    let id = request.id;
    expire_if_due(request, now);
    if request.state != ApprovalState::Pending {
        return Err(ApprovalError::NotPending {
            id,
            state: request.state,
        });
    }
    let confirmation = request.can_confirm(approver);
    if request.requester.is(approver) && !confirmation {
        return Err(ApprovalError::SelfApproval(id));
    }
    let for_operation = confirmation || request.approvers.admits(approver);
    // The acting user's confirmation stands for the operation's approvers
    // only, never for a reveal's.
    let for_reveal = !confirmation
        && request
            .reveal_quorum
            .as_ref()
            .is_some_and(|q| q.approvers.admits(approver));
    if !for_operation && !for_reveal {
        return Err(ApprovalError::NotAnApprover {
            id,
            principal: approver.to_string(),
            rule: request.rule.clone(),
        });
    }
    let already_approved = request
        .approved_by()
        .iter()
        .any(|d| d.approver.eq_ignore_ascii_case(approver.id()));
    if approve && already_approved {
        // Each approver counts once.
        return Ok(());
    }
    request.decisions.push(ApproverDecision {
        approver: approver.id().to_owned(),
        approver_name: approver.display_name().map(str::to_owned),
        approve,
        comment,
        confirmation,
        for_reveal,
        reveal_only: !for_operation,
        at: now,
    });
    if !approve {
        request.state = ApprovalState::Denied;
    } else if request.quorum_met() {
        request.grant_expires_at = Some(later(now, request.grant_ttl));
        request.state = ApprovalState::Approved;
    }
    Ok(())
}

/// Whether the request's grant can be used at `now`: approved, and within
/// the grant's TTL.
pub fn grant_usable(request: &ApprovalRequest, now: SystemTime) -> bool {
    request.state == ApprovalState::Approved && request.grant_expires_at.is_some_and(|t| now < t)
}

/// Whether a retry with the same fingerprint may use this grant: only held
/// approvals are. An async approval's grant belongs to its operation, which
/// sends the stored request itself.
pub fn grant_usable_by_retry(request: &ApprovalRequest, now: SystemTime) -> bool {
    request.wait == ApprovalWait::Hold && grant_usable(request, now)
}

/// Marks a pending request past its expiry, or an approved one whose grant
/// ran out unused, [`ApprovalState::Expired`]; `true` if it changed.
pub fn expire_if_due(request: &mut ApprovalRequest, now: SystemTime) -> bool {
    let due = match request.state {
        ApprovalState::Pending => now >= request.expires_at,
        ApprovalState::Approved => !grant_usable(request, now),
        _ => false,
    };
    if due {
        request.state = ApprovalState::Expired;
    }
    due
}

/// Checks that `state` is one [`mark`](crate::ApprovalStore::mark) may set
/// on `request` (expired or abandoned, from pending), and sets it.
pub fn mark(request: &mut ApprovalRequest, state: ApprovalState) -> Result<(), ApprovalError> {
    let id = request.id;
    if !matches!(state, ApprovalState::Expired | ApprovalState::Abandoned) {
        return Err(ApprovalError::InvalidTransition { id, state });
    }
    if request.state != ApprovalState::Pending {
        return Err(ApprovalError::NotPending {
            id,
            state: request.state,
        });
    }
    request.state = state;
    Ok(())
}
