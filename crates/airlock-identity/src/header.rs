//! The JOSE header, read before any key is looked up, so a refusal can say
//! precisely what is wrong (`alg: none`, HMAC, no `kid`, wrong `typ`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;

use crate::AuthError;

/// The header fields the validator acts on.
#[derive(Debug)]
pub(crate) struct JoseHeader {
    pub(crate) alg: Algorithm,
    pub(crate) kid: String,
}

#[derive(Deserialize)]
struct RawHeader {
    alg: Option<String>,
    typ: Option<String>,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
}

/// The largest header accepted, encoded; real ones are under 200 bytes.
const MAX_HEADER_LEN: usize = 2048;

/// Reads and checks the header of `token` against the `accepted` algorithms.
pub(crate) fn read_header(token: &str, accepted: &[Algorithm]) -> Result<JoseHeader, AuthError> {
    let mut segments = token.split('.');
    let (Some(encoded), Some(_), Some(_), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(AuthError::Malformed(
            "expected three dot-separated segments",
        ));
    };
    if encoded.len() > MAX_HEADER_LEN {
        return Err(AuthError::Malformed("the header is too long"));
    }
    let json = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| AuthError::Malformed("the header is not base64url"))?;
    let raw: RawHeader = serde_json::from_slice(&json)
        .map_err(|_| AuthError::Malformed("the header is not a JSON object"))?;
    let name = raw
        .alg
        .ok_or(AuthError::Malformed("the header has no 'alg'"))?;
    let alg = name
        .parse::<Algorithm>()
        .ok()
        .filter(|alg| accepted.contains(alg))
        .ok_or_else(|| AuthError::Algorithm {
            found: sanitise(&name),
            accepted: accepted
                .iter()
                .map(|a| algorithm_name(*a))
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let typ_ok = raw.typ.as_deref().is_some_and(|typ| {
        ["JWT", "at+jwt", "application/at+jwt"]
            .iter()
            .any(|t| typ.eq_ignore_ascii_case(t))
    });
    if !typ_ok {
        return Err(AuthError::TokenType);
    }
    if raw.crit.is_some() {
        return Err(AuthError::CriticalHeader);
    }
    let kid = raw
        .kid
        .filter(|k| !k.is_empty())
        .ok_or(AuthError::MissingKeyId)?;
    Ok(JoseHeader { alg, kid })
}

/// The JOSE name of an algorithm (`RS256`): its `Debug` form.
pub(crate) fn algorithm_name(alg: Algorithm) -> String {
    format!("{alg:?}")
}

/// An attacker-chosen string made safe to quote in a message: at most 16
/// visible ASCII characters.
fn sanitise(value: &str) -> String {
    value
        .chars()
        .filter(char::is_ascii_graphic)
        .take(16)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(header: &str) -> String {
        format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(header))
    }

    fn read(header: &str) -> Result<JoseHeader, AuthError> {
        read_header(&token(header), &[Algorithm::RS256])
    }

    #[test]
    fn reads_alg_and_kid() {
        let header = read(r#"{"alg":"RS256","typ":"JWT","kid":"k1"}"#).unwrap();
        assert_eq!((header.alg, header.kid.as_str()), (Algorithm::RS256, "k1"));
        assert!(read(r#"{"alg":"RS256","typ":"at+jwt","kid":"k1"}"#).is_ok());
    }

    #[test]
    fn names_what_is_wrong() {
        let none = read(r#"{"alg":"none","typ":"JWT","kid":"k1"}"#).unwrap_err();
        assert_eq!(
            none.to_string(),
            "tokens signed with 'none' are not accepted; accepted: RS256"
        );
        assert!(matches!(
            read(r#"{"alg":"HS256","typ":"JWT","kid":"k1"}"#),
            Err(AuthError::Algorithm { .. })
        ));
        assert_eq!(
            read(r#"{"alg":"RS256","typ":"JWT"}"#).unwrap_err(),
            AuthError::MissingKeyId
        );
        assert_eq!(
            read(r#"{"alg":"RS256","kid":"k"}"#).unwrap_err(),
            AuthError::TokenType
        );
        assert_eq!(
            read(r#"{"alg":"RS256","typ":"JWS","kid":"k"}"#).unwrap_err(),
            AuthError::TokenType
        );
        assert_eq!(
            read(r#"{"alg":"RS256","typ":"JWT","kid":"k","crit":["exp"]}"#).unwrap_err(),
            AuthError::CriticalHeader
        );
        assert_eq!(
            read_header("a.b", &[Algorithm::RS256]).unwrap_err(),
            AuthError::Malformed("expected three dot-separated segments")
        );
        assert_eq!(
            read_header("!!.b.c", &[Algorithm::RS256]).unwrap_err(),
            AuthError::Malformed("the header is not base64url")
        );
    }

    #[test]
    fn quotes_hostile_alg_values_safely() {
        let err = read(r#"{"alg":"RS256\"\r\nX-Evil: 1 and much longer","typ":"JWT","kid":"k"}"#)
            .unwrap_err();
        let AuthError::Algorithm { found, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!(found, "RS256\"X-Evil:1an");
    }
}
