//! Sessions: which requests belong together when an agent's work is replayed.
//!
//! - A valid `x-airlock-session` header (1–128 characters of
//!   `[A-Za-z0-9._:-]`) names the session, namespaced by the caller:
//!   `{principal id}:{header}` (`anonymous:{header}` without a verified
//!   principal), so one agent cannot write into another's session.
//! - Otherwise each principal (and "anonymous") has one session that goes on
//!   while its requests keep coming within the idle gap, and a new one (a
//!   fresh UUID) after a longer pause.
//!
//! Principals idle longer than the gap are forgotten, so memory stays
//! bounded by the principals active within it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The request header a client names its session with.
pub const SESSION_HEADER: &str = "x-airlock-session";

/// The longest session name a client may give.
const MAX_HEADER_CHARS: usize = 128;

/// The namespace of requests without a verified principal.
const ANONYMOUS: &str = "anonymous";

/// Whether `value` is a session name a client may give.
pub(crate) fn is_valid_session_name(value: &str) -> bool {
    (1..=MAX_HEADER_CHARS).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// The derived sessions of the principals seen within the idle gap.
#[derive(Debug)]
pub(crate) struct Sessions {
    idle: Duration,
    /// By principal id; `None` for anonymous requests.
    derived: HashMap<Option<String>, Derived>,
    last_sweep: Option<Instant>,
}

#[derive(Debug)]
struct Derived {
    id: String,
    last_seen: Instant,
}

impl Sessions {
    pub(crate) fn new(idle: Duration) -> Self {
        Self {
            idle,
            derived: HashMap::new(),
            last_sweep: None,
        }
    }

    /// The session of a request by `principal` (its id), with the session
    /// header it sent (if any), that arrived `at`.
    pub(crate) fn assign(
        &mut self,
        principal: Option<&str>,
        header: Option<&str>,
        at: Instant,
    ) -> String {
        self.sweep(at);
        if let Some(name) = header.filter(|name| is_valid_session_name(name)) {
            let namespace = principal.map_or_else(|| ANONYMOUS.to_owned(), escape);
            return format!("{namespace}:{name}");
        }
        let idle = self.idle;
        let session = self
            .derived
            .entry(principal.map(str::to_owned))
            .or_insert_with(|| Derived {
                id: new_session_id(),
                last_seen: at,
            });
        if at.saturating_duration_since(session.last_seen) > idle {
            session.id = new_session_id();
        }
        // Requests can finish out of arrival order: keep the latest arrival.
        session.last_seen = session.last_seen.max(at);
        session.id.clone()
    }

    /// Forgets principals idle longer than the gap, at most once per gap.
    fn sweep(&mut self, now: Instant) {
        match self.last_sweep {
            Some(last) if now.saturating_duration_since(last) < self.idle => {}
            _ => {
                let idle = self.idle;
                self.derived
                    .retain(|_, session| now.saturating_duration_since(session.last_seen) <= idle);
                self.last_sweep = Some(now);
            }
        }
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.derived.len()
    }
}

/// A principal id as a namespace: `%` and `:` escaped, so `{namespace}:{name}`
/// splits one way only.
fn escape(principal: &str) -> String {
    principal.replace('%', "%25").replace(':', "%3A")
}

fn new_session_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(30 * 60);

    #[test]
    fn header_names_are_checked() {
        assert!(is_valid_session_name("task-42.step_1:a"));
        assert!(is_valid_session_name(&"a".repeat(128)));
        assert!(!is_valid_session_name(""));
        assert!(!is_valid_session_name(&"a".repeat(129)));
        assert!(!is_valid_session_name("has space"));
        assert!(!is_valid_session_name("slash/"));
        assert!(!is_valid_session_name("é"));
    }

    #[test]
    fn a_header_session_is_namespaced_by_principal() {
        let mut sessions = Sessions::new(IDLE);
        let now = Instant::now();
        assert_eq!(
            sessions.assign(Some("agent-a"), Some("task-1"), now),
            "agent-a:task-1"
        );
        assert_eq!(
            sessions.assign(Some("agent-b"), Some("task-1"), now),
            "agent-b:task-1"
        );
        assert_eq!(
            sessions.assign(None, Some("task-1"), now),
            "anonymous:task-1"
        );
        // A principal id cannot smuggle a separator into another's namespace.
        assert_eq!(sessions.assign(Some("a:b"), Some("c"), now), "a%3Ab:c");
        assert_ne!(
            sessions.assign(Some("a:b"), Some("c"), now),
            sessions.assign(Some("a"), Some("b:c"), now)
        );
        // Header sessions keep no state.
        assert_eq!(sessions.remembered(), 0);
    }

    #[test]
    fn an_invalid_header_falls_back_to_the_derived_session() {
        let mut sessions = Sessions::new(IDLE);
        let now = Instant::now();
        let derived = sessions.assign(Some("agent-a"), None, now);
        assert_eq!(
            sessions.assign(Some("agent-a"), Some("bad name!"), now),
            derived
        );
        assert_eq!(sessions.assign(Some("agent-a"), Some(""), now), derived);
    }

    #[test]
    fn a_derived_session_continues_within_the_idle_gap_and_restarts_after() {
        let mut sessions = Sessions::new(IDLE);
        let t0 = Instant::now();
        let first = sessions.assign(Some("agent-a"), None, t0);
        assert!(uuid::Uuid::parse_str(&first).is_ok(), "{first}");
        let t1 = t0 + IDLE - Duration::from_secs(1);
        assert_eq!(sessions.assign(Some("agent-a"), None, t1), first);
        // Measured from the last request, not the first.
        let t2 = t1 + IDLE;
        assert_eq!(sessions.assign(Some("agent-a"), None, t2), first);
        let t3 = t2 + IDLE + Duration::from_secs(1);
        let second = sessions.assign(Some("agent-a"), None, t3);
        assert_ne!(second, first);
        assert_eq!(sessions.assign(Some("agent-a"), None, t3), second);
    }

    #[test]
    fn principals_and_anonymous_callers_have_separate_sessions() {
        let mut sessions = Sessions::new(IDLE);
        let now = Instant::now();
        let a = sessions.assign(Some("agent-a"), None, now);
        let b = sessions.assign(Some("agent-b"), None, now);
        let anonymous = sessions.assign(None, None, now);
        assert_ne!(a, b);
        assert_ne!(a, anonymous);
        assert_ne!(b, anonymous);
        assert_eq!(sessions.assign(None, None, now), anonymous);
    }

    #[test]
    fn a_late_event_with_an_earlier_arrival_stays_in_the_session() {
        let mut sessions = Sessions::new(IDLE);
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(60);
        let id = sessions.assign(Some("agent-a"), None, later);
        assert_eq!(sessions.assign(Some("agent-a"), None, t0), id);
        // The earlier arrival did not move the session's last activity back.
        let next = later + IDLE;
        assert_eq!(sessions.assign(Some("agent-a"), None, next), id);
    }

    #[test]
    fn idle_principals_are_forgotten() {
        let mut sessions = Sessions::new(IDLE);
        let t0 = Instant::now();
        for i in 0..100 {
            sessions.assign(Some(&format!("agent-{i}")), None, t0);
        }
        assert_eq!(sessions.remembered(), 100);
        sessions.assign(Some("agent-new"), None, t0 + IDLE * 2);
        assert_eq!(sessions.remembered(), 1);
    }
}
