//! The audit draft every layer fills in and the recorder writes out.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::Serialize;

use crate::{Decision, Operation, Principal};

/// What the layers learned about one request, in the order they learned it.
///
/// Bodies stored here must already be masked: the recorder writes them as they are.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// The verified caller, if identity succeeded.
    #[serde(skip)]
    pub principal: Option<Principal>,
    /// The classified operation.
    pub operation: Option<Operation>,
    /// The policy decision.
    pub decision: Option<Decision>,
    /// Approval request id, when one was involved.
    pub approval_id: Option<String>,
    /// Who approved.
    pub approvers: Vec<String>,
    /// The user who confirmed their agent's request themselves, instead of
    /// an approval (`confirm_by = "acting_user"`).
    pub confirmed_by: Option<String>,
    /// The requester's justification.
    pub justification: Option<String>,
    /// How many values were masked in the response.
    pub masked_count: u32,
    /// Where they were (paths, never values).
    pub masked_paths: Vec<String>,
    /// Masked, size-capped request body.
    pub request_excerpt: Option<String>,
    /// The SHA-256 (hex) of the whole request body as received, when it
    /// had one: what the excerpt cannot prove (which exact body was sent).
    pub request_body_sha256: Option<String>,
    /// Masked, size-capped response body.
    pub response_excerpt: Option<String>,
    /// Status Azure answered with, if the request went upstream.
    pub upstream_status: Option<u16>,
    /// Time spent waiting for Azure's response headers.
    #[serde(skip)]
    pub upstream_duration: Option<Duration>,
    /// `x-ms-request-id` of Azure's response.
    pub upstream_request_id: Option<String>,
    /// `x-ms-correlation-request-id` of Azure's response.
    pub upstream_correlation_id: Option<String>,
    /// The `x-ms-client-request-id` the request was sent to Azure with:
    /// the Activity Log's `httpRequest.clientRequestId`.
    pub upstream_client_request_id: Option<String>,
    /// The error code Airlock answered with, if it refused or failed.
    pub error_code: Option<String>,
    /// The upstream (Azure) identity the request was sent as.
    pub upstream_identity: Option<String>,
    /// Whether that identity was an approval's elevation.
    pub elevated: bool,
    /// The bytes a `CONNECT` tunnel carried once it closed (from the
    /// client, to the client): the event's `bytesIn` and `bytesOut`.
    #[serde(skip)]
    pub tunnel_bytes: Option<(u64, u64)>,
    /// Observe mode: what the policy would have decided had its
    /// observe-only rules enforced (stricter than `decision`, which the
    /// request went on with).
    pub would_have: Option<Decision>,
    /// Where values reached the client in clear (paths, never values):
    /// revealed by a reveal rule or an approval. The excerpts stay masked.
    pub revealed: Vec<String>,
    /// What revealed them: `rule '<name>'` or `approval <id> (rule '<name>')`.
    pub revealed_by: Option<String>,
}

/// A cheap, cloneable handle to the [`AuditRecord`] of one request.
///
/// The recorder puts one in the request's extensions; every later layer
/// writes what it learned:
///
/// ```
/// use airlock_core::AuditDraft;
///
/// let draft = AuditDraft::default();
/// let handle = draft.clone();
/// handle.update(|r| r.upstream_status = Some(200));
/// assert_eq!(draft.snapshot().upstream_status, Some(200));
/// ```
#[derive(Clone, Debug, Default)]
pub struct AuditDraft {
    record: Arc<Mutex<AuditRecord>>,
}

impl AuditDraft {
    /// Changes the record. A poisoned lock is recovered: a panicking layer
    /// must not stop the audit trail.
    pub fn update(&self, change: impl FnOnce(&mut AuditRecord)) {
        change(&mut self.lock());
    }
    /// Reads the record as it is now, without copying it (the draft stays
    /// locked while `look` runs: keep it short).
    pub fn read<T>(&self, look: impl FnOnce(&AuditRecord) -> T) -> T {
        look(&self.lock())
    }
    /// Takes the record out, leaving an empty one: for its one final
    /// reader (the recorder, as the exchange ends), instead of a copy.
    pub fn take(&self) -> AuditRecord {
        std::mem::take(&mut *self.lock())
    }
    /// A copy of the record as it is now.
    pub fn snapshot(&self) -> AuditRecord {
        self.lock().clone()
    }
    fn lock(&self) -> MutexGuard<'_, AuditRecord> {
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
