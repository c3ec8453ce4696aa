//! The hash chain that makes the audit trail tamper-evident.
//!
//! Every event is stored with its position (`seq`, from 1, no gaps), the
//! hash of the event before it, and its own hash:
//!
//! `hash = SHA-256("airlock-audit-chain-v1" ‖ len ‖ canonical(seq, prev_hash, event))`
//!
//! where `canonical` is the event's JSON with fields in declaration order
//! (the schema has no maps, so the encoding is deterministic). Editing an
//! event changes its hash; deleting or reordering events breaks `seq` or the
//! next `prev_hash`. [`verify`] walks a chain and names the first break.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::AuditEvent;

/// The version of the canonical encoding, hashed into every link.
pub const CHAIN_VERSION: &str = "airlock-audit-chain-v1";

/// The `prev_hash` of the first event: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event with its place in the chain.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainedEvent {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// The previous event's hash (hex), or [`GENESIS`].
    pub prev_hash: String,
    /// This event's hash (hex).
    pub hash: String,
    /// The event.
    pub event: AuditEvent,
    /// The event's JSON exactly as [`ChainHead::link`] hashed it, for a
    /// sink to store without encoding the event again; `None` for events
    /// read back or built by hand ([`ChainedEvent::event_json`] encodes
    /// them). Not part of equality.
    #[serde(skip)]
    pub encoded: Option<Arc<str>>,
}

impl ChainedEvent {
    /// The event's JSON: the encoding [`ChainHead::link`] made, or a new one.
    pub fn event_json(&self) -> Result<Arc<str>, serde_json::Error> {
        match &self.encoded {
            Some(encoded) => Ok(Arc::clone(encoded)),
            None => serde_json::to_string(&self.event).map(Arc::from),
        }
    }
}

/// Two events are equal when their places in the chain and their contents
/// are; whether one carries its encoding does not matter.
impl PartialEq for ChainedEvent {
    fn eq(&self, other: &Self) -> bool {
        self.seq == other.seq
            && self.prev_hash == other.prev_hash
            && self.hash == other.hash
            && self.event == other.event
    }
}

impl Eq for ChainedEvent {}

/// Where a chain ends: the next event continues from here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainHead {
    /// The last event's `seq` (0 for an empty chain).
    pub seq: u64,
    /// The last event's hash ([`GENESIS`] for an empty chain).
    pub hash: String,
}

impl Default for ChainHead {
    fn default() -> Self {
        Self {
            seq: 0,
            hash: GENESIS.to_owned(),
        }
    }
}

/// The hash of `event` at `seq` after `prev_hash`.
pub fn link_hash(seq: u64, prev_hash: &str, event: &AuditEvent) -> String {
    // Serializing a struct of strings, numbers and vectors cannot fail.
    hash_encoded(
        seq,
        prev_hash,
        &serde_json::to_string(event).unwrap_or_default(),
    )
}

/// [`link_hash`] of an event already encoded as `event_json`: the canonical
/// form is the compact JSON of `{version, seq, prev_hash, event}` in that
/// order, which is these pieces around the event's own compact JSON.
fn hash_encoded(seq: u64, prev_hash: &str, event_json: &str) -> String {
    // A JSON string of `prev_hash` (hex, so nothing to escape in practice;
    // one read back from an edited trail is escaped as the struct's would be).
    let prev = serde_json::to_string(prev_hash).unwrap_or_default();
    let head =
        format!("{{\"version\":\"{CHAIN_VERSION}\",\"seq\":{seq},\"prev_hash\":{prev},\"event\":");
    let len = head.len() + event_json.len() + 1;
    let mut hasher = Sha256::new();
    hasher.update((len as u64).to_be_bytes());
    hasher.update(head.as_bytes());
    hasher.update(event_json.as_bytes());
    hasher.update(b"}");
    let mut hex = [0u8; 64];
    // 32 bytes fill the 64 hex digits exactly; `hex::encode` would build
    // the string a `char` at a time.
    hex::encode_to_slice(hasher.finalize(), &mut hex).expect("64 digits for 32 bytes");
    std::str::from_utf8(&hex)
        .expect("hex digits are ASCII")
        .to_owned()
}

/// Room for `event`'s JSON: its fields' names and short values, and its
/// body excerpts with room to escape them.
fn encoded_size_hint(event: &AuditEvent) -> usize {
    let excerpts = [&event.request_body, &event.response_body]
        .into_iter()
        .flatten()
        .map(String::len)
        .sum::<usize>();
    2048 + excerpts + excerpts / 4
}

impl ChainHead {
    /// Links `event` after this head and moves the head to it.
    ///
    /// ```
    /// # let event: airlock_recorder::AuditEvent = serde_json::from_str(airlock_recorder::chain::EXAMPLE_EVENT).unwrap();
    /// use airlock_recorder::chain::{verify, ChainHead};
    ///
    /// let mut head = ChainHead::default();
    /// let chain = vec![head.link(event.clone()), head.link(event)];
    /// assert_eq!(verify(&ChainHead::default(), &chain), Ok(head));
    /// ```
    pub fn link(&mut self, event: AuditEvent) -> ChainedEvent {
        let seq = self.seq + 1;
        // Encoded once: hashed here, stored as it is by the sink. Into a
        // buffer sized for the event, not grown from 128 bytes five times
        // over; copied once into the shared string.
        let mut json = Vec::with_capacity(encoded_size_hint(&event));
        let encoded: Arc<str> = match serde_json::to_writer(&mut json, &event) {
            Ok(()) => std::str::from_utf8(&json).unwrap_or_default().into(),
            // Serializing a struct of strings, numbers and vectors cannot fail.
            Err(_) => Arc::from(""),
        };
        let hash = hash_encoded(seq, &self.hash, &encoded);
        let chained = ChainedEvent {
            seq,
            prev_hash: std::mem::replace(&mut self.hash, hash.clone()),
            hash,
            event,
            encoded: Some(encoded),
        };
        self.seq = seq;
        chained
    }
}

/// The first place a chain is broken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    /// An event's content does not match its hash: it was edited.
    #[error("event {seq} was edited: its content does not match its hash")]
    Edited {
        /// Its position.
        seq: u64,
    },
    /// Events are missing before this one (deleted), or it is out of order.
    #[error("expected event {expected}, found event {found}: events were deleted or reordered")]
    Gap {
        /// The position expected.
        expected: u64,
        /// The position found.
        found: u64,
    },
    /// The event does not follow the one before it (its `prev_hash` differs):
    /// the event before was replaced, or they were reordered.
    #[error("event {seq} does not follow the event before it: events were replaced or reordered")]
    Unlinked {
        /// Its position.
        seq: u64,
    },
}

/// Walks `events` from `start` (the head before the first of them: the
/// default for a whole chain, a checkpoint after pruning) and returns the
/// head at the end, or the first break.
pub fn verify<'a>(
    start: &ChainHead,
    events: impl IntoIterator<Item = &'a ChainedEvent>,
) -> Result<ChainHead, ChainBreak> {
    let mut head = start.clone();
    for chained in events {
        let expected = head.seq + 1;
        if chained.seq != expected {
            return Err(ChainBreak::Gap {
                expected,
                found: chained.seq,
            });
        }
        if link_hash(chained.seq, &chained.prev_hash, &chained.event) != chained.hash {
            return Err(ChainBreak::Edited { seq: chained.seq });
        }
        if chained.prev_hash != head.hash {
            return Err(ChainBreak::Unlinked { seq: chained.seq });
        }
        head = ChainHead {
            seq: chained.seq,
            hash: chained.hash.clone(),
        };
    }
    Ok(head)
}

/// An event in JSON, for examples and tests.
#[doc(hidden)]
pub const EXAMPLE_EVENT: &str = r#"{"id":"5f0c3c52-0e4e-4d43-9a54-2f1f3c7f6d10","time":"2026-11-25T12:00:00.000Z","durationMs":12,"requestId":"r-1","sessionId":"s-1","method":"GET","host":"localhost","path":"/subscriptions/s/resourcegroups","apiVersion":"2021-04-01","principal":null,"operations":["Microsoft.Resources/subscriptions/resourceGroups/read"],"scope":"/subscriptions/s","decision":"allow","rule":"agents-read","approvalId":null,"approvers":[],"justification":null,"maskedCount":0,"maskedPaths":[],"requestBody":null,"responseBody":null,"status":200,"outcome":"completed","bytesIn":0,"bytesOut":42,"upstreamStatus":200,"upstreamRequestId":null,"upstreamCorrelationId":null,"errorCode":null}"#;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn event(path: &str) -> AuditEvent {
        let mut e: AuditEvent = serde_json::from_str(EXAMPLE_EVENT).unwrap();
        e.path = path.into();
        e
    }

    fn chain(n: usize) -> Vec<ChainedEvent> {
        let mut head = ChainHead::default();
        (0..n)
            .map(|i| head.link(event(&format!("/p{i}"))))
            .collect()
    }

    #[test]
    fn the_hash_is_of_the_canonical_struct_and_the_encoding_is_the_event_json() {
        #[derive(Serialize)]
        struct Canonical<'a> {
            version: &'a str,
            seq: u64,
            prev_hash: &'a str,
            event: &'a AuditEvent,
        }
        let e = event("/subscriptions/s/resourcegroups/rg");
        let canonical_hash = |prev_hash: &str| {
            let canonical = serde_json::to_vec(&Canonical {
                version: CHAIN_VERSION,
                seq: 7,
                prev_hash,
                event: &e,
            })
            .unwrap();
            let mut hasher = Sha256::new();
            hasher.update((canonical.len() as u64).to_be_bytes());
            hasher.update(&canonical);
            hex::encode(hasher.finalize())
        };
        assert_eq!(link_hash(7, GENESIS, &e), canonical_hash(GENESIS));
        // A `prev_hash` read back from an edited trail is escaped alike.
        let edited = "0\"\\\u{1}";
        assert_eq!(link_hash(7, edited, &e), canonical_hash(edited));

        let mut head = ChainHead {
            seq: 6,
            hash: GENESIS.into(),
        };
        let linked = head.link(e.clone());
        assert_eq!(linked.hash, link_hash(7, GENESIS, &e));
        let encoded = linked.encoded.clone().unwrap();
        assert_eq!(&*encoded, serde_json::to_string(&e).unwrap());
        // Read back without its encoding, it is the same event and encodes alike.
        let read_back = ChainedEvent {
            encoded: None,
            ..linked.clone()
        };
        assert_eq!(read_back, linked);
        assert_eq!(read_back.event_json().unwrap(), encoded);
    }

    #[test]
    fn an_intact_chain_verifies_to_its_head() {
        let events = chain(5);
        let head = verify(&ChainHead::default(), &events).unwrap();
        assert_eq!(head.seq, 5);
        assert_eq!(head.hash, events[4].hash);
        // From a checkpoint: the tail alone verifies.
        let checkpoint = ChainHead {
            seq: 2,
            hash: events[1].hash.clone(),
        };
        assert_eq!(verify(&checkpoint, &events[2..]).unwrap(), head);
    }

    #[test]
    fn edits_deletions_and_reorderings_are_found_at_the_first_break() {
        let mut edited = chain(5);
        edited[2].event.status = 204;
        assert_eq!(
            verify(&ChainHead::default(), &edited),
            Err(ChainBreak::Edited { seq: 3 })
        );

        let mut deleted = chain(5);
        deleted.remove(1);
        assert_eq!(
            verify(&ChainHead::default(), &deleted),
            Err(ChainBreak::Gap {
                expected: 2,
                found: 3
            })
        );

        let mut reordered = chain(5);
        reordered.swap(1, 3);
        assert_eq!(
            verify(&ChainHead::default(), &reordered),
            Err(ChainBreak::Gap {
                expected: 2,
                found: 4
            })
        );

        // Renumbered and rehashed to hide a deletion: the link still breaks.
        let mut rewritten = chain(5);
        rewritten.remove(1);
        for (i, e) in rewritten.iter_mut().enumerate().skip(1) {
            e.seq = i as u64 + 1;
            e.hash = link_hash(e.seq, &e.prev_hash, &e.event);
        }
        assert_eq!(
            verify(&ChainHead::default(), &rewritten),
            Err(ChainBreak::Unlinked { seq: 2 })
        );
    }

    /// An event from before `upstreamIdentity` and `elevated` existed
    /// encodes, and so hashes, exactly as it did: old chains still verify.
    /// Set, both fields are hashed, so an edit to them is found.
    #[test]
    fn fields_added_later_leave_older_events_hashing_as_they_did() {
        let old = event("/p");
        assert_eq!(
            serde_json::to_string(&old).unwrap(),
            EXAMPLE_EVENT.replace("/subscriptions/s/resourcegroups", "/p")
        );
        let mut elevated = old.clone();
        elevated.upstream_identity = Some("contributor".into());
        elevated.elevated = true;
        let linked = ChainHead::default().link(elevated);
        let mut edited = vec![linked];
        assert!(verify(&ChainHead::default(), &edited).is_ok());
        edited[0].event.elevated = false;
        assert_eq!(
            verify(&ChainHead::default(), &edited),
            Err(ChainBreak::Edited { seq: 1 })
        );
    }
}
