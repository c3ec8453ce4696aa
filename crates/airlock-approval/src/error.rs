//! [`ApprovalError`]: why an approval store refused or failed.

use crate::{ApprovalId, ApprovalState};

/// Why an [`ApprovalStore`](crate::ApprovalStore) refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApprovalError {
    /// No approval request has this id.
    #[error("approval {0} does not exist")]
    NotFound(ApprovalId),
    /// An approval request with this id exists already.
    #[error("approval {0} exists already")]
    AlreadyExists(ApprovalId),
    /// The requester tried to approve (or deny) their own request.
    #[error("approval {0}: the requester cannot decide their own request")]
    SelfApproval(ApprovalId),
    /// The principal is not among the rule's approvers.
    #[error("approval {id}: {principal} is not an approver for rule '{rule}'")]
    NotAnApprover {
        /// The approval.
        id: ApprovalId,
        /// Who tried.
        principal: String,
        /// The rule naming the approvers.
        rule: String,
    },
    /// The approval request is no longer waiting for a decision.
    #[error("approval {id} is {state}, not pending; it can no longer be decided")]
    NotPending {
        /// The approval.
        id: ApprovalId,
        /// Its state.
        state: ApprovalState,
    },
    /// `mark` was asked for a state other than expired or abandoned.
    #[error("approval {id} cannot be marked {state}; only expired or abandoned")]
    InvalidTransition {
        /// The approval.
        id: ApprovalId,
        /// The state asked for.
        state: ApprovalState,
    },
    /// The store keeps a floor of free disk space and has reached it: new
    /// approvals are refused, reads and decisions still work.
    #[error(
        "the approval store's disk has {free} bytes free, at or below its floor of {floor}: new approvals are refused until space is freed (or the floor, [store] min_free_bytes, lowered); pending ones can still be decided"
    )]
    NoSpace {
        /// Bytes free for the store's file.
        free: u64,
        /// The configured floor.
        floor: u64,
    },
    /// The store cannot be reached (its database is down): the caller
    /// fails closed with a 503, and may come back.
    #[error("approval store unavailable: {0}")]
    Unavailable(String),
    /// The store itself failed.
    #[error("approval store failed: {0}")]
    Store(String),
}

impl ApprovalError {
    /// What a client gets when the store failed: 503 when the refusal is
    /// temporary (out of space, database unavailable), else 500.
    pub(crate) fn refusal(&self) -> airlock_core::AirlockError {
        use http::StatusCode;
        let code = match self {
            ApprovalError::NoSpace { .. } => "AirlockApprovalStoreFull",
            ApprovalError::Unavailable(_) => "AirlockStoreUnavailable",
            _ => {
                return airlock_core::AirlockError::Internal(format!(
                    "approval store failed: {self}"
                ));
            }
        };
        airlock_core::AirlockError::custom(StatusCode::SERVICE_UNAVAILABLE, code, self.to_string())
    }
}
