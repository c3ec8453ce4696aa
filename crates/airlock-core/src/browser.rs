//! A signed-in browser: what a sign-in layer tells the pages behind it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

/// The header a signed-in page sends its CSRF token in, on every request
/// that is not a `GET`, `HEAD` or `OPTIONS`.
pub const CSRF_HEADER: &str = "x-airlock-csrf";

/// A signed-in browser's session, put in the request extensions (next to the
/// person's [`Principal`](crate::Principal)) by a sign-in layer such as
/// `airlock-signin`'s. Pages embed [`csrf_token`](Self::csrf_token) in what
/// they serve and send it back in [`CSRF_HEADER`]; the sign-in layer refuses
/// changes without it. A request authenticated by a bearer token has none.
///
/// Clones share one session: [`end`](Self::end) (sign-out) ends it for
/// every answer still open, such as an event stream.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use airlock_core::BrowserSession;
///
/// let session = BrowserSession::new("csrf", SystemTime::now() + Duration::from_secs(60));
/// let held_by_a_stream = session.clone();
/// assert!(held_by_a_stream.is_live());
/// session.end();
/// assert!(!held_by_a_stream.is_live());
/// ```
#[derive(Clone, Debug)]
pub struct BrowserSession {
    /// The token the page must echo in [`CSRF_HEADER`] on every change.
    pub csrf_token: String,
    /// When the session ends: long-lived answers (event streams) end then too.
    pub expires_at: SystemTime,
    ended: Arc<AtomicBool>,
}

impl BrowserSession {
    /// A live session with `csrf_token`, until `expires_at`.
    pub fn new(csrf_token: impl Into<String>, expires_at: SystemTime) -> Self {
        Self {
            csrf_token: csrf_token.into(),
            expires_at,
            ended: Arc::default(),
        }
    }

    /// Ends the session now (sign-out).
    pub fn end(&self) {
        self.ended.store(true, Ordering::SeqCst);
    }

    /// Neither ended nor expired.
    pub fn is_live(&self) -> bool {
        !self.ended.load(Ordering::SeqCst) && SystemTime::now() < self.expires_at
    }
}
