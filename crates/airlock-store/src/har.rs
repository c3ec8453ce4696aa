//! Sessions as HAR 1.2 (HTTP Archive) files, for browser devtools and HAR
//! viewers: `airlock sessions export ID --har`.
//!
//! Each session is a page, each request an entry. The request carries
//! Airlock's request id and session as headers (never the client's
//! credential: the trail does not hold it), the masked request excerpt as
//! `postData`; the response carries Azure's request ids as headers and the
//! masked response excerpt as its content. Airlock's decision, rule,
//! approval and principal go into an `_airlock` field (HAR allows custom
//! fields whose names start with `_`).
//!
//! ```
//! use airlock_recorder::{AuditEvent, ChainHead, chain::EXAMPLE_EVENT};
//!
//! let event: AuditEvent = serde_json::from_str(EXAMPLE_EVENT).unwrap();
//! let har = airlock_store::har::session_har(&[ChainHead::default().link(event)]);
//! let entry = &har["log"]["entries"][0];
//! assert_eq!(har["log"]["version"], "1.2");
//! assert_eq!(entry["request"]["url"], "https://localhost/subscriptions/s/resourcegroups?api-version=2021-04-01");
//! assert_eq!(entry["_airlock"]["rule"], "agents-read");
//! ```

use airlock_recorder::{AuditEvent, ChainedEvent};
use serde_json::{Value, json};

/// The host a request went to when the event does not say (ARM).
const DEFAULT_HOST: &str = "management.azure.com";

/// The HAR 1.2 document for `events` (in chain order): one page per session,
/// in order of their first request, one entry per event.
pub fn session_har(events: &[ChainedEvent]) -> Value {
    let mut pages: Vec<Value> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for chained in events {
        let event = &chained.event;
        if !seen.contains(&event.session_id.as_str()) {
            seen.push(&event.session_id);
            pages.push(page(event));
        }
    }
    json!({
        "log": {
            "version": "1.2",
            "creator": {"name": "airlock", "version": env!("CARGO_PKG_VERSION")},
            "pages": pages,
            "entries": events.iter().map(entry).collect::<Vec<_>>(),
        }
    })
}

fn page(first: &AuditEvent) -> Value {
    let who = first
        .principal
        .as_ref()
        .map(|p| p.display_name.clone().unwrap_or_else(|| p.id.clone()));
    let title = match who {
        Some(who) => format!("Airlock session {} ({who})", first.session_id),
        None => format!("Airlock session {}", first.session_id),
    };
    json!({
        "startedDateTime": time(first),
        "id": first.session_id,
        "title": title,
        "pageTimings": {"onContentLoad": -1, "onLoad": -1},
    })
}

fn entry(chained: &ChainedEvent) -> Value {
    let event = &chained.event;
    let host = event.host.as_deref().unwrap_or(DEFAULT_HOST);
    let mut url = format!("https://{host}{}", event.path);
    let mut query = Vec::new();
    if let Some(version) = &event.api_version {
        url.push_str("?api-version=");
        url.push_str(version);
        query.push(header("api-version", version));
    }
    let mut request_headers = Vec::new();
    if let Some(id) = &event.request_id {
        request_headers.push(header("x-airlock-request-id", id));
    }
    request_headers.push(header("x-airlock-session", &event.session_id));
    let mut request = json!({
        "method": event.method,
        "url": url,
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": request_headers,
        "queryString": query,
        "headersSize": -1,
        "bodySize": event.bytes_in,
    });
    if let Some(text) = &event.request_body {
        request["postData"] = json!({"mimeType": "application/json", "text": text});
    }

    let mut response_headers = Vec::new();
    if let Some(id) = &event.upstream_request_id {
        response_headers.push(header("x-ms-request-id", id));
    }
    if let Some(id) = &event.upstream_correlation_id {
        response_headers.push(header("x-ms-correlation-request-id", id));
    }
    let mut content = json!({"size": event.bytes_out, "mimeType": "application/json"});
    if let Some(text) = &event.response_body {
        content["text"] = json!(text);
    }
    let status_text = http::StatusCode::from_u16(event.status)
        .ok()
        .and_then(|status| status.canonical_reason())
        .unwrap_or("");

    json!({
        "pageref": event.session_id,
        "startedDateTime": time(event),
        "time": event.duration_ms,
        "request": request,
        "response": {
            "status": event.status,
            "statusText": status_text,
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": response_headers,
            "content": content,
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": event.bytes_out,
        },
        "cache": {},
        "timings": {"send": 0, "wait": event.duration_ms, "receive": 0},
        "_airlock": {
            "seq": chained.seq,
            "hash": chained.hash,
            "eventId": event.id,
            "principal": event.principal,
            "operations": event.operations,
            "scope": event.scope,
            "decision": event.decision,
            "rule": event.rule,
            "approvalId": event.approval_id,
            "approvers": event.approvers,
            "justification": event.justification,
            "maskedCount": event.masked_count,
            "maskedPaths": event.masked_paths,
            "outcome": event.outcome,
            "upstreamStatus": event.upstream_status,
            "upstreamIdentity": event.upstream_identity,
            "elevated": event.elevated,
            "errorCode": event.error_code,
        },
    })
}

fn header(name: &str, value: &str) -> Value {
    json!({"name": name, "value": value})
}

fn time(event: &AuditEvent) -> String {
    humantime::format_rfc3339_millis(event.time).to_string()
}
