//! [`Exchange`]: one request's audit event in the making, from arrival to
//! the end of its response. It ends exactly once: finished by the service or
//! the response body, or, when dropped unfinished, as
//! [`Outcome::ClientGone`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use airlock_core::{AuditDraft, AuditRecord, BoxFuture, Decision, ERROR_CODE};
use http::{HeaderMap, StatusCode};

use crate::facts::RequestFacts;
use crate::queue::{Entry, Queue};
use crate::{AuditEvent, EventPrincipal, Outcome, RecordedOperation, RecorderError};

/// The status recorded when the client went away before a response existed
/// (nginx's "client closed request").
pub(crate) const CLIENT_CLOSED_REQUEST: u16 = 499;

pub(crate) struct Exchange {
    queue: Arc<Queue>,
    draft: AuditDraft,
    facts: RequestFacts,
    arrived: Instant,
    time: SystemTime,
    bytes_in: Arc<AtomicU64>,
    status: Option<u16>,
    error_code_header: Option<String>,
    bytes_out: u64,
    finished: bool,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange")
            .field("request_id", &self.facts.request_id)
            .field("status", &self.status)
            .field("bytes_out", &self.bytes_out)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl Exchange {
    pub(crate) fn new(
        queue: Arc<Queue>,
        draft: AuditDraft,
        facts: RequestFacts,
        bytes_in: Arc<AtomicU64>,
    ) -> Self {
        Self {
            queue,
            draft,
            facts,
            arrived: Instant::now(),
            time: SystemTime::now(),
            bytes_in,
            status: None,
            error_code_header: None,
            bytes_out: 0,
            finished: false,
        }
    }

    /// Notes the response's status and error code header.
    pub(crate) fn responded(&mut self, status: StatusCode, headers: &HeaderMap) {
        self.status = Some(status.as_u16());
        self.error_code_header = headers
            .get(ERROR_CODE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
    }

    /// Counts response body bytes sent; returns the total so far.
    pub(crate) fn sent(&mut self, bytes: usize) -> u64 {
        self.bytes_out = self.bytes_out.saturating_add(bytes as u64);
        self.bytes_out
    }

    /// Ends the exchange. Fail-closed, the future resolves once the event is
    /// stored (or could not be); fail-open, nothing is waited for (`None`).
    pub(crate) fn finish(
        &mut self,
        outcome: Outcome,
    ) -> Option<BoxFuture<'static, Result<(), RecorderError>>> {
        let entry = self.entry(outcome)?;
        if self.queue.config.fail_closed {
            Some(self.queue.store(entry))
        } else {
            let _ = self.queue.submit(entry);
            None
        }
    }

    /// Ends the exchange without waiting for the event to be stored.
    pub(crate) fn finish_detached(&mut self, outcome: Outcome) {
        if let Some(entry) = self.entry(outcome) {
            let _ = self.queue.submit(entry);
        }
    }

    /// Ends an exchange whose inner service failed: no response, status 500.
    pub(crate) fn failed_without_response(&mut self) {
        self.status = Some(StatusCode::INTERNAL_SERVER_ERROR.as_u16());
        self.finish_detached(Outcome::Failed);
    }

    /// The event, once: `None` if the exchange already ended.
    fn entry(&mut self, outcome: Outcome) -> Option<Entry> {
        if std::mem::replace(&mut self.finished, true) {
            return None;
        }
        // The exchange ends here: what a layer writes to the draft later
        // would not be recorded anyway, so the record is taken, not copied.
        let record = self.draft.take();
        let principal = record.principal.as_ref().map(|p| p.id().to_owned());
        let session_header = self.facts.session_header.take();
        let event = self.event(record, outcome);
        tracing::debug!(
            request_id = event.request_id.as_deref().unwrap_or(""),
            status = event.status,
            outcome = ?event.outcome,
            "audit event ready"
        );
        Some(Entry {
            event,
            principal,
            session_header,
            arrived: self.arrived,
            ack: None,
        })
    }

    fn event(&mut self, record: AuditRecord, outcome: Outcome) -> AuditEvent {
        let cap = self.queue.config.max_body_chars;
        let facts = std::mem::take(&mut self.facts);
        let (operations, scope, classified) = match &record.operation {
            Some(operation) => {
                let flat = operation.flatten();
                (
                    flat.iter().map(|op| op.name().to_owned()).collect(),
                    Some(operation.scope().as_str().to_owned()),
                    flat.iter().map(|op| RecordedOperation::of(op)).collect(),
                )
            }
            None => (Vec::new(), None, Vec::new()),
        };
        let (decision, rule) = match &record.decision {
            Some(decision) => (
                Some(effect(decision).to_owned()),
                Some(decision.rule().to_owned()),
            ),
            None => (None, None),
        };
        AuditEvent {
            id: uuid::Uuid::new_v4().to_string(),
            time: self.time,
            duration_ms: u64::try_from(self.arrived.elapsed().as_millis()).unwrap_or(u64::MAX),
            request_id: facts.request_id,
            // Placed in its session by the writer.
            session_id: String::new(),
            method: facts.method,
            host: facts.host,
            path: facts.path,
            api_version: facts.api_version,
            principal: record.principal.as_ref().map(|p| EventPrincipal {
                id: p.id().to_owned(),
                tenant_id: p.tenant_id().to_owned(),
                kind: p.kind().as_str().to_owned(),
                display_name: p.display_name().map(str::to_owned),
                app_id: p.app_id().map(str::to_owned),
                agent: p.agent().cloned(),
                groups: p.groups().to_vec(),
                roles: p.roles().to_vec(),
            }),
            operations,
            scope,
            decision,
            rule,
            approval_id: record.approval_id,
            approvers: record.approvers,
            justification: record.justification,
            masked_count: record.masked_count,
            masked_paths: record.masked_paths,
            request_body: record.request_excerpt.and_then(|body| cap_chars(body, cap)),
            response_body: record
                .response_excerpt
                .and_then(|body| cap_chars(body, cap)),
            status: self.status.unwrap_or(CLIENT_CLOSED_REQUEST),
            outcome,
            bytes_in: record
                .tunnel_bytes
                .map_or_else(|| self.bytes_in.load(Ordering::Relaxed), |(sent, _)| sent),
            bytes_out: record
                .tunnel_bytes
                .map_or(self.bytes_out, |(_, received)| received),
            upstream_status: record.upstream_status,
            upstream_request_id: record.upstream_request_id,
            upstream_correlation_id: record.upstream_correlation_id,
            upstream_client_request_id: record.upstream_client_request_id,
            request_body_sha256: record.request_body_sha256,
            error_code: record.error_code.or_else(|| self.error_code_header.take()),
            upstream_identity: record.upstream_identity,
            replica: self.queue.config.replica.clone(),
            confirmed_by: record.confirmed_by,
            elevated: record.elevated,
            classified,
            would_have: record.would_have.as_ref().map(|d| effect(d).to_owned()),
            would_have_rule: record.would_have.as_ref().map(|d| d.rule().to_owned()),
            revealed: record.revealed,
            revealed_by: record.revealed_by,
        }
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        // Dropped unfinished: the response (or its body) was abandoned.
        self.finish_detached(Outcome::ClientGone);
    }
}

/// The decision's effect, as events name it.
fn effect(decision: &Decision) -> &'static str {
    match decision {
        Decision::Allow { .. } => "allow",
        Decision::Deny { .. } => "deny",
        Decision::RequireApproval { .. } => "requireApproval",
    }
}

/// `text` cut to at most `max` characters (on a character boundary); `None`
/// when nothing is kept.
fn cap_chars(mut text: String, max: usize) -> Option<String> {
    if max == 0 {
        return None;
    }
    // No more bytes than `max`: no more characters either, nothing to walk.
    if text.len() > max
        && let Some((end, _)) = text.char_indices().nth(max)
    {
        text.truncate(end);
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_cut_on_character_boundaries() {
        assert_eq!(
            cap_chars("héllo wörld".into(), 7).as_deref(),
            Some("héllo w")
        );
        assert_eq!(cap_chars("ab".into(), 2).as_deref(), Some("ab"));
        assert_eq!(cap_chars("日本語".into(), 1).as_deref(), Some("日"));
        assert_eq!(cap_chars("x".into(), 0), None);
    }

    #[test]
    fn effects_are_named_as_in_policy() {
        assert_eq!(effect(&Decision::Allow { rule: "r".into() }), "allow");
        assert_eq!(
            effect(&Decision::Deny {
                rule: "r".into(),
                reason: "x".into()
            }),
            "deny"
        );
    }
}
