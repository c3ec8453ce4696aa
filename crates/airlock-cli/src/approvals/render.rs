//! The text the commands print: the views of the API's JSON, the `list`
//! table, the `show` details, the `approve`/`deny` summary, and the helpers
//! that keep text from the API safe for a terminal.

use std::time::{Duration, SystemTime};

use humantime_serde::re::humantime;
use serde::Deserialize;
use serde_json::Value;

use super::ListState;

/// An API answer that is not the approval (or list) the CLI expected.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MalformedAnswer(String);

/// The widest scope shown in the list table; longer ones keep their tail.
const SCOPE_COLUMN: usize = 60;

/// One approval as the API shows it (unknown fields ignored, missing ones empty).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ApprovalView {
    /// Its id.
    pub id: String,
    /// Where it stands.
    pub state: String,
    /// Who asked.
    pub requester: RequesterView,
    /// What for.
    pub operation: OperationView,
    /// The rule that asked for approval.
    pub rule: String,
    /// How many distinct approvers must approve.
    pub min_approvals: u32,
    /// Whether the rule asks for a justification.
    pub justification_required: bool,
    /// The requester's justification.
    pub justification: Option<String>,
    /// The request as it will run.
    pub request: Option<RequestLineView>,
    /// The body as approvers see it (masked, perhaps shorter than the body).
    pub body_preview: Option<String>,
    /// The whole masked body's length (`airlock approvals body` prints it).
    pub masked_body_bytes: Option<u64>,
    /// `hold` or `async`.
    pub wait: Option<String>,
    /// When it was asked (RFC 3339).
    pub created_at: Option<String>,
    /// When it can no longer be decided.
    pub expires_at: Option<String>,
    /// Until when the grant may be used.
    pub grant_expires_at: Option<String>,
    /// The approvers' answers, in order.
    pub decisions: Vec<DecisionView>,
    /// What Azure answered, once an approved async request was sent.
    pub execution: Option<ExecutionView>,
    /// Whether the caller can approve or deny it now.
    pub can_decide: bool,
    /// The upstream identity the approved request runs as (elevation).
    pub elevate_to: Option<String>,
    /// An approval of a reveal: the answer reaches the requester in clear.
    pub reveal: bool,
    /// A reveal asked with an operation that needs approval itself: the
    /// reveal rule's quorum, needed too.
    pub reveal_quorum: Option<RevealQuorumView>,
    /// An approval of an answer Azure already gave, held until released.
    pub answer: Option<HeldAnswerView>,
}

/// The reveal rule's quorum on an approval that the operation needs too.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RevealQuorumView {
    /// The reveal rule.
    pub rule: String,
    /// How many of its approvers must approve.
    pub min_approvals: u32,
}

/// What approvers see of a held answer.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HeldAnswerView {
    /// Azure's status.
    pub status: u16,
    /// Its size in bytes (masked).
    pub bytes: u64,
    /// Its media type.
    pub content_type: Option<String>,
    /// How many items its list holds.
    pub items: Option<u64>,
    /// The first items' names.
    pub names: Vec<String>,
    /// How many values were masked in it.
    pub masked: u32,
    /// How many secret values it carries in clear (revealed).
    pub revealed: u32,
}

/// The HTTP request an approval is for.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RequestLineView {
    /// The method.
    pub method: String,
    /// Path and query.
    pub target: String,
    /// The whole body's length in bytes.
    pub body_bytes: u64,
    /// The other headers that change what Azure does, which the grant binds.
    pub headers: Vec<(String, String)>,
}

/// Who asked.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RequesterView {
    /// Object id.
    pub id: String,
    /// Tenant id.
    pub tenant_id: String,
    /// Display name.
    pub display_name: Option<String>,
    /// `user`, `agent_for_user`, … (absent from older gateways).
    pub kind: Option<String>,
    /// The AI agent that asked, alone or for this user.
    pub agent: Option<airlock_core::Agent>,
}

impl RequesterView {
    /// Who asked, in words (`agent release-bot (blueprint …) acting for Alice`).
    fn label(&self) -> String {
        let subject = match &self.display_name {
            Some(name) if !name.is_empty() => name,
            _ => &self.id,
        };
        clean(&airlock_core::describe_requester(
            subject,
            self.kind.as_deref(),
            self.agent.as_ref(),
        ))
    }
}

/// What was asked for.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OperationView {
    /// The RBAC operation name.
    pub name: String,
    /// The resource scope.
    pub scope: String,
    /// The operations it carries.
    pub children: Vec<String>,
}

/// One approver's answer.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DecisionView {
    /// Object id.
    pub approver: String,
    /// Display name.
    pub approver_name: Option<String>,
    /// Approved (`true`) or denied.
    pub approve: bool,
    /// The comment.
    pub comment: Option<String>,
    /// The acting user's confirmation (or rejection), not an approver's.
    pub confirmation: bool,
    /// The approver is one of the reveal quorum's.
    pub for_reveal: bool,
    /// The approver is only the reveal quorum's (not the operation's).
    pub reveal_only: bool,
    /// When (RFC 3339).
    pub at: Option<String>,
}

/// What Azure answered to the approved request.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExecutionView {
    /// Azure's status (0: no answer).
    pub status: u16,
    /// The error code, if it failed.
    pub error_code: Option<String>,
    /// The error message.
    pub error_message: Option<String>,
}

impl ApprovalView {
    /// Reads one approval from the API's JSON.
    ///
    /// # Errors
    ///
    /// When the JSON is not shaped like an approval.
    pub fn from_json(value: &Value) -> Result<Self, MalformedAnswer> {
        let view = Self::deserialize(value).map_err(|e| MalformedAnswer(e.to_string()))?;
        if view.id.is_empty() {
            return Err(MalformedAnswer("an approval without an id".into()));
        }
        Ok(view)
    }

    /// How many distinct approvers approved.
    pub fn approvals(&self) -> usize {
        self.distinct_approvers(|d| !d.reveal_only)
    }

    /// How many distinct approvers of the reveal quorum approved.
    pub fn reveal_approvals(&self) -> usize {
        self.distinct_approvers(|d| d.for_reveal)
    }

    fn distinct_approvers(&self, counts: impl Fn(&DecisionView) -> bool) -> usize {
        let mut seen: Vec<String> = Vec::new();
        for decision in self
            .decisions
            .iter()
            .filter(|d| d.approve && !d.confirmation && counts(d))
        {
            let id = decision.approver.to_ascii_lowercase();
            if !seen.contains(&id) {
                seen.push(id);
            }
        }
        seen.len()
    }

    /// How many distinct approvers must approve: at least one.
    fn required(&self) -> usize {
        self.min_approvals.max(1) as usize
    }
}

/// The `list` table: id, state, requester, operation, scope, rule, age,
/// approvals (n/min) and whether you can decide it.
///
/// # Errors
///
/// When the JSON is not the API's list.
pub fn render_list(
    value: &Value,
    state: ListState,
    now: SystemTime,
) -> Result<String, MalformedAnswer> {
    let items = value
        .get("value")
        .and_then(Value::as_array)
        .ok_or_else(|| MalformedAnswer("no `value` list".into()))?;
    let approvals = items
        .iter()
        .map(ApprovalView::from_json)
        .collect::<Result<Vec<_>, _>>()?;
    if approvals.is_empty() {
        return Ok(match state {
            ListState::All => "no approvals you are an approver of\n".to_owned(),
            state => format!("no {} approvals you are an approver of\n", state.as_str()),
        });
    }
    let header = [
        "ID",
        "STATE",
        "REQUESTER",
        "OPERATION",
        "SCOPE",
        "RULE",
        "AGE",
        "APPROVALS",
        "CAN DECIDE",
    ];
    let rows: Vec<[String; 9]> = approvals
        .iter()
        .map(|a| {
            [
                clean(&a.id),
                clean(&a.state),
                a.requester.label(),
                clean(&a.operation.name),
                keep_tail(&clean(&a.operation.scope), SCOPE_COLUMN),
                match (&a.elevate_to, a.reveal) {
                    (Some(identity), _) => {
                        format!("{} (elevates to {})", clean(&a.rule), clean(identity))
                    }
                    (None, true) => format!("{} (reveals the answer)", clean(&a.rule)),
                    (None, false) if a.answer.is_some() => {
                        format!("{} (holds an answer)", clean(&a.rule))
                    }
                    (None, false) => clean(&a.rule),
                },
                a.created_at
                    .as_deref()
                    .and_then(parse_time)
                    .map_or_else(|| "?".to_owned(), |t| age(now, t)),
                format!("{}/{}", a.approvals(), a.required()),
                if a.can_decide { "yes" } else { "no" }.to_owned(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            text.push_str(cell);
            if i + 1 < cells.len() {
                text.extend(std::iter::repeat_n(' ', width - cell.chars().count() + 2));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&header);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    Ok(out)
}

/// The body as approvers see it, saying so whenever the preview is not the
/// whole (masked) body.
fn body_text(a: &ApprovalView) -> String {
    // The masked body's length; older approvals only know the body's as sent.
    let total = a
        .masked_body_bytes
        .or_else(|| a.request.as_ref().map(|r| r.body_bytes));
    match (&a.body_preview, total) {
        (_, Some(0)) => "(empty)".to_owned(),
        (None, Some(total)) => format!("({total} bytes, no preview)"),
        (None, None) => "(not recorded)".to_owned(),
        (Some(preview), Some(total)) if (preview.len() as u64) < total => format!(
            "{}\n(the first {} of the masked body's {total} bytes; `airlock approvals body {}` prints it all)",
            clean_multiline(preview),
            preview.len(),
            clean(&a.id)
        ),
        (Some(preview), _) => clean_multiline(preview),
    }
}

/// A whole body for the terminal: line breaks kept, every other control
/// character (an escape sequence the requester wrote, a tab) a space.
pub(crate) fn clean_body(text: &str) -> String {
    text.lines().map(clean).collect::<Vec<_>>().join("\n")
}

/// The `show` view: everything an approver needs to decide.
///
/// # Errors
///
/// When the JSON is not an approval.
pub fn render_details(value: &Value, now: SystemTime) -> Result<String, MalformedAnswer> {
    let a = ApprovalView::from_json(value)?;
    let mut out = String::new();
    let mut field = |name: &str, text: String| {
        out.push_str(&format!("{name:<14}{text}\n"));
    };
    field("Approval", clean(&a.id));
    let decide = if a.can_decide {
        " (you can approve or deny it)"
    } else {
        ""
    };
    field("State", format!("{}{decide}", clean(&a.state)));
    let requester = match &a.requester.display_name {
        Some(name) if !name.is_empty() => format!(
            "{} ({}, tenant {})",
            a.requester.label(),
            clean(&a.requester.id),
            clean(&a.requester.tenant_id)
        ),
        _ => format!(
            "{} (tenant {})",
            a.requester.label(),
            clean(&a.requester.tenant_id)
        ),
    };
    field("Requester", requester);
    if let Some(agent) = &a.requester.agent {
        field("Agent", format!("app {}", clean(agent.app_id())));
    }
    field("Operation", clean(&a.operation.name));
    for child in &a.operation.children {
        field("", format!("+ {}", clean(child)));
    }
    field("Scope", clean(&a.operation.scope));
    if let Some(request) = &a.request {
        field(
            "Request",
            format!("{} {}", clean(&request.method), clean(&request.target)),
        );
        for (name, value) in &request.headers {
            field("Header", format!("{}: {}", clean(name), clean(value)));
        }
    }
    field("Body", body_text(&a));
    field("Rule", clean(&a.rule));
    field(
        "Runs as",
        match &a.elevate_to {
            Some(identity) => format!(
                "{} (ELEVATED: this request only, instead of the requester's everyday identity)",
                clean(identity)
            ),
            None => "the requester's everyday upstream identity".to_owned(),
        },
    );
    if let Some(answer) = &a.answer {
        let items = answer.items.map_or_else(String::new, |n| {
            let names = if answer.names.is_empty() {
                String::new()
            } else {
                format!(": {}", clean(&answer.names.join(", ")))
            };
            format!(", a list of {n} item(s){names}")
        });
        field(
            "Holds",
            format!(
                "AZURE'S ANSWER, NOT YET SENT: status {}, {} bytes{}{items}, {} value(s) masked in it{}",
                answer.status,
                answer.bytes,
                answer
                    .content_type
                    .as_deref()
                    .map(|t| format!(" of {}", clean(t)))
                    .unwrap_or_default(),
                answer.masked,
                if answer.revealed == 0 {
                    String::new()
                } else {
                    format!(", {} IN CLEAR (revealed)", answer.revealed)
                }
            ),
        );
    }
    if a.reveal {
        field(
            "Reveals",
            "THE ANSWER IN CLEAR, to the requester, for this one request (the value is never shown here)".to_owned(),
        );
    }
    if let Some(wait) = &a.wait {
        field("Wait", clean(wait));
    }
    field(
        "Approvals",
        format!("{} of {}", a.approvals(), a.required()),
    );
    if let Some(quorum) = &a.reveal_quorum {
        field(
            "And reveal",
            format!(
                "{} of {} from the approvers of reveal rule {}",
                a.reveal_approvals(),
                quorum.min_approvals.max(1),
                clean(&quorum.rule)
            ),
        );
    }
    field("Created", when(a.created_at.as_deref(), now));
    field("Expires", when(a.expires_at.as_deref(), now));
    if a.grant_expires_at.is_some() {
        field("Grant until", when(a.grant_expires_at.as_deref(), now));
    }
    let justification = match (&a.justification, a.justification_required) {
        (Some(text), _) => clean_multiline(text),
        (None, true) => "(required, none given)".to_owned(),
        (None, false) => "(none)".to_owned(),
    };
    field("Justification", justification);
    if a.decisions.is_empty() {
        field("Decisions", "(none yet)".to_owned());
    }
    for (i, d) in a.decisions.iter().enumerate() {
        let who = match &d.approver_name {
            Some(name) if !name.is_empty() => {
                format!("{} ({})", clean(name), clean(&d.approver))
            }
            _ => clean(&d.approver),
        };
        let verb = match (d.confirmation, d.approve) {
            (false, true) => "approved",
            (false, false) => "denied",
            (true, true) => "confirmed (the user the agent acted for)",
            (true, false) => "rejected (the user the agent acted for)",
        };
        let at =
            d.at.as_deref()
                .map(|t| format!("{}  ", clean(t)))
                .unwrap_or_default();
        let comment = d
            .comment
            .as_deref()
            .map(|c| format!(": {}", clean_multiline(c)))
            .unwrap_or_default();
        field(
            if i == 0 { "Decisions" } else { "" },
            format!("{at}{who} {verb}{comment}"),
        );
    }
    if let Some(execution) = &a.execution {
        let mut text = if execution.status == 0 {
            "sent, no answer from Azure".to_owned()
        } else {
            format!("Azure answered {}", execution.status)
        };
        if let Some(code) = &execution.error_code {
            text.push_str(&format!(" {}", clean(code)));
        }
        if let Some(message) = &execution.error_message {
            text.push_str(&format!(": {}", clean(message)));
        }
        field("Execution", text);
    }
    Ok(out)
}

/// What `approve` and `deny` print: the approval's new state.
///
/// # Errors
///
/// When the JSON is not an approval.
pub fn render_decided(value: &Value) -> Result<String, MalformedAnswer> {
    let a = ApprovalView::from_json(value)?;
    let (approvals, min) = (a.approvals(), a.required());
    let detail = match (a.state.as_str(), &a.reveal_quorum) {
        // Two quorums: say where each stands.
        ("pending", Some(quorum)) => format!(
            " ({approvals} of {min} approvals; {} of {} from the approvers of reveal rule {})",
            a.reveal_approvals(),
            quorum.min_approvals.max(1),
            clean(&quorum.rule)
        ),
        ("pending", None) => format!(
            " ({approvals} of {min} approvals; {} more needed)",
            min.saturating_sub(approvals).max(1)
        ),
        ("approved", _) => format!(" ({approvals} of {min} approvals)"),
        _ => String::new(),
    };
    Ok(format!(
        "approval {} is now {}{detail}\n",
        clean(&a.id),
        clean(&a.state)
    ))
}

fn parse_time(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(text).ok()
}

/// `2026-05-01T10:00:00.000Z (5m ago)`, or `in 5m` for the future.
fn when(text: Option<&str>, now: SystemTime) -> String {
    let Some(text) = text else {
        return "?".to_owned();
    };
    match parse_time(text) {
        Some(t) if t <= now => format!("{} ({} ago)", clean(text), age(now, t)),
        Some(t) => format!(
            "{} (in {})",
            clean(text),
            short_duration(t.duration_since(now).unwrap_or_default())
        ),
        None => clean(text),
    }
}

fn age(now: SystemTime, then: SystemTime) -> String {
    short_duration(now.duration_since(then).unwrap_or_default())
}

/// `45s`, `12m`, `3h`, `2d`: the largest whole unit.
fn short_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86_400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// The last `max` characters, marked with `…` when cut.
fn keep_tail(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_owned();
    }
    let tail: String = text.chars().skip(count - max + 1).collect();
    format!("…{tail}")
}

/// Text from the API, safe for a terminal: control characters (escape
/// sequences included) become spaces.
pub(super) fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// As [`clean`], but line breaks are kept, indented under the field.
fn clean_multiline(text: &str) -> String {
    text.lines()
        .map(clean)
        .collect::<Vec<_>>()
        .join(&format!("\n{:14}", ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";
    const SCOPE: &str = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/demo-rg/providers/Microsoft.Storage/storageAccounts/demosa";

    fn now() -> SystemTime {
        humantime::parse_rfc3339("2026-05-01T12:00:00Z").unwrap()
    }

    fn approval(state: &str, can_decide: bool, decisions: &Value) -> Value {
        serde_json::json!({
            "id": ID,
            "requester": {"id": "agent-oid", "tenantId": "tenant-1", "displayName": "build-agent", "groups": []},
            "operation": {"name": "Microsoft.Storage/storageAccounts/write", "scope": SCOPE, "children": []},
            "rule": "storage-needs-approval",
            "approvers": {"groups": ["ops"], "ids": []},
            "minApprovals": 2,
            "justificationRequired": true,
            "justification": "release 4.2\nneeds a new account",
            "fingerprint": "ab",
            "wait": "hold",
            "createdAt": "2026-05-01T11:48:00.000Z",
            "expiresAt": "2026-05-01T12:10:00.000Z",
            "grantTtlMs": 600000,
            "grantExpiresAt": null,
            "decisions": decisions,
            "state": state,
            "execution": null,
            "canDecide": can_decide,
            "someFutureField": 1
        })
    }

    #[test]
    fn the_list_is_a_table_with_every_column() {
        let value = serde_json::json!({"value": [
            approval("pending", true, &serde_json::json!([
                {"approver": "carol", "approverName": "Carol", "approve": true, "comment": null, "at": "2026-05-01T11:50:00.000Z"},
                {"approver": "CAROL", "approverName": "Carol", "approve": true, "comment": null, "at": "2026-05-01T11:51:00.000Z"}
            ])),
        ]});
        let table = render_list(&value, ListState::Pending, now()).unwrap();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2, "{table}");
        for column in [
            "ID",
            "STATE",
            "REQUESTER",
            "OPERATION",
            "SCOPE",
            "RULE",
            "AGE",
            "APPROVALS",
            "CAN DECIDE",
        ] {
            assert!(lines[0].contains(column), "{table}");
        }
        let row = lines[1];
        assert!(row.starts_with(ID), "{row}");
        for cell in [
            "pending",
            "build-agent",
            "Microsoft.Storage/storageAccounts/write",
            "storage-needs-approval",
            "12m",
            // The same approver twice counts once.
            "1/2",
        ] {
            assert!(row.contains(cell), "{cell} missing: {row}");
        }
        assert!(row.ends_with("yes"), "{row}");
        // The long scope keeps its informative tail.
        assert!(
            row.contains("…") && row.contains("storageAccounts/demosa"),
            "{row}"
        );
        // Columns line up: each header starts where its cells start.
        let at = lines[0].find("STATE").unwrap();
        assert_eq!(&row[at..at + "pending".len()], "pending");
    }

    #[test]
    fn an_empty_list_says_so() {
        let value = serde_json::json!({"value": []});
        assert_eq!(
            render_list(&value, ListState::Pending, now()).unwrap(),
            "no pending approvals you are an approver of\n"
        );
        assert_eq!(
            render_list(&value, ListState::All, now()).unwrap(),
            "no approvals you are an approver of\n"
        );
        assert!(render_list(&serde_json::json!({"error": {}}), ListState::All, now()).is_err());
    }

    /// The review's finding: `show` showed no body, and nothing said what
    /// would run. It shows the method, the path with its query, and the
    /// body, saying when the preview is shorter than the body.
    #[test]
    fn details_show_the_request_as_it_will_run_and_a_cut_preview_says_so() {
        let mut value = approval("pending", true, &serde_json::json!([]));
        value["request"] = serde_json::json!({
            "method": "PUT",
            "target": format!("{SCOPE}?api-version=2023-05-01"),
            "bodyBytes": 20000
        });
        value["bodyPreview"] = serde_json::json!(r#"{"location":"westeurope","#);
        let text = render_details(&value, now()).unwrap();
        assert!(
            text.contains(&format!("Request       PUT {SCOPE}?api-version=2023-05-01")),
            "{text}"
        );
        assert!(
            text.contains(r#"Body          {"location":"westeurope","#),
            "{text}"
        );
        assert!(
            text.contains(&format!("(the first 25 of the masked body's 20000 bytes; `airlock approvals body {ID}` prints it all)")),
            "{text}"
        );
        // The masked body's own length decides, where the API gives it (a
        // masked body is not as long as the body sent).
        value["maskedBodyBytes"] = serde_json::json!(25);
        let whole = render_details(&value, now()).unwrap();
        assert!(!whole.contains("the first"), "{whole}");
        value["maskedBodyBytes"] = serde_json::Value::Null;
        value["request"]["bodyBytes"] = serde_json::json!(25);
        let whole = render_details(&value, now()).unwrap();
        assert!(!whole.contains("the first"), "{whole}");
        value["request"]["bodyBytes"] = serde_json::json!(0);
        value["bodyPreview"] = serde_json::Value::Null;
        assert!(
            render_details(&value, now())
                .unwrap()
                .contains("Body          (empty)")
        );
    }

    /// A reveal of an operation held for approval: the operation's count
    /// leaves out approvers who are only the reveal rule's, and the
    /// reveal's quorum has a line of its own.
    #[test]
    fn details_count_a_reveal_quorum_apart() {
        let mut value = approval(
            "pending",
            true,
            &serde_json::json!([
                {"approver": "carol", "approve": true, "at": "2026-05-01T11:50:00.000Z"},
                {"approver": "kim", "approve": true, "forReveal": true, "revealOnly": true, "at": "2026-05-01T11:51:00.000Z"}
            ]),
        );
        value["reveal"] = serde_json::json!(true);
        value["revealQuorum"] = serde_json::json!({"rule": "secrets-by-keeper", "approvers": {"ids": ["kim"]}, "minApprovals": 1});
        let text = render_details(&value, now()).unwrap();
        assert!(text.contains("1 of 2"), "{text}");
        assert!(
            render_decided(&value).unwrap().contains(
                "(1 of 2 approvals; 1 of 1 from the approvers of reveal rule secrets-by-keeper)"
            ),
            "{}",
            render_decided(&value).unwrap()
        );
        assert!(
            text.contains("1 of 1 from the approvers of reveal rule secrets-by-keeper"),
            "{text}"
        );
    }

    /// A held answer: what it is, never its contents, and how many of its
    /// secrets would leave in clear.
    #[test]
    fn details_describe_a_held_answer() {
        let mut value = approval("pending", true, &serde_json::json!([]));
        value["answer"] = serde_json::json!({
            "status": 200, "bytes": 5120, "contentType": "application/json",
            "items": 3, "names": ["db-password", "api-key"], "masked": 2, "revealed": 1
        });
        let text = render_details(&value, now()).unwrap();
        assert!(
            text.contains("AZURE'S ANSWER, NOT YET SENT: status 200, 5120 bytes of application/json, a list of 3 item(s): db-password, api-key, 2 value(s) masked in it, 1 IN CLEAR (revealed)"),
            "{text}"
        );
        // The API leaves the count out when nothing is in clear.
        value["answer"].as_object_mut().unwrap().remove("revealed");
        let text = render_details(&value, now()).unwrap();
        assert!(text.contains("2 value(s) masked in it\n"), "{text}");
    }

    #[test]
    fn details_show_the_justification_and_the_decisions() {
        let value = approval(
            "denied",
            false,
            &serde_json::json!([
                {"approver": "dave", "approverName": "Dave", "approve": true, "comment": "ok", "at": "2026-05-01T11:50:00.000Z"},
                {"approver": "carol", "approverName": null, "approve": false, "comment": "not during the freeze", "at": "2026-05-01T11:55:00.000Z"}
            ]),
        );
        let text = render_details(&value, now()).unwrap();
        for expected in [
            &format!("Approval      {ID}"),
            "State         denied\n",
            "Requester     build-agent (agent-oid, tenant tenant-1)",
            "Operation     Microsoft.Storage/storageAccounts/write",
            &format!("Scope         {SCOPE}"),
            "Rule          storage-needs-approval",
            "Runs as       the requester's everyday upstream identity",
            "Approvals     1 of 2",
            "Created       2026-05-01T11:48:00.000Z (12m ago)",
            "Expires       2026-05-01T12:10:00.000Z (in 10m)",
            // A multi-line justification stays under its field.
            "Justification release 4.2\n              needs a new account",
            "Decisions     2026-05-01T11:50:00.000Z  Dave (dave) approved: ok",
            "              2026-05-01T11:55:00.000Z  carol denied: not during the freeze",
        ] {
            assert!(text.contains(expected), "{expected:?} missing:\n{text}");
        }
        let pending =
            render_details(&approval("pending", true, &serde_json::json!([])), now()).unwrap();
        assert!(
            pending.contains("State         pending (you can approve or deny it)")
                && pending.contains("Decisions     (none yet)"),
            "{pending}"
        );
    }

    #[test]
    fn an_elevated_approval_says_so_in_the_list_and_the_details() {
        let mut value = approval("pending", true, &serde_json::json!([]));
        value["elevateTo"] = "contributor".into();
        let details = render_details(&value, now()).unwrap();
        assert!(
            details.contains("Runs as       contributor (ELEVATED: this request only"),
            "{details}"
        );
        let list = render_list(
            &serde_json::json!({ "value": [value] }),
            ListState::Pending,
            now(),
        )
        .unwrap();
        assert!(
            list.contains("storage-needs-approval (elevates to contributor)"),
            "{list}"
        );
    }

    #[test]
    fn an_agent_acting_for_a_user_is_named_with_the_user() {
        let mut value = approval("pending", true, &serde_json::json!([]));
        value["requester"] = serde_json::json!({
            "id": "alice-oid", "tenantId": "tenant-1", "displayName": "Alice", "groups": [],
            "kind": "agent_for_user", "agent": {"appId": "bot-app", "name": "release-bot", "blueprint": "bp"}
        });
        let details = render_details(&value, now()).unwrap();
        assert!(
            details.contains("Requester     agent release-bot (blueprint bp) acting for Alice (alice-oid, tenant tenant-1)"),
            "{details}"
        );
        assert!(details.contains("Agent         app bot-app"), "{details}");
        let list = render_list(
            &serde_json::json!({ "value": [value] }),
            ListState::Pending,
            now(),
        )
        .unwrap();
        assert!(
            list.contains("agent release-bot (blueprint bp) acting for Alice"),
            "{list}"
        );
    }

    #[test]
    fn text_from_the_api_cannot_drive_the_terminal() {
        let mut value = approval("pending", true, &serde_json::json!([]));
        value["justification"] = "ok\u{1b}]0;pwned\u{7}\u{1b}[2J".into();
        value["rule"] = "r\u{1b}[31m".into();
        let text = render_details(&value, now()).unwrap();
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text:?}"
        );
        let table = render_list(
            &serde_json::json!({"value": [value]}),
            ListState::All,
            now(),
        )
        .unwrap();
        assert!(!table.contains('\u{1b}'), "{table:?}");
    }

    #[test]
    fn a_decision_prints_the_new_state() {
        let one = serde_json::json!([
            {"approver": "dave", "approve": true, "at": "2026-05-01T11:50:00.000Z"}
        ]);
        assert_eq!(
            render_decided(&approval("pending", true, &one)).unwrap(),
            format!("approval {ID} is now pending (1 of 2 approvals; 1 more needed)\n")
        );
        let two = serde_json::json!([
            {"approver": "dave", "approve": true},
            {"approver": "carol", "approve": true}
        ]);
        assert_eq!(
            render_decided(&approval("approved", false, &two)).unwrap(),
            format!("approval {ID} is now approved (2 of 2 approvals)\n")
        );
        let denied = serde_json::json!([{"approver": "carol", "approve": false}]);
        assert_eq!(
            render_decided(&approval("denied", false, &denied)).unwrap(),
            format!("approval {ID} is now denied\n")
        );
    }
}
