//! A signed-in browser: what a sign-in layer tells the pages behind it.

use std::time::SystemTime;

/// The header a signed-in page sends its CSRF token in, on every request
/// that is not a `GET`, `HEAD` or `OPTIONS`.
pub const CSRF_HEADER: &str = "x-airlock-csrf";

/// A signed-in browser's session, put in the request extensions (next to the
/// person's [`Principal`](crate::Principal)) by a sign-in layer such as
/// `airlock-signin`'s. Pages embed [`csrf_token`](Self::csrf_token) in what
/// they serve and send it back in [`CSRF_HEADER`]; the sign-in layer refuses
/// changes without it. A request authenticated by a bearer token has none.
#[derive(Clone, Debug)]
pub struct BrowserSession {
    /// The token the page must echo in [`CSRF_HEADER`] on every change.
    pub csrf_token: String,
    /// When the session ends: long-lived answers (event streams) end then too.
    pub expires_at: SystemTime,
}
