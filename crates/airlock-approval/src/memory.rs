//! [`MemoryApprovalStore`]: approvals in memory, for tests and single-process demos.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use airlock_core::{BoxFuture, Principal};
use tokio::sync::watch;

use crate::approval::later;
use crate::{
    ApprovalError, ApprovalId, ApprovalRequest, ApprovalState, ApprovalStore, ApproverDecision,
    Fingerprint,
};

/// Approvals in a `Mutex<HashMap>`; every change goes out on a watch channel.
/// Nothing survives a restart.
#[derive(Debug, Default)]
pub struct MemoryApprovalStore {
    entries: Mutex<HashMap<ApprovalId, Entry>>,
}

#[derive(Debug)]
struct Entry {
    request: ApprovalRequest,
    state: watch::Sender<ApprovalState>,
}

impl Entry {
    fn set(&mut self, state: ApprovalState) {
        self.request.state = state;
        self.state.send_replace(state);
    }
}

impl MemoryApprovalStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ApprovalId, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn decide_now(
        &self,
        id: ApprovalId,
        approver: &Principal,
        approve: bool,
        comment: Option<String>,
        now: SystemTime,
    ) -> Result<ApprovalRequest, ApprovalError> {
        let mut entries = self.lock();
        let entry = entries.get_mut(&id).ok_or(ApprovalError::NotFound(id))?;
        let request = &entry.request;
        if request.state == ApprovalState::Pending && now >= request.expires_at {
            entry.set(ApprovalState::Expired);
        }
        let request = &entry.request;
        if request.state != ApprovalState::Pending {
            return Err(ApprovalError::NotPending {
                id,
                state: request.state,
            });
        }
        if request.requester.is(approver) {
            return Err(ApprovalError::SelfApproval(id));
        }
        let eligible = request
            .approvers
            .ids
            .iter()
            .any(|a| a.eq_ignore_ascii_case(approver.id()))
            || request
                .approvers
                .groups
                .iter()
                .any(|g| approver.in_group(g));
        if !eligible {
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
            return Ok(entry.request.clone());
        }
        entry.request.decisions.push(ApproverDecision {
            approver: approver.id().to_owned(),
            approver_name: approver.display_name().map(str::to_owned),
            approve,
            comment,
            at: now,
        });
        if !approve {
            entry.set(ApprovalState::Denied);
        } else if entry.request.approved_by().len() >= entry.request.min_approvals.max(1) as usize {
            entry.request.grant_expires_at = Some(later(now, entry.request.grant_ttl));
            entry.set(ApprovalState::Approved);
        }
        Ok(entry.request.clone())
    }
}

fn grant_usable(request: &ApprovalRequest, now: SystemTime) -> bool {
    request.state == ApprovalState::Approved && request.grant_expires_at.is_some_and(|t| now < t)
}

impl ApprovalStore for MemoryApprovalStore {
    fn create(&self, request: ApprovalRequest) -> BoxFuture<'_, Result<(), ApprovalError>> {
        let result = {
            match self.lock().entry(request.id) {
                std::collections::hash_map::Entry::Occupied(_) => {
                    Err(ApprovalError::AlreadyExists(request.id))
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    let (state, _) = watch::channel(request.state);
                    slot.insert(Entry { request, state });
                    Ok(())
                }
            }
        };
        Box::pin(std::future::ready(result))
    }

    fn get(&self, id: ApprovalId) -> BoxFuture<'_, Result<Option<ApprovalRequest>, ApprovalError>> {
        let found = self.lock().get(&id).map(|e| e.request.clone());
        Box::pin(std::future::ready(Ok(found)))
    }

    fn list(
        &self,
        state: Option<ApprovalState>,
    ) -> BoxFuture<'_, Result<Vec<ApprovalRequest>, ApprovalError>> {
        let mut found: Vec<ApprovalRequest> = self
            .lock()
            .values()
            .filter(|e| state.is_none_or(|s| e.request.state == s))
            .map(|e| e.request.clone())
            .collect();
        found.sort_by_key(|r| r.created_at);
        Box::pin(std::future::ready(Ok(found)))
    }

    fn decide<'a>(
        &'a self,
        id: ApprovalId,
        approver: &'a Principal,
        approve: bool,
        comment: Option<String>,
    ) -> BoxFuture<'a, Result<ApprovalRequest, ApprovalError>> {
        let result = self.decide_now(id, approver, approve, comment, SystemTime::now());
        Box::pin(std::future::ready(result))
    }

    fn consume_grant<'a>(
        &'a self,
        fingerprint: &'a Fingerprint,
    ) -> BoxFuture<'a, Result<Option<ApprovalId>, ApprovalError>> {
        let now = SystemTime::now();
        let consumed = {
            let mut entries = self.lock();
            let found = entries
                .values_mut()
                .filter(|e| e.request.fingerprint == *fingerprint && grant_usable(&e.request, now))
                .min_by_key(|e| e.request.grant_expires_at);
            found.map(|e| {
                e.set(ApprovalState::Consumed);
                e.request.id
            })
        };
        Box::pin(std::future::ready(Ok(consumed)))
    }

    fn consume(&self, id: ApprovalId) -> BoxFuture<'_, Result<bool, ApprovalError>> {
        let now = SystemTime::now();
        let result = match self.lock().get_mut(&id) {
            None => Err(ApprovalError::NotFound(id)),
            Some(e) if grant_usable(&e.request, now) => {
                e.set(ApprovalState::Consumed);
                Ok(true)
            }
            Some(_) => Ok(false),
        };
        Box::pin(std::future::ready(result))
    }

    fn mark(
        &self,
        id: ApprovalId,
        state: ApprovalState,
    ) -> BoxFuture<'_, Result<ApprovalRequest, ApprovalError>> {
        let result = (|| {
            if !matches!(state, ApprovalState::Expired | ApprovalState::Abandoned) {
                return Err(ApprovalError::InvalidTransition { id, state });
            }
            let mut entries = self.lock();
            let entry = entries.get_mut(&id).ok_or(ApprovalError::NotFound(id))?;
            if entry.request.state != ApprovalState::Pending {
                return Err(ApprovalError::NotPending {
                    id,
                    state: entry.request.state,
                });
            }
            entry.set(state);
            Ok(entry.request.clone())
        })();
        Box::pin(std::future::ready(result))
    }

    fn subscribe(
        &self,
        id: ApprovalId,
    ) -> BoxFuture<'_, Result<watch::Receiver<ApprovalState>, ApprovalError>> {
        let result = self
            .lock()
            .get(&id)
            .map(|e| e.state.subscribe())
            .ok_or(ApprovalError::NotFound(id));
        Box::pin(std::future::ready(result))
    }
}
