//! Identity at a forward proxy's `CONNECT`.
//!
//! A client may identify itself once, on the `CONNECT` that opens a tunnel,
//! with `Proxy-Authorization`: `Bearer <token>`, or `Basic` with the token as
//! the password, which is what tools send for
//! `HTTPS_PROXY=http://agent:<token>@gateway:8443` (the Azure CLI, Python's
//! `requests`, curl, Go and Node.js all turn a proxy URL's user and password
//! into `Basic`; few let a user set a bearer proxy header). The identity
//! layer verifies it like any token and puts a [`TunnelToken`] on the
//! `CONNECT`; the proxy copies that onto every request inside the tunnel,
//! and those requests then run as its principal, whatever `Authorization`
//! they carry (the tool's own token for Azure is neither verified nor
//! forwarded). The token is verified again on each of them (from the
//! validator's cache), so a tunnel outliving its token stops working.
//! Without `Proxy-Authorization`, each request inside is identified by its
//! own `Authorization`, unless the layer requires proxy authorization, when
//! the `CONNECT` is answered `407` (see [`ProxyAuthorization`]).

use std::sync::Arc;

use airlock_core::{AirlockBody, AirlockError};
use base64::Engine as _;
use http::header::PROXY_AUTHORIZATION;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};

use crate::AuthError;
use crate::bearer::checked_token;

/// How the identity layer treats a `CONNECT`
/// ([`IdentityLayer::proxy_authorization`](crate::IdentityLayer::proxy_authorization)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProxyAuthorization {
    /// Like any request: it needs a valid `Authorization` (the service is
    /// not a forward proxy, so nothing unidentified gets past the layer).
    #[default]
    Off,
    /// Identified by its `Proxy-Authorization` when it has one, else
    /// passed on unidentified for the proxy to decide: the requests inside
    /// the tunnel bring their own tokens.
    Optional,
    /// Without a valid `Proxy-Authorization`, `407`.
    Required,
}

/// The verified `Proxy-Authorization` token of a `CONNECT`.
///
/// The identity layer puts it in the `CONNECT` request's extensions; a
/// proxy puts a clone in the extensions of every request it reads from
/// that tunnel, and the identity layer verifies it in place of their
/// `Authorization`. Only the identity layer makes one.
#[derive(Clone, PartialEq, Eq)]
pub struct TunnelToken(Arc<str>);

impl TunnelToken {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for TunnelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.write_str("TunnelToken(…)")
    }
}

/// The token of a `CONNECT`'s one `Proxy-Authorization`, if it has one.
pub(crate) fn proxy_token(
    headers: &HeaderMap,
    max_len: usize,
) -> Result<Option<TunnelToken>, AuthError> {
    let mut values = headers.get_all(PROXY_AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::ProxyAuthorization("appears more than once"));
    }
    let value = value
        .to_str()
        .map_err(|_| AuthError::ProxyAuthorization("is not visible ASCII"))?;
    let (scheme, credentials) = value
        .split_once(' ')
        .ok_or(AuthError::ProxyAuthorization("has no scheme"))?;
    let credentials = credentials.trim_matches(' ');
    let token = if scheme.eq_ignore_ascii_case("bearer") {
        checked_token(credentials, max_len)?.to_owned()
    } else if scheme.eq_ignore_ascii_case("basic") {
        // Base64 of a JWT is a third longer than it.
        if credentials.len() > max_len.saturating_mul(2) {
            return Err(AuthError::TooLarge { limit: max_len });
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or(AuthError::ProxyAuthorization(
                "uses Basic but is not base64 of 'user:password'",
            ))?;
        let (_, password) = decoded
            .split_once(':')
            .ok_or(AuthError::ProxyAuthorization(
                "uses Basic without a password (the token)",
            ))?;
        checked_token(password, max_len)?.to_owned()
    } else {
        return Err(AuthError::ProxyAuthorization(
            "must use the Bearer or Basic scheme",
        ));
    };
    Ok(Some(TunnelToken(token.into())))
}

/// `407` with `Proxy-Authenticate` for both schemes; `error` says why
/// (`None`: no token was sent).
pub(crate) fn proxy_refusal<B>(
    error: Option<&AuthError>,
    audience: &str,
    request: &Request<B>,
) -> Response<AirlockBody> {
    let message = match error {
        None => format!(
            "this gateway identifies who opens a tunnel: send 'Proxy-Authorization: Bearer <token>' on CONNECT with an Entra ID token issued for {audience}, or put the token in the proxy URL as its password (HTTPS_PROXY=http://agent:<token>@gateway:port)"
        ),
        Some(error) => format!("the Proxy-Authorization token was not accepted: {error}"),
    };
    let mut response = AirlockError::custom(
        StatusCode::PROXY_AUTHENTICATION_REQUIRED,
        "AirlockProxyAuthenticationRequired",
        message,
    )
    .into_response_for(request);
    for challenge in ["Bearer realm=\"airlock\"", "Basic realm=\"airlock\""] {
        response.headers_mut().append(
            http::header::PROXY_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    response
}

/// What a refusal of a request inside a tunnel says: the token is the one
/// its `CONNECT` carried, so the fix is a new connection.
pub(crate) fn from_tunnel(error: AirlockError) -> AirlockError {
    match error {
        AirlockError::Unauthenticated {
            oauth_error,
            description,
            challenge,
        } => AirlockError::Unauthenticated {
            oauth_error,
            description: format!(
                "the token sent as Proxy-Authorization when this tunnel was opened: {description}; open a new connection with a fresh token"
            ),
            challenge,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(values: &[&str]) -> Result<Option<String>, AuthError> {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(PROXY_AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        proxy_token(&headers, 64).map(|t| t.map(|t| t.as_str().to_owned()))
    }

    fn basic(credentials: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        )
    }

    #[test]
    fn bearer_or_the_password_of_basic() {
        assert_eq!(read(&[]).unwrap(), None);
        assert_eq!(read(&["Bearer a.b.c"]).unwrap().unwrap(), "a.b.c");
        assert_eq!(read(&["bearer  a.b.c "]).unwrap().unwrap(), "a.b.c");
        assert_eq!(read(&[&basic("agent:a.b.c")]).unwrap().unwrap(), "a.b.c");
        assert_eq!(read(&[&basic(":a.b.c")]).unwrap().unwrap(), "a.b.c");
    }

    #[test]
    fn everything_else_is_refused_by_name() {
        for (values, problem) in [
            (vec!["Bearer a", "Bearer b"], "more than once"),
            (vec!["Negotiate abc"], "Bearer or Basic"),
            (vec!["a.b.c"], "no scheme"),
            (vec!["Basic !!!"], "not base64"),
        ] {
            let error = read(&values).unwrap_err().to_string();
            assert!(error.contains(problem), "{values:?}: {error}");
            assert!(
                error.contains("HTTPS_PROXY=http://agent:<token>@"),
                "{error}"
            );
        }
        let no_password = basic("agent");
        assert!(
            read(&[&no_password])
                .unwrap_err()
                .to_string()
                .contains("without a password")
        );
        assert_eq!(
            read(&[&basic(&format!("agent:{}", "a".repeat(65)))]),
            Err(AuthError::TooLarge { limit: 64 })
        );
        assert!(matches!(
            read(&[&basic("agent:a b")]),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn the_token_is_never_in_debug_output() {
        let mut headers = HeaderMap::new();
        headers.insert(
            PROXY_AUTHORIZATION,
            HeaderValue::from_static("Bearer secret.token.value"),
        );
        let token = proxy_token(&headers, 64).unwrap().unwrap();
        assert!(!format!("{token:?}").contains("secret"));
    }
}
