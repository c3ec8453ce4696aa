//! Rewrites Azure's answer so that absolute URLs point back at the gateway.

use airlock_core::{
    AirlockBody, AirlockError, BodyError, MemoryBudget, Uncollected, boxed, collect_limited, full,
};
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue, LOCATION};
use http::{HeaderMap, Response};
use hyper::body::Incoming;

use crate::headers::strip_hop_by_hop;
use crate::routing::{Face, Routes};

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
/// URLs are given back in `face`'s names.
pub(crate) async fn response(
    response: Response<Incoming>,
    routes: &Routes,
    face: Face,
    max_rewrite: u64,
    budget: Option<&MemoryBudget>,
) -> Result<Response<AirlockBody>, AirlockError> {
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    for name in &URL_HEADERS {
        rewrite_header(&mut parts.headers, name, routes, face);
    }
    if !is_json(&parts.headers) {
        return Ok(Response::from_parts(parts, boxed(body)));
    }
    let unreadable = |e| match e {
        BodyError::TooLarge { limit } => AirlockError::UpstreamResponseTooLarge { limit },
        BodyError::Read(source) => {
            AirlockError::UpstreamUnavailable(format!("the response body broke off: {source}"))
        }
    };
    let (bytes, share) = match budget {
        None => (
            collect_limited(body, &parts.headers, max_rewrite)
                .await
                .map_err(unreadable)?,
            None,
        ),
        Some(budget) => {
            let (bytes, share) = budget
                .collect(body, &parts.headers, max_rewrite)
                .await
                .map_err(|e| match e {
                    Uncollected::Body(e) => unreadable(e),
                    Uncollected::Busy => AirlockError::MemoryBusy {
                        budget: budget.bytes(),
                    },
                })?;
            (bytes, Some(share))
        }
    };
    let linked = rewrite_next_link(&bytes, routes, face);
    let rewritten = routes
        .rewrite_bases(linked.as_ref().unwrap_or(&bytes), face)
        .map(Bytes::from)
        .or(linked);
    let bytes = match rewritten {
        Some(rewritten) => {
            parts.headers.remove(CONTENT_LENGTH);
            rewritten
        }
        None => bytes,
    };
    let body = match share {
        Some(share) => full(bytes).hold(share),
        None => full(bytes),
    };
    Ok(Response::from_parts(parts, body))
}

fn rewrite_header(headers: &mut HeaderMap, name: &HeaderName, routes: &Routes, face: Face) {
    let rewritten = headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|url| routes.rewrite_url_for(url, face))
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
fn rewrite_next_link(body: &[u8], routes: &Routes, face: Face) -> Option<Bytes> {
    memchr::memmem::find(body, b"extLink\"")?;
    let mut json: serde_json::Value = serde_json::from_slice(body).ok()?;
    let object = json.as_object_mut()?;
    let mut changed = false;
    for field in NEXT_LINK_FIELDS {
        if let Some(serde_json::Value::String(link)) = object.get_mut(field)
            && let Some(rewritten) = routes.rewrite_url_for(link, face)
        {
            *link = rewritten;
            changed = true;
        }
    }
    changed
        .then(|| serde_json::to_vec(&json).ok().map(Bytes::from))
        .flatten()
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
        let rewritten = routes.rewrite_bases(body, Face::Gateway).unwrap();
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
        assert!(routes.rewrite_bases(br#"{"a":1}"#, Face::Gateway).is_none());
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
        let rewritten = rewrite_next_link(body, &routes(), Face::Gateway).unwrap();
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
        assert!(rewrite_next_link(br#"{"value":[]}"#, &routes(), Face::Gateway).is_none());
        assert!(rewrite_next_link(br#"{"nextLink":null}"#, &routes(), Face::Gateway).is_none());
        assert!(
            rewrite_next_link(
                br#"{"nextLink":"https://elsewhere.example/x"}"#,
                &routes(),
                Face::Gateway
            )
            .is_none()
        );
        assert!(rewrite_next_link(b"not json nextLink\"", &routes(), Face::Gateway).is_none());
    }

    /// A forward-proxy client addressed Azure's own names: the local
    /// upstreams' URLs come back as those names, among thousands of vaults.
    #[test]
    fn in_azure_names_for_a_forward_proxy_client() {
        let vaults: Vec<String> = (0..3000).map(|i| format!("\"kv{i}\"")).collect();
        let config: crate::UpstreamConfig = toml::from_str(&format!(
            "arm_url = \"http://127.0.0.1:9000\"\nallow_insecure_http = true\nkey_vault.endpoint = \"http://{{vault}}.vault.localhost:9001\"\nkey_vault.vaults = [{}]\ncredential = {{ kind = \"static\", token = \"t\" }}",
            vaults.join(", ")
        ))
        .unwrap();
        let gateway =
            crate::GatewayHosts::new(crate::Endpoint::parse("https://gw.example").unwrap());
        let routes = Routes::new(&config, &gateway).unwrap();
        let body = br#"{"id":"http://kv2999.vault.localhost:9001/secrets/a","arm":"http://127.0.0.1:9000/subscriptions/s","kv1":"http://kv1.vault.localhost:9001","longer":"http://kv1.vault.localhost:90012/x"}"#;
        let azure = routes.rewrite_bases(body, Face::Azure).unwrap();
        assert_eq!(
            std::str::from_utf8(&azure).unwrap(),
            r#"{"id":"https://kv2999.vault.azure.net/secrets/a","arm":"https://management.azure.com/subscriptions/s","kv1":"https://kv1.vault.azure.net","longer":"http://kv1.vault.localhost:90012/x"}"#
        );
        let gateway = routes.rewrite_bases(body, Face::Gateway).unwrap();
        assert!(
            std::str::from_utf8(&gateway)
                .unwrap()
                .contains(r#""id":"https://kv2999.gw.example/secrets/a""#)
        );
        let next =
            br#"{"nextLink":"http://127.0.0.1:9000/subscriptions/s/resourcegroups?$skiptoken=2"}"#;
        let linked = rewrite_next_link(next, &routes, Face::Azure).unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&linked).unwrap()["nextLink"],
            "https://management.azure.com/subscriptions/s/resourcegroups?$skiptoken=2"
        );
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
            rewrite_header(&mut headers, name, &routes(), Face::Gateway);
        }
        assert_eq!(headers[LOCATION], "https://gw.example/op/1?api-version=1");
        assert_eq!(
            headers["azure-asyncoperation"],
            "https://attacker.example/op"
        );
    }
}
