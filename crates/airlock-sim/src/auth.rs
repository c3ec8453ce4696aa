//! The bearer token a request presents to ARM or Key Vault.

use http::HeaderMap;
use http::header::AUTHORIZATION;

/// What the `Authorization` header holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Credential<'a> {
    /// No `Authorization` header.
    Missing,
    /// A header that is not one `Bearer <token>`.
    Malformed,
    /// A bearer token.
    Bearer(&'a str),
}

/// Reads the `Authorization` header.
pub(crate) fn credential(headers: &HeaderMap) -> Credential<'_> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Credential::Missing;
    };
    if values.next().is_some() {
        return Credential::Malformed;
    }
    let Ok(value) = value.to_str() else {
        return Credential::Malformed;
    };
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Credential::Bearer(token.trim())
        }
        _ => Credential::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn bearer_forms() {
        let mut headers = HeaderMap::new();
        assert_eq!(credential(&headers), Credential::Missing);
        headers.insert(AUTHORIZATION, HeaderValue::from_static("bearer abc"));
        assert_eq!(credential(&headers), Credential::Bearer("abc"));
        for bad in ["Bearer ", "Bearer", "Basic dXNlcjpwYXNz", "abc"] {
            headers.insert(AUTHORIZATION, HeaderValue::from_static(bad));
            assert_eq!(credential(&headers), Credential::Malformed, "{bad}");
        }
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer a"));
        headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer b"));
        assert_eq!(credential(&headers), Credential::Malformed);
    }
}
