//! `Content-Encoding` of responses: which ones Airlock can read, and gzip
//! decoding within the masking limit.

use std::io::Read as _;

use http::HeaderMap;
use http::header::CONTENT_ENCODING;

/// How a response body is encoded.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// Not at all (no header, or `identity`).
    Identity,
    /// `gzip` (or `x-gzip`).
    Gzip,
    /// Anything else (`br`, `deflate`, `zstd`, several codings…), as sent.
    Unsupported(String),
}

/// The response's encoding.
pub(crate) fn content_encoding(headers: &HeaderMap) -> Encoding {
    let mut codings = Vec::new();
    for value in headers.get_all(CONTENT_ENCODING) {
        let Ok(value) = value.to_str() else {
            return Encoding::Unsupported("(not ASCII)".into());
        };
        codings.extend(
            value
                .split(',')
                .map(|coding| coding.trim().to_ascii_lowercase())
                .filter(|coding| !coding.is_empty() && coding != "identity"),
        );
    }
    match codings.as_slice() {
        [] => Encoding::Identity,
        [one] if one == "gzip" || one == "x-gzip" => Encoding::Gzip,
        _ => Encoding::Unsupported(codings.join(", ").chars().take(100).collect()),
    }
}

/// Why a gzip body could not be decoded.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum GunzipError {
    /// It inflates beyond the limit.
    TooLarge,
    /// It is not valid gzip.
    Corrupt,
}

/// Decodes a gzip body (one or more members), refusing output over `limit` bytes.
pub(crate) fn gunzip(bytes: &[u8], limit: u64) -> Result<Vec<u8>, GunzipError> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|_| GunzipError::Corrupt)?;
    if u64::try_from(out.len()).unwrap_or(u64::MAX) > limit {
        return Err(GunzipError::TooLarge);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use http::HeaderValue;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn names_the_encoding() {
        let mut headers = HeaderMap::new();
        assert_eq!(content_encoding(&headers), Encoding::Identity);
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("GZip"));
        assert_eq!(content_encoding(&headers), Encoding::Gzip);
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip, br"));
        assert_eq!(
            content_encoding(&headers),
            Encoding::Unsupported("gzip, br".into())
        );
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("identity"));
        assert_eq!(content_encoding(&headers), Encoding::Identity);
    }

    #[test]
    fn decodes_within_the_limit() {
        let data = vec![b'a'; 10_000];
        assert_eq!(gunzip(&gzip(&data), 10_000).unwrap(), data);
        assert_eq!(
            gunzip(&gzip(&data), 9_999).unwrap_err(),
            GunzipError::TooLarge
        );
        assert_eq!(gunzip(b"not gzip", 100).unwrap_err(), GunzipError::Corrupt);
    }
}
