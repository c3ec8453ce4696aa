//! Secrets in answer headers: blob and container metadata
//! (`x-ms-meta-{name}`) is free text that whoever wrote the blob chose, and
//! Azure returns it as headers (`GET ?comp=metadata`, `HEAD`, every
//! download). The detectors run over each value, as over a text body.

use http::{HeaderMap, HeaderValue};

use crate::detectors::{self, Context};
use crate::splice::apply_hits;

/// The prefix of user-defined metadata headers.
const METADATA: &str = "x-ms-meta-";

/// Masks what the detectors find in `headers`' metadata values; returns
/// where (`header x-ms-meta-conn (AccountKey)`), one entry per finding.
pub(crate) fn mask_metadata(headers: &mut HeaderMap) -> Vec<String> {
    let mut found = Vec::new();
    for (name, value) in headers.iter_mut() {
        if !name.as_str().starts_with(METADATA) {
            continue;
        }
        let hits = detectors::find(value.as_bytes(), Context::Text, || false);
        if hits.is_empty() {
            continue;
        }
        let masked = apply_hits(value.as_bytes(), &hits);
        // A value that cannot be a header after masking is dropped whole.
        *value = HeaderValue::from_bytes(&masked)
            .unwrap_or_else(|_| HeaderValue::from_static(crate::REDACTED));
        found.extend(
            hits.iter()
                .map(|hit| format!("header {} ({})", name.as_str(), hit.label)),
        );
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_metadata_headers_are_masked_and_the_rest_kept() {
        let key =
            "c2VjcmV0LXN0b3JhZ2Uta2V5LTEtc2VjcmV0LXN0b3JhZ2Uta2V5LTEtc2VjcmV0LXN0b3JhZ2Uta2V5LTE=";
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-ms-meta-conn",
            format!("DefaultEndpointsProtocol=https;AccountName=sa1;AccountKey={key};")
                .parse()
                .unwrap(),
        );
        headers.insert("x-ms-meta-owner", "team-a".parse().unwrap());
        headers.insert(
            "x-ms-request-id",
            "AccountKey=not-metadata".parse().unwrap(),
        );
        let found = mask_metadata(&mut headers);
        assert_eq!(found, ["header x-ms-meta-conn (AccountKey)"]);
        let conn = headers["x-ms-meta-conn"].to_str().unwrap();
        assert!(
            !conn.contains(key) && conn.contains("AccountName=sa1"),
            "{conn}"
        );
        assert_eq!(headers["x-ms-meta-owner"], "team-a");
        assert_eq!(headers["x-ms-request-id"], "AccountKey=not-metadata");
    }
}
