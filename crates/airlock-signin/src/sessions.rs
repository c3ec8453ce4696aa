//! Server-side sessions: the browser holds a random id in an `HttpOnly;
//! Secure; SameSite=Strict` cookie, the server the principal, the CSRF token
//! and the expiry. Only the SHA-256 of an id is kept, so the table itself
//! cannot be replayed as cookies.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use airlock_core::{BrowserSession, Principal};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderMap;
use sha2::{Digest, Sha256};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "airlock_session";

/// A signed-in person, as the session table keeps them.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub(crate) principal: Principal,
    pub(crate) browser: BrowserSession,
}

/// The sessions of one gateway process.
#[derive(Clone, Default)]
pub(crate) struct Sessions {
    table: Arc<Mutex<HashMap<[u8; 32], Session>>>,
}

/// 32 random bytes, base64url: session ids, CSRF tokens, flow bindings.
pub(crate) fn random_token() -> Result<String, aws_lc_rs::error::Unspecified> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Equal, compared in constant time.
pub(crate) fn same(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    fn table(&self) -> MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a session for `principal`; returns its id (the cookie value).
    pub(crate) fn start(
        &self,
        principal: Principal,
        ttl: Duration,
    ) -> Result<(String, Session), aws_lc_rs::error::Unspecified> {
        let id = random_token()?;
        let session = Session {
            principal,
            browser: BrowserSession::new(random_token()?, SystemTime::now() + ttl),
        };
        let mut table = self.table();
        let now = SystemTime::now();
        table.retain(|_, s| s.browser.expires_at > now);
        table.insert(key(&id), session.clone());
        Ok((id, session))
    }

    /// The live session the request's cookie names, if any.
    pub(crate) fn find(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers, SESSION_COOKIE)?;
        let key = key(&id);
        let mut table = self.table();
        match table.get(&key) {
            Some(session) if session.browser.expires_at > SystemTime::now() => {
                Some(session.clone())
            }
            Some(_) => {
                table.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends the session the request's cookie names, for every answer still
    /// open on it too.
    pub(crate) fn end(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers, SESSION_COOKIE)
            && let Some(session) = self.table().remove(&key(&id))
        {
            session.browser.end();
        }
    }

    /// How many sessions are live.
    pub(crate) fn len(&self) -> usize {
        let now = SystemTime::now();
        self.table()
            .values()
            .filter(|s| s.browser.expires_at > now)
            .count()
    }
}

/// The value of cookie `name` in the request's `Cookie` headers (the first,
/// if a name repeats).
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_core::PrincipalKind;
    use http::HeaderValue;

    fn with_cookie(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::COOKIE, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let headers = with_cookie("a=1; airlock_session_x=2; airlock_session=abc; b=3");
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(
            cookie(&with_cookie("airlock_session="), SESSION_COOKIE),
            None
        );
        assert_eq!(cookie(&HeaderMap::new(), SESSION_COOKIE), None);
    }

    #[test]
    fn sessions_live_until_they_expire_or_end() {
        let sessions = Sessions::default();
        let alice = Principal::builder("alice", PrincipalKind::User).build();
        let (id, session) = sessions
            .start(alice.clone(), Duration::from_secs(60))
            .unwrap();
        let headers = with_cookie(&format!("{SESSION_COOKIE}={id}"));
        let found = sessions.find(&headers).unwrap();
        assert_eq!(found.principal.id(), "alice");
        assert_eq!(found.browser.csrf_token, session.browser.csrf_token);
        assert!(
            sessions
                .find(&with_cookie(&format!("{SESSION_COOKIE}={id}x")))
                .is_none()
        );
        sessions.end(&headers);
        assert!(sessions.find(&headers).is_none());
        assert!(!found.browser.is_live(), "what was handed out ends too");

        let (id, _) = sessions.start(alice, Duration::ZERO).unwrap();
        assert!(
            sessions
                .find(&with_cookie(&format!("{SESSION_COOKIE}={id}")))
                .is_none()
        );
        assert_eq!(sessions.len(), 0);
    }
}
