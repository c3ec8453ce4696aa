//! [`MemoryApprovalStore`]: approvals in memory, for tests and single-process demos.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use airlock_core::{BoxFuture, Principal};
use tokio::sync::watch;

use crate::{
    ApprovalError, ApprovalId, ApprovalRequest, ApprovalState, ApprovalStore, Execution,
    Fingerprint, Grant, SealedRequest, StateWatchers, rules,
};

/// Approvals in a `Mutex<HashMap>`. Nothing survives a restart.
#[derive(Debug, Default)]
pub struct MemoryApprovalStore {
    entries: Mutex<HashMap<ApprovalId, Entry>>,
    watchers: StateWatchers,
}

#[derive(Debug)]
struct Entry {
    request: ApprovalRequest,
    sealed: Option<SealedRequest>,
}

type Entries = HashMap<ApprovalId, Entry>;

impl MemoryApprovalStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the approval still has a stored request (tests check that it is erased).
    pub fn has_stored_request(&self, id: ApprovalId) -> bool {
        self.lock().get(&id).is_some_and(|e| e.sealed.is_some())
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `change` on one entry under the lock, erases the stored request
    /// once the state is final, and tells the waiters.
    fn change<T>(
        &self,
        id: ApprovalId,
        change: impl FnOnce(&mut Entry) -> Result<T, ApprovalError>,
    ) -> Result<(T, ApprovalRequest), ApprovalError> {
        let (result, request) = {
            let mut entries = self.lock();
            let entry = entries.get_mut(&id).ok_or(ApprovalError::NotFound(id))?;
            let before = entry.request.state;
            let result = change(entry);
            if entry.request.state.is_final() {
                entry.sealed = None;
            }
            if entry.request.state != before {
                self.watchers.publish(id, entry.request.state);
            }
            (result, entry.request.clone())
        };
        Ok((result?, request))
    }
}

impl ApprovalStore for MemoryApprovalStore {
    fn create(
        &self,
        request: ApprovalRequest,
        sealed: Option<SealedRequest>,
    ) -> BoxFuture<'_, Result<(), ApprovalError>> {
        let result = match self.lock().entry(request.id) {
            std::collections::hash_map::Entry::Occupied(_) => {
                Err(ApprovalError::AlreadyExists(request.id))
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(Entry { request, sealed });
                Ok(())
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
        let now = SystemTime::now();
        let result = self
            .change(id, |e| {
                rules::decide(&mut e.request, approver, approve, comment, now)
            })
            .map(|((), request)| request);
        Box::pin(std::future::ready(result))
    }

    fn consume_grant<'a>(
        &'a self,
        fingerprint: &'a Fingerprint,
    ) -> BoxFuture<'a, Result<Option<ApprovalId>, ApprovalError>> {
        let now = SystemTime::now();
        let found = self
            .lock()
            .values()
            .filter(|e| {
                e.request.fingerprint == *fingerprint
                    && rules::grant_usable_by_retry(&e.request, now)
            })
            .min_by_key(|e| e.request.grant_expires_at)
            .map(|e| e.request.id);
        // Re-checked under the lock by `consume`: of two racing retries, one wins.
        let result = match found {
            Some(id) => match self.consume_now(id, now) {
                Ok(Some(grant)) => Ok(Some(grant.id)),
                Ok(None) => Ok(None),
                Err(error) => Err(error),
            },
            None => Ok(None),
        };
        Box::pin(std::future::ready(result))
    }

    fn consume(&self, id: ApprovalId) -> BoxFuture<'_, Result<Option<Grant>, ApprovalError>> {
        Box::pin(std::future::ready(self.consume_now(id, SystemTime::now())))
    }

    fn record_execution(
        &self,
        id: ApprovalId,
        execution: Execution,
    ) -> BoxFuture<'_, Result<ApprovalRequest, ApprovalError>> {
        let result = self
            .change(id, |e| {
                e.request.execution = Some(execution);
                Ok(())
            })
            .map(|((), request)| request);
        Box::pin(std::future::ready(result))
    }

    fn mark(
        &self,
        id: ApprovalId,
        state: ApprovalState,
    ) -> BoxFuture<'_, Result<ApprovalRequest, ApprovalError>> {
        let result = self
            .change(id, |e| rules::mark(&mut e.request, state))
            .map(|((), request)| request);
        Box::pin(std::future::ready(result))
    }

    fn expire_due(&self) -> BoxFuture<'_, Result<Vec<ApprovalRequest>, ApprovalError>> {
        let now = SystemTime::now();
        let due: Vec<ApprovalId> = self
            .lock()
            .values()
            .filter(|e| rules::expire_if_due(&mut e.request.clone(), now))
            .map(|e| e.request.id)
            .collect();
        let result = due
            .into_iter()
            .filter_map(|id| {
                match self.change(id, |e| Ok(rules::expire_if_due(&mut e.request, now))) {
                    Ok((true, request)) => Some(Ok(request)),
                    Ok((false, _)) => None,
                    Err(error) => Some(Err(error)),
                }
            })
            .collect();
        Box::pin(std::future::ready(result))
    }

    fn subscribe(
        &self,
        id: ApprovalId,
    ) -> BoxFuture<'_, Result<watch::Receiver<ApprovalState>, ApprovalError>> {
        let entries = self.lock();
        let result = entries
            .get(&id)
            .map(|e| self.watchers.subscribe(id, e.request.state))
            .ok_or(ApprovalError::NotFound(id));
        drop(entries);
        Box::pin(std::future::ready(result))
    }
}

impl MemoryApprovalStore {
    fn consume_now(&self, id: ApprovalId, now: SystemTime) -> Result<Option<Grant>, ApprovalError> {
        self.change(id, |e| {
            if !rules::grant_usable(&e.request, now) {
                return Ok(None);
            }
            e.request.state = ApprovalState::Consumed;
            Ok(Some(Grant {
                id,
                request: e.sealed.take(),
            }))
        })
        .map(|(grant, _)| grant)
    }
}
