//! `application/x-www-form-urlencoded` bodies for token requests.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything but the unreserved characters is escaped.
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `name=value&…`, each part escaped.
pub(crate) fn encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| {
            format!(
                "{}={}",
                utf8_percent_encode(name, FORM),
                utf8_percent_encode(value, FORM)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_what_a_form_must() {
        assert_eq!(
            super::encode(&[
                ("scope", "https://vault.azure.net/.default"),
                ("s", "a+b&c=d é")
            ]),
            "scope=https%3A%2F%2Fvault.azure.net%2F.default&s=a%2Bb%26c%3Dd%20%C3%A9"
        );
    }
}
