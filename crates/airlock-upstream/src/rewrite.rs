//! Rewrites Azure's answer so that absolute URLs point back at the gateway.

use airlock_core::{AirlockBody, AirlockError, BodyError, boxed, collect_limited, full};
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue, LOCATION};
use http::{HeaderMap, Response};
use hyper::body::Incoming;

use crate::headers::strip_hop_by_hop;
use crate::routing::Routes;

/// Response headers whose absolute URLs a client follows.
const URL_HEADERS: [HeaderName; 3] = [
    LOCATION,
    HeaderName::from_static("azure-asyncoperation"),
    HeaderName::from_static("operation-location"),
];

/// JSON fields that hold the next page's absolute URL.
const NEXT_LINK_FIELDS: [&str; 2] = ["nextLink", "@odata.nextLink"];

/// Strips hop-by-hop headers, rewrites URL headers and, in JSON bodies, the
/// next-page link. Bodies that cannot hold a link stream through untouched.
pub(crate) async fn response(
    response: Response<Incoming>,
    routes: &Routes,
    max_rewrite: u64,
) -> Result<Response<AirlockBody>, AirlockError> {
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    for name in &URL_HEADERS {
        rewrite_header(&mut parts.headers, name, routes);
    }
    if !is_json(&parts.headers) {
        return Ok(Response::from_parts(parts, boxed(body)));
    }
    let bytes = collect_limited(body, &parts.headers, max_rewrite)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge { limit } => AirlockError::UpstreamResponseTooLarge { limit },
            BodyError::Read(source) => {
                AirlockError::UpstreamUnavailable(format!("the response body broke off: {source}"))
            }
        })?;
    let linked = rewrite_next_link(&bytes, routes);
    let rewritten = rewrite_bases(linked.as_ref().unwrap_or(&bytes), routes).or(linked);
    let bytes = match rewritten {
        Some(rewritten) => {
            parts.headers.remove(CONTENT_LENGTH);
            rewritten
        }
        None => bytes,
    };
    Ok(Response::from_parts(parts, full(bytes)))
}

fn rewrite_header(headers: &mut HeaderMap, name: &HeaderName, routes: &Routes) {
    let rewritten = headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|url| routes.rewrite_url(url))
        .and_then(|url| HeaderValue::try_from(url).ok());
    if let Some(value) = rewritten {
        headers.insert(name, value);
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            let essence = ct
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            essence == "application/json" || essence.ends_with("+json")
        })
}

/// The body with its top-level next-page link rewritten, or `None` when there
/// is nothing to rewrite (the common case costs one substring search).
fn rewrite_next_link(body: &[u8], routes: &Routes) -> Option<Bytes> {
    if !contains(body, b"extLink\"") {
        return None;
    }
    let mut json: serde_json::Value = serde_json::from_slice(body).ok()?;
    let object = json.as_object_mut()?;
    let mut changed = false;
    for field in NEXT_LINK_FIELDS {
        if let Some(serde_json::Value::String(link)) = object.get_mut(field)
            && let Some(rewritten) = routes.rewrite_url(link)
        {
            *link = rewritten;
            changed = true;
        }
    }
    changed
        .then(|| serde_json::to_vec(&json).ok().map(Bytes::from))
        .flatten()
}

/// The body with every upstream base URL (ARM, the allowed vaults) that
/// starts a URL in it replaced by the gateway's, or `None` when there is
/// none: Key Vault `id` fields and URLs echoed in error messages then name
/// the gateway, not an internal address, and a client following them comes
/// back through it. A base is replaced only where the URL's authority ends
/// there (`/`, `?`, `#`, a quote or the end), never inside a longer host.
fn rewrite_bases(body: &[u8], routes: &Routes) -> Option<Bytes> {
    let mut current: Option<Vec<u8>> = None;
    for (upstream, gateway) in routes.base_rewrites() {
        let text = current.as_deref().unwrap_or(body);
        let (upstream, gateway) = (upstream.as_str(), gateway.as_str());
        let finder = memchr::memmem::Finder::new(upstream.as_bytes());
        if finder.find(text).is_none() {
            continue;
        }
        let mut out = Vec::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = finder.find(rest) {
            let end = at + upstream.len();
            out.extend_from_slice(&rest[..at]);
            let boundary = rest
                .get(end)
                .is_none_or(|b| matches!(b, b'/' | b'?' | b'#' | b'"' | b'\\'));
            out.extend_from_slice(if boundary {
                gateway.as_bytes()
            } else {
                upstream.as_bytes()
            });
            rest = &rest[end..];
        }
        out.extend_from_slice(rest);
        current = Some(out);
    }
    current.map(Bytes::from)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes() -> Routes {
        let config: crate::UpstreamConfig =
            toml::from_str("credential = { kind = \"static\", token = \"t\" }").unwrap();
        let gateway =
            crate::GatewayHosts::new(crate::Endpoint::parse("https://gw.example").unwrap());
        Routes::new(&config, &gateway).unwrap()
    }

    #[test]
    fn upstream_base_urls_in_bodies_name_the_gateway() {
        let routes = vault_routes();
        // The review's finding: Key Vault ids and echoed URLs named the
        // internal upstream.
        let body = br#"{"id":"https://kv1.vault.azure.net/secrets/db/v1","error":{"message":"no such path https://management.azure.com?x"},"other":"https://management.azure.com.evil.example/x","kv2":"https://kv2.vault.azure.net/secrets/a"}"#;
        let rewritten = rewrite_bases(body, &routes).unwrap();
        let text = std::str::from_utf8(&rewritten).unwrap();
        assert!(
            text.contains(r#""id":"https://kv1.gw.example/secrets/db/v1""#),
            "{text}"
        );
        assert!(text.contains("no such path https://gw.example?x"), "{text}");
        // Not a URL of an upstream: a longer host, a vault not allowed.
        assert!(
            text.contains("https://management.azure.com.evil.example/x"),
            "{text}"
        );
        assert!(
            text.contains("https://kv2.vault.azure.net/secrets/a"),
            "{text}"
        );
        assert!(rewrite_bases(br#"{"a":1}"#, &routes).is_none());
    }

    fn vault_routes() -> Routes {
        let config: crate::UpstreamConfig = toml::from_str(
            "key_vault.vaults = [\"kv1\"]\ncredential = { kind = \"static\", token = \"t\" }",
        )
        .unwrap();
        let gateway =
            crate::GatewayHosts::new(crate::Endpoint::parse("https://gw.example").unwrap());
        Routes::new(&config, &gateway).unwrap()
    }

    #[test]
    fn next_link_is_rewritten_and_values_untouched() {
        let body = br#"{"value":[{"id":"/subscriptions/s","link":"https://management.azure.com/keep"}],"nextLink":"https://management.azure.com/subscriptions/s/x?api-version=1&$skiptoken=2"}"#;
        let rewritten = rewrite_next_link(body, &routes()).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&rewritten).unwrap();
        assert_eq!(
            json["nextLink"],
            "https://gw.example/subscriptions/s/x?api-version=1&$skiptoken=2"
        );
        assert_eq!(
            json["value"][0]["link"],
            "https://management.azure.com/keep"
        );
    }

    #[test]
    fn bodies_without_a_foreign_link_are_left_alone() {
        assert!(rewrite_next_link(br#"{"value":[]}"#, &routes()).is_none());
        assert!(rewrite_next_link(br#"{"nextLink":null}"#, &routes()).is_none());
        assert!(
            rewrite_next_link(br#"{"nextLink":"https://elsewhere.example/x"}"#, &routes())
                .is_none()
        );
        assert!(rewrite_next_link(b"not json nextLink\"", &routes()).is_none());
    }

    #[test]
    fn json_content_types() {
        for (ct, json) in [
            ("application/json; charset=utf-8", true),
            ("application/problem+json", true),
            ("text/plain", false),
            ("application/octet-stream", false),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
            assert_eq!(is_json(&headers), json, "{ct}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn url_headers_are_rewritten_only_for_allowed_upstreams() {
        let mut headers = HeaderMap::new();
        headers.insert(
            LOCATION,
            HeaderValue::from_static("https://management.azure.com/op/1?api-version=1"),
        );
        headers.insert(
            "azure-asyncoperation",
            HeaderValue::from_static("https://attacker.example/op"),
        );
        for name in &URL_HEADERS {
            rewrite_header(&mut headers, name, &routes());
        }
        assert_eq!(headers[LOCATION], "https://gw.example/op/1?api-version=1");
        assert_eq!(
            headers["azure-asyncoperation"],
            "https://attacker.example/op"
        );
    }
}
