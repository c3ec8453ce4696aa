//! The page's HTML, rendered on the server: one renderer for the first load
//! and for every live update (the event stream carries these fragments).
//! Everything from an approval is escaped; nothing is ever inserted raw.

use std::fmt::Write as _;
use std::time::SystemTime;

use airlock_core::{Principal, escape_html as esc};
use serde_json::{Value, json};

use crate::ui::words::{operation_in_words, scope_steps};
use crate::{ApprovalRequest, ApprovalState, Change, ChangeKind, Preview};

/// The most body text shown inline; the whole body is a link away.
const MAX_SHOWN_BODY: usize = 256 * 1024;

fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn millis(t: SystemTime) -> u128 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// The body as approvers read it: JSON pretty-printed, anything else as text.
fn pretty_body(body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(value) => serde_json::to_string_pretty(&value).unwrap_or_else(|_| body.to_owned()),
        Err(_) => body.to_owned(),
    }
}

fn requester(approval: &ApprovalRequest) -> String {
    let r = &approval.requester;
    let mut html = format!("<span class=\"name\">{}</span>", esc(&r.label()));
    if let Some(kind) = &r.kind {
        let _ = write!(
            html,
            " <span class=\"kind\">{}</span>",
            esc(&kind.replace('_', " "))
        );
    }
    let _ = write!(
        html,
        "<div class=\"ids\">object <code>{}</code>",
        esc(&r.id)
    );
    if let Some(app) = &r.app_id {
        let what = if r.agent.is_some() {
            "agent app"
        } else {
            "app"
        };
        let _ = write!(html, " · {what} <code>{}</code>", esc(app));
    }
    if let Some(blueprint) = r.agent.as_ref().and_then(airlock_core::Agent::blueprint_id) {
        let _ = write!(html, " · blueprint <code>{}</code>", esc(blueprint));
    }
    if !r.groups.is_empty() {
        html.push_str(" · groups ");
        let groups: Vec<String> = r
            .groups
            .iter()
            .map(|g| format!("<code>{}</code>", esc(g)))
            .collect();
        html.push_str(&groups.join(", "));
    }
    html.push_str("</div>");
    html
}

fn scope(scope: &str) -> String {
    let mut html = String::from("<ol class=\"scope\">");
    for (label, value) in scope_steps(scope) {
        let _ = write!(
            html,
            "<li><span class=\"label\">{}</span> {}</li>",
            esc(&label),
            esc(&value)
        );
    }
    let _ = write!(html, "</ol><code class=\"raw\">{}</code>", esc(scope));
    html
}

/// `, N in clear (revealed)` for a held answer that carries revealed secrets.
fn revealed_in(answer: &crate::HeldAnswer) -> String {
    if answer.revealed == 0 {
        String::new()
    } else {
        format!(", <strong>{} in clear</strong> (revealed)", answer.revealed)
    }
}

/// Why the viewer sees no buttons.
fn no_buttons_reason(approval: &ApprovalRequest, viewer: &Principal, now: SystemTime) -> String {
    if approval.requester.is_acting_user(viewer) {
        "Your agent asked for this on your behalf: another approver must decide it.".to_owned()
    } else if approval.requester.is(viewer) {
        "You asked for this: another approver must decide it.".to_owned()
    } else if !approval.admits_approver(viewer) {
        "You are not one of this rule's approvers.".to_owned()
    } else if now >= approval.expires_at {
        "It has expired.".to_owned()
    } else {
        format!("It is {}.", approval.state)
    }
}

/// One pending approval, as a card with everything needed to decide it.
pub(crate) fn card(
    approval: &ApprovalRequest,
    viewer: &Principal,
    now: SystemTime,
    show_changes: bool,
) -> String {
    let id = approval.id.to_string();
    let op = &approval.operation;
    let mut html = format!(
        "<article class=\"approval\" id=\"approval-{id}\" data-id=\"{id}\" data-created=\"{}\" data-expires=\"{}\">",
        millis(approval.created_at),
        millis(approval.expires_at)
    );
    let _ = write!(
        html,
        "<header><h2>{}</h2><code class=\"rbac\">{}</code></header><dl>",
        esc(&operation_in_words(&op.name)),
        esc(&op.name)
    );
    let _ = write!(
        html,
        "<dt>Who</dt><dd class=\"who\">{}</dd>",
        requester(approval)
    );
    let _ = write!(html, "<dt>Where</dt><dd>{}</dd>", scope(&op.scope));
    if let Some(line) = &approval.request {
        let _ = write!(
            html,
            "<dt>Request</dt><dd><code class=\"request-line\">{} {}</code> <span class=\"muted\">{} bytes{}</span></dd>",
            esc(&line.method),
            esc(&line.target),
            line.body_bytes,
            line.content_type
                .as_deref()
                .map(|t| format!(", {}", esc(t)))
                .unwrap_or_default()
        );
        if !line.headers.is_empty() {
            html.push_str("<dt>Headers</dt><dd><ul class=\"headers\">");
            for (name, value) in &line.headers {
                let _ = write!(html, "<li><code>{}: {}</code></li>", esc(name), esc(value));
            }
            html.push_str("</ul></dd>");
        }
    }
    if !op.children.is_empty() {
        html.push_str("<dt>Carries</dt><dd><ol class=\"children\">");
        for child in &op.children {
            let _ = write!(
                html,
                "<li>{} <code>{}</code></li>",
                esc(&operation_in_words(child)),
                esc(child)
            );
        }
        html.push_str("</ol></dd>");
    }
    let _ = write!(
        html,
        "<dt>Why</dt><dd class=\"why\">{}</dd>",
        approval.justification.as_deref().map_or_else(
            || "<span class=\"muted\">No justification given.</span>".to_owned(),
            |j| esc(j).into_owned()
        )
    );
    let approvals = approval.operation_approvals();
    let _ = write!(
        html,
        "<dt>Rule</dt><dd><code>{}</code> · {approvals} of {} approval{} so far{}</dd>",
        esc(&approval.rule),
        approval.min_approvals,
        if approval.min_approvals == 1 { "" } else { "s" },
        if approval.approvers.acting_user {
            ", or the confirmation of the user the agent acts for"
        } else {
            ""
        }
    );
    if let Some(quorum) = &approval.reveal_quorum {
        let _ = write!(
            html,
            "<dt>And the reveal</dt><dd class=\"reveal-quorum\"><code>{}</code> · {} of {} approval{} so far, from its own approvers</dd>",
            esc(&quorum.rule),
            approval.reveal_approvals(),
            quorum.min_approvals,
            if quorum.min_approvals == 1 { "" } else { "s" },
        );
    }
    let _ = write!(
        html,
        "<dt>Runs as</dt><dd class=\"runs-as\">{}</dd>",
        approval.elevate_to.as_deref().map_or_else(
            || "the gateway's everyday identity".to_owned(),
            |e| format!(
                "<strong class=\"elevated\">elevated: {}</strong>, for this one request",
                esc(e)
            )
        )
    );
    if let Some(answer) = &approval.answer {
        let items = answer.items.map_or_else(String::new, |n| {
            let names = if answer.names.is_empty() {
                String::new()
            } else {
                format!(": {}", esc(&answer.names.join(", ")))
            };
            format!(", a list of {n} item(s){names}")
        });
        let _ = write!(
            html,
            "<dt>Holds</dt><dd class=\"held-answer\"><strong>Azure's answer, not yet sent</strong>: status {}, {} bytes{}{}, {} value(s) masked in it{} (its contents are never shown here)</dd>",
            answer.status,
            answer.bytes,
            answer
                .content_type
                .as_deref()
                .map(|t| format!(" of {}", esc(t)))
                .unwrap_or_default(),
            items,
            answer.masked,
            revealed_in(answer),
        );
    }
    if approval.reveal {
        let _ = write!(
            html,
            "<dt>Reveals</dt><dd class=\"reveals\"><strong>the answer in clear</strong>, to the requester, for this one request: what {} returns for {} (the value is never shown here)</dd>",
            esc(&approval.operation.name),
            esc(&approval.operation.scope)
        );
    }
    let _ = write!(
        html,
        "<dt>Waiting</dt><dd><time class=\"age\" datetime=\"{}\">since {}</time> · <time class=\"expiry\" datetime=\"{}\">expires {}</time></dd></dl>",
        time(approval.created_at),
        time(approval.created_at),
        time(approval.expires_at),
        time(approval.expires_at)
    );
    if show_changes && approval.state == ApprovalState::Pending {
        let _ = write!(
            html,
            "<section class=\"changes\" data-changes=\"/ui/approvals/{id}/changes\"><h3>What will change</h3><p class=\"muted\">Asking Azure…</p></section>"
        );
    }
    if let Some(body) = approval
        .body
        .as_deref()
        .or(approval.body_preview.as_deref())
    {
        let pretty = pretty_body(body);
        let cut = pretty.len() > MAX_SHOWN_BODY;
        let shown = if cut {
            let mut end = MAX_SHOWN_BODY;
            while !pretty.is_char_boundary(end) {
                end -= 1;
            }
            &pretty[..end]
        } else {
            &pretty
        };
        let _ = write!(
            html,
            "<details class=\"body\" open><summary>Request body (masked)</summary><pre>{}</pre>{}</details>",
            esc(shown),
            if cut || approval.body.is_none() {
                format!(
                    "<p><a href=\"/api/approvals/{id}/body\" target=\"_blank\" rel=\"noopener\">The whole body</a></p>"
                )
            } else {
                String::new()
            }
        );
    }
    if approval.can_decide(viewer, now) {
        // The user an agent acts for confirms or rejects; approvers approve or deny.
        let (intro, yes, no) = if approval.can_confirm(viewer) {
            (
                "<p class=\"confirm-intro\">Your agent asked for this on your behalf. Confirming lets this one request run; it is recorded as your confirmation, not as an approval.</p>",
                "Confirm",
                "Reject",
            )
        } else {
            ("", "Approve", "Deny")
        };
        let _ = write!(
            html,
            "<form class=\"decide\" data-id=\"{id}\">{intro}<label>Comment <span class=\"muted\">(optional; a denial's reason reaches the requester)</span>\
             <textarea name=\"comment\" maxlength=\"{}\" rows=\"2\"></textarea></label>\
             <div class=\"buttons\"><button type=\"submit\" name=\"action\" value=\"approve\" class=\"approve\">{yes}</button>\
             <button type=\"submit\" name=\"action\" value=\"deny\" class=\"deny\">{no}</button></div>\
             <p class=\"error\" role=\"alert\"></p></form>",
            crate::DEFAULT_MAX_COMMENT_CHARS
        );
    } else {
        let _ = write!(
            html,
            "<p class=\"no-buttons\">{}</p>",
            esc(&no_buttons_reason(approval, viewer, now))
        );
    }
    html.push_str("</article>");
    html
}

/// One decided (or expired) approval, as a history row.
pub(crate) fn history_row(approval: &ApprovalRequest) -> String {
    let id = approval.id.to_string();
    let decided_at = approval
        .decisions
        .last()
        .map_or(approval.expires_at, |d| d.at);
    let mut decisions = String::new();
    for d in &approval.decisions {
        let _ = write!(
            decisions,
            "<li><strong>{}</strong> {} at {}{}</li>",
            esc(d.approver_label()),
            d.verb(),
            time(d.at),
            d.comment
                .as_deref()
                .map(|c| format!(": “{}”", esc(c)))
                .unwrap_or_default()
        );
    }
    if decisions.is_empty() {
        decisions.push_str("<li class=\"muted\">nobody decided</li>");
    }
    format!(
        "<tr id=\"history-{id}\" data-id=\"{id}\"><td><time datetime=\"{at}\">{at}</time></td>\
         <td>{words}<br><code>{scope}</code></td><td>{who}</td>\
         <td class=\"state state-{state}\">{state}</td><td><ul class=\"decisions\">{decisions}</ul></td></tr>",
        at = time(decided_at),
        words = esc(&operation_in_words(&approval.operation.name)),
        scope = esc(&approval.operation.scope),
        who = esc(&approval.requester.label()),
        state = approval.state,
    )
}

/// What the page needs to show an approval as it now stands: its card while
/// pending, its history row once final.
pub(crate) fn fragment(
    approval: &ApprovalRequest,
    viewer: &Principal,
    now: SystemTime,
    show_changes: bool,
) -> Value {
    let pending = approval.state == ApprovalState::Pending;
    json!({
        "id": approval.id.to_string(),
        "state": approval.state.as_str(),
        "card": pending.then(|| card(approval, viewer, now, show_changes)),
        "history": (!pending).then(|| history_row(approval)),
    })
}

/// What the page shows: for an approver the queue and the history, for
/// anyone else why they see neither.
pub(crate) struct PageView<'a> {
    pub(crate) viewer: &'a Principal,
    pub(crate) csrf_token: &'a str,
    pub(crate) sign_out_path: Option<&'a str>,
    /// `None`: the viewer is not an approver.
    pub(crate) approvals: Option<&'a [ApprovalRequest]>,
    pub(crate) now: SystemTime,
    /// Whether cards ask what their request will change.
    pub(crate) show_changes: bool,
}

/// The shared top bar of Airlock's pages.
pub(crate) fn top_bar(viewer: Option<(&Principal, &str)>, sign_out_path: Option<&str>) -> String {
    let mut html = String::from(
        "<header class=\"bar\"><span class=\"brand\">Airlock</span><nav><a href=\"/ui/approvals\">Approvals</a></nav>",
    );
    if let Some((viewer, csrf)) = viewer {
        let _ = write!(
            html,
            "<span class=\"viewer\">{}</span>",
            esc(viewer.display_name().unwrap_or(viewer.id()))
        );
        if let Some(path) = sign_out_path {
            let _ = write!(
                html,
                "<form method=\"post\" action=\"{}\" class=\"sign-out\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">Sign out</button></form>",
                esc(path),
                esc(csrf)
            );
        }
    }
    html.push_str("</header>");
    html
}

pub(crate) fn page(view: &PageView<'_>) -> String {
    let mut html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"airlock-csrf\" content=\"{}\"><title>Approvals · Airlock</title>\
         <link rel=\"stylesheet\" href=\"/ui/assets/airlock.css\">\
         <script src=\"/ui/assets/approvals.js\" defer></script></head><body>{}<main>",
        esc(view.csrf_token),
        top_bar(Some((view.viewer, view.csrf_token)), view.sign_out_path)
    );
    let Some(approvals) = view.approvals else {
        let _ = write!(
            html,
            "<p class=\"notice\" id=\"not-an-approver\">{} is not an approver: only the people a policy rule's <code>[rule.approval]</code> names can see and decide approvals.</p></main></body></html>",
            esc(&view.viewer.to_string())
        );
        return html;
    };
    let pending: Vec<&ApprovalRequest> = approvals
        .iter()
        .filter(|a| a.state == ApprovalState::Pending)
        .collect();
    let _ = write!(
        html,
        "<section id=\"queue-section\"><h1>Waiting for a decision <span id=\"count\">{}</span> <span id=\"live\" class=\"live\" title=\"live updates\">connecting…</span></h1>\
         <p id=\"empty\" class=\"muted\"{}>Nothing is waiting. New requests appear here as they arrive.</p><div id=\"queue\">",
        pending.len(),
        if pending.is_empty() { "" } else { " hidden" }
    );
    for approval in &pending {
        html.push_str(&card(approval, view.viewer, view.now, view.show_changes));
    }
    html.push_str(
        "</div></section><section><h2>Decided</h2><table id=\"history\"><thead><tr><th>when</th><th>what</th><th>who asked</th><th>state</th><th>decisions</th></tr></thead><tbody>",
    );
    let mut decided: Vec<&ApprovalRequest> = approvals
        .iter()
        .filter(|a| a.state != ApprovalState::Pending)
        .collect();
    decided.sort_by_key(|a| std::cmp::Reverse(a.decisions.last().map_or(a.expires_at, |d| d.at)));
    for approval in decided.iter().take(100) {
        html.push_str(&history_row(approval));
    }
    html.push_str("</tbody></table></section></main></body></html>");
    html
}

/// A value as compact JSON, escaped.
fn value(value: Option<&Value>) -> String {
    value.map_or_else(
        || "<span class=\"muted\">—</span>".to_owned(),
        |v| format!("<code>{}</code>", esc(&v.to_string())),
    )
}

fn changes_table(changes: &[Change]) -> String {
    let mut html = String::from(
        "<table class=\"diff\"><thead><tr><th>property</th><th>change</th><th>now</th><th>requested</th></tr></thead><tbody>",
    );
    for change in changes {
        let _ = write!(
            html,
            "<tr class=\"change-{kind}\"><td><code>{}</code></td><td>{kind}</td><td>{}</td><td>{}</td></tr>",
            esc(&change.path),
            value(change.before.as_ref()),
            value(change.after.as_ref()),
            kind = change.kind,
        );
    }
    html.push_str("</tbody></table>");
    html
}

/// The "What will change" section's content (empty: nothing to show).
pub(crate) fn preview(preview: &Preview) -> String {
    match preview {
        Preview::NotApplicable => String::new(),
        Preview::Creates => {
            "<p class=\"creates\">Creates a new resource: everything in the request body is new.</p>".to_owned()
        }
        Preview::Diff(changes) if changes.is_empty() => {
            "<p>No change: the resource already matches the request.</p>".to_owned()
        }
        Preview::Diff(changes) => {
            let removed = changes.iter().filter(|c| c.kind == ChangeKind::Removed).count();
            let mut html = format!(
                "<p>The current resource (read by the gateway, masked) against the request: {} change{}.</p>",
                changes.len(),
                if changes.len() == 1 { "" } else { "s" }
            );
            html.push_str(&changes_table(changes));
            if removed > 0 {
                html.push_str("<p class=\"muted\">A PUT replaces the resource: what it omits, Azure resets or removes.</p>");
            }
            html
        }
        Preview::WhatIf(resources) => {
            let count = |kind: &str| resources.iter().filter(|r| r.change_type == kind).count();
            let mut html = format!(
                "<p>Azure's what-if: {} to create, {} to modify, {} to delete, {} unchanged.</p><ul class=\"what-if\">",
                count("Create"),
                count("Modify"),
                count("Delete"),
                count("NoChange")
            );
            for resource in resources {
                let _ = write!(
                    html,
                    "<li class=\"what-if-{}\"><strong>{}</strong> <code>{}</code>",
                    esc(&resource.change_type.to_ascii_lowercase()),
                    esc(&resource.change_type),
                    esc(&resource.resource_id)
                );
                if !resource.delta.is_empty() {
                    html.push_str(&changes_table(&resource.delta));
                }
                html.push_str("</li>");
            }
            html.push_str("</ul>");
            html
        }
        Preview::Unavailable(why) => format!(
            "<p class=\"muted unavailable\">Could not tell: {}</p>",
            esc(why)
        ),
    }
}
