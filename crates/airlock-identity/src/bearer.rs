//! Reading the bearer token out of a request's headers.

use http::HeaderMap;
use http::header::AUTHORIZATION;

use crate::AuthError;

/// The token of the one `Authorization: Bearer <token>` header.
///
/// The scheme is matched case-insensitively (RFC 7235 §2.1: `bearer` works as
/// `Bearer` does); more than one `Authorization` header is refused, so no
/// component can pick a different one than Airlock verified. The token must
/// be RFC 6750 `b68token` characters and at most `max_len` bytes.
///
/// `audience` only feeds the "no token" message.
pub(crate) fn bearer_token<'h>(
    headers: &'h HeaderMap,
    max_len: usize,
    audience: &str,
) -> Result<&'h str, AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(AuthError::MissingToken {
            audience: audience.to_owned(),
        });
    };
    if values.next().is_some() {
        return Err(AuthError::DuplicateAuthorization);
    }
    let value = value
        .to_str()
        .map_err(|_| AuthError::Malformed("the Authorization header is not visible ASCII"))?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::NotBearer)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::NotBearer);
    }
    checked_token(token.trim_matches(' '), max_len)
}

/// Whether `b` is an RFC 6750 `b64token` character before the padding.
/// Branch-free (`|`, not `||`), so that checking every request's token
/// (about 1.5 KB) byte by byte vectorizes.
fn is_token_char(b: u8) -> bool {
    let digit = b.wrapping_sub(b'0') < 10;
    let letter = (b | 0x20).wrapping_sub(b'a') < 26;
    let mark = (b == b'-') | (b == b'.') | (b == b'_') | (b == b'~') | (b == b'+') | (b == b'/');
    digit | letter | mark
}

/// `token` if it is non-empty RFC 6750 `b68token` characters of at most
/// `max_len` bytes.
pub(crate) fn checked_token(token: &str, max_len: usize) -> Result<&str, AuthError> {
    if token.is_empty() {
        return Err(AuthError::Malformed("the Bearer value is empty"));
    }
    if token.len() > max_len {
        return Err(AuthError::TooLarge { limit: max_len });
    }
    let body = token.trim_end_matches('=');
    if !body.bytes().fold(true, |ok, b| ok & is_token_char(b)) {
        return Err(AuthError::Malformed(
            "the Bearer value contains characters a token cannot have",
        ));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn read(values: &[&str]) -> Result<String, AuthError> {
        bearer_token(&headers(values), 64, "api://airlock").map(str::to_owned)
    }

    #[test]
    fn accepts_bearer_in_any_case() {
        assert_eq!(read(&["Bearer a.b.c"]).unwrap(), "a.b.c");
        assert_eq!(read(&["bearer a.b.c"]).unwrap(), "a.b.c");
        assert_eq!(read(&["BEARER   a.b.c  "]).unwrap(), "a.b.c");
    }

    #[test]
    fn refuses_everything_else_by_name() {
        assert_eq!(
            read(&[]).unwrap_err().to_string(),
            "no bearer token: send 'Authorization: Bearer <access token>' with an Entra ID token issued for api://airlock"
        );
        assert_eq!(
            read(&["Bearer a.b.c", "Bearer d.e.f"]),
            Err(AuthError::DuplicateAuthorization)
        );
        assert_eq!(read(&["Basic dXNlcjpwYXNz"]), Err(AuthError::NotBearer));
        assert_eq!(read(&["Bearer"]), Err(AuthError::NotBearer));
        assert_eq!(
            read(&["Bearer  "]),
            Err(AuthError::Malformed("the Bearer value is empty"))
        );
        assert_eq!(
            read(&["Bearer a.b,c"]).unwrap_err().oauth_error(),
            Some("invalid_token")
        );
        assert_eq!(
            read(&["Bearer a b"]).unwrap_err().oauth_error(),
            Some("invalid_token")
        );
        assert_eq!(
            read(&[&format!("Bearer {}", "a".repeat(65))]),
            Err(AuthError::TooLarge { limit: 64 })
        );
    }

    #[test]
    fn the_branch_free_test_is_the_rfc_6750_set() {
        for b in 0..=u8::MAX {
            let rfc = b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
            assert_eq!(is_token_char(b), rfc, "byte {b:#04x}");
        }
    }

    #[test]
    fn takes_exactly_the_b64token_characters() {
        let all = "ABCXYZabcxyz0189-._~+/";
        assert_eq!(
            checked_token(&format!("{all}=="), 64),
            Ok(format!("{all}==").as_str())
        );
        for bad in [
            "a=b", "a\"b", "a:b", "a%2Eb", "a\tb", "a\u{e9}b", "a\u{7f}b", "a@b",
        ] {
            assert!(checked_token(bad, 64).is_err(), "{bad:?} taken");
        }
    }
}
