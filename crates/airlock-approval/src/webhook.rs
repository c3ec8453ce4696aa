//! [`WebhookNotifier`]: approval events to a JSON webhook (signed), Slack
//! or Microsoft Teams, delivered in the background by a [`Delivery`].
//!
//! What leaves the gateway is a summary: who asked, for what operation on
//! which scope, under which rule, why, and a link; never the request body
//! (approvers read it, masked, where the link leads).
//!
//! The generic webhook's body is signed: `X-Airlock-Signature: t=<unix
//! seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the shared secret>`.
//! A receiver recomputes it, compares in constant time, and rejects a `t`
//! too far from its clock (a replay).

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use serde_json::{Value, json};

use crate::delivery::{Delivery, Outgoing};
use crate::{ApprovalEvent, ApprovalRequest, Notifier};

/// The header the generic webhook's signature travels in.
pub const SIGNATURE_HEADER: &str = "x-airlock-signature";

/// What the receiver understands.
#[derive(Clone, Debug)]
pub enum WebhookFormat {
    /// Airlock's own JSON, signed with HMAC-SHA256 under this secret.
    Json {
        /// The shared secret.
        secret: Vec<u8>,
    },
    /// A Slack incoming webhook: Block Kit.
    Slack,
    /// A Microsoft Teams incoming webhook or Workflows URL: an Adaptive Card.
    Teams,
}

impl WebhookFormat {
    fn kind(&self) -> &'static str {
        match self {
            WebhookFormat::Json { .. } => "webhook",
            WebhookFormat::Slack => "slack",
            WebhookFormat::Teams => "teams",
        }
    }
}

/// Posts approval events to one receiver.
///
/// ```
/// # async fn build(client: std::sync::Arc<dyn airlock_core::HttpClient>) {
/// use airlock_approval::{Delivery, Retry, WebhookFormat, WebhookNotifier};
///
/// let delivery = Delivery::start(client, Retry::default());
/// let slack = WebhookNotifier::new(
///     "https://hooks.slack.com/services/T000/B000/XXXX".parse().unwrap(),
///     WebhookFormat::Slack,
///     "https://airlock-admin.contoso.com/api/approvals",
///     delivery,
/// )
/// .rules(["storage-writes-need-approval"]);
/// # drop(slack);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct WebhookNotifier {
    url: http::Uri,
    format: WebhookFormat,
    link_base: String,
    rules: Option<Vec<String>>,
    delivery: Delivery,
}

impl WebhookNotifier {
    /// Posts to `url` in `format`; each message links to
    /// `{link_base}/{approval id}`.
    pub fn new(
        url: http::Uri,
        format: WebhookFormat,
        link_base: impl Into<String>,
        delivery: Delivery,
    ) -> Self {
        Self {
            url,
            format,
            link_base: link_base.into().trim_end_matches('/').to_owned(),
            rules: None,
            delivery,
        }
    }

    /// Only approvals asked for by these policy rules (default: all).
    #[must_use]
    pub fn rules<I, S>(mut self, rules: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rules = Some(rules.into_iter().map(Into::into).collect());
        self
    }

    /// The body and headers this notifier sends for `event` at `now`.
    fn message(&self, event: &ApprovalEvent, now: SystemTime) -> (Bytes, http::HeaderMap) {
        let request = event.request();
        let link = format!("{}/{}", self.link_base, request.id);
        let body = match &self.format {
            WebhookFormat::Json { .. } => json_body(event, &link),
            WebhookFormat::Slack => slack_body(event, &link),
            WebhookFormat::Teams => teams_body(event, &link),
        };
        let body = Bytes::from(body.to_string());
        let mut headers = http::HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let WebhookFormat::Json { secret } = &self.format {
            let seconds = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            if let Ok(value) = HeaderValue::from_str(&signature(secret, seconds, &body)) {
                headers.insert(SIGNATURE_HEADER, value);
            }
        }
        (body, headers)
    }
}

impl Notifier for WebhookNotifier {
    fn notify(&self, event: ApprovalEvent) {
        let rule = &event.request().rule;
        if self
            .rules
            .as_ref()
            .is_some_and(|rules| !rules.iter().any(|r| r == rule))
        {
            return;
        }
        let (body, headers) = self.message(&event, SystemTime::now());
        self.delivery.send(Outgoing {
            receiver: format!(
                "{} at {}",
                self.format.kind(),
                self.url.host().unwrap_or("?")
            ),
            url: self.url.clone(),
            headers,
            body,
        });
    }
}

/// `t=<seconds>,v1=<hex HMAC-SHA256 of "<seconds>.<body>">`.
///
/// ```
/// let header = airlock_approval::webhook_signature(b"secret", 1_700_000_000, b"{}");
/// assert!(header.starts_with("t=1700000000,v1="));
/// assert_eq!(header.len(), "t=1700000000,v1=".len() + 64);
/// ```
pub fn webhook_signature(secret: &[u8], seconds: u64, body: &[u8]) -> String {
    signature(secret, seconds, body)
}

fn signature(secret: &[u8], seconds: u64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut context = hmac::Context::with_key(&key);
    context.update(format!("{seconds}.").as_bytes());
    context.update(body);
    format!("t={seconds},v1={}", hex::encode(context.sign().as_ref()))
}

/// `new`, `decided` or `expired`.
fn kind(event: &ApprovalEvent) -> &'static str {
    match event {
        ApprovalEvent::New(_) => "new",
        ApprovalEvent::Decided(_) => "decided",
        ApprovalEvent::Expired(_) => "expired",
    }
}

/// One line: "Approval needed: build-agent wants PUT …".
fn headline(event: &ApprovalEvent) -> String {
    let request = event.request();
    let who = who(request);
    match event {
        ApprovalEvent::New(_) => format!("Approval needed: {who} wants {}", request.operation.name),
        ApprovalEvent::Decided(_) => format!(
            "Approval {}{}: {} for {who}",
            request.state,
            request
                .confirmation()
                .map(|d| format!(
                    " (confirmed by {}, the user the agent acts for)",
                    d.approver_label()
                ))
                .unwrap_or_default(),
            request.operation.name
        ),
        ApprovalEvent::Expired(_) => format!(
            "Approval expired: {} for {who}, nobody decided in time",
            request.operation.name
        ),
    }
}

fn who(request: &ApprovalRequest) -> String {
    request.requester.label()
}

/// The facts every format shows, in order.
fn facts(request: &ApprovalRequest) -> Vec<(&'static str, String)> {
    let mut facts = vec![
        (
            "Requester",
            format!("{} ({})", who(request), request.requester.id),
        ),
        ("Operation", request.operation.name.clone()),
        ("Scope", request.operation.scope.clone()),
        ("Rule", request.rule.clone()),
    ];
    if let Some(line) = &request.request {
        facts.push(("Request", format!("{} {}", line.method, line.target)));
        for (name, value) in &line.headers {
            facts.push(("Header", format!("{name}: {value}")));
        }
    }
    if let Some(justification) = &request.justification {
        facts.push(("Justification", justification.clone()));
    }
    if let Some(identity) = &request.elevate_to {
        facts.push(("Runs as", format!("{identity} (elevated)")));
    }
    if let Some(expires) = summary(request)["expiresAt"].as_str() {
        facts.push(("Expires", expires.to_owned()));
    }
    facts
}

/// The approval as the API lists it, without what stays in the gateway:
/// the body (even masked), its preview, the grant's fingerprint and what
/// Azure answered.
fn summary(request: &ApprovalRequest) -> Value {
    let mut value = serde_json::to_value(request).unwrap_or(Value::Null);
    if let Some(object) = value.as_object_mut() {
        for kept in ["body", "bodyPreview", "fingerprint", "execution"] {
            object.remove(kept);
        }
    }
    value
}

fn json_body(event: &ApprovalEvent, link: &str) -> Value {
    json!({
        "type": format!("approval.{}", kind(event)),
        "summary": headline(event),
        "url": link,
        "approval": summary(event.request()),
    })
}

fn slack_body(event: &ApprovalEvent, link: &str) -> Value {
    let fields: Vec<Value> = facts(event.request())
        .into_iter()
        .map(|(name, value)| json!({ "type": "mrkdwn", "text": format!("*{name}*\n{}", slack_escape(&value)) }))
        .collect();
    json!({
        "text": headline(event),
        "blocks": [
            { "type": "header", "text": { "type": "plain_text", "text": headline(event) } },
            { "type": "section", "fields": fields },
            { "type": "actions", "elements": [
                { "type": "button", "text": { "type": "plain_text", "text": "Open in Airlock" }, "url": link }
            ] },
        ],
    })
}

/// Slack's mrkdwn escapes: `&`, `<` and `>`.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn teams_body(event: &ApprovalEvent, link: &str) -> Value {
    let facts: Vec<Value> = facts(event.request())
        .into_iter()
        .map(|(name, value)| json!({ "title": name, "value": value }))
        .collect();
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    { "type": "TextBlock", "text": headline(event), "weight": "Bolder", "size": "Medium", "wrap": true },
                    { "type": "FactSet", "facts": facts },
                ],
                "actions": [ { "type": "Action.OpenUrl", "title": "Open in Airlock", "url": link } ],
            },
        }],
    })
}
