//! Human-readable renderings of the audit trail: verification reports,
//! session tables and timelines, as `airlock audit` and `airlock sessions`
//! print them (beside [`crate::har`], the HAR rendering).

use std::fmt::Write as _;
use std::path::Path;
use std::time::SystemTime;

use airlock_recorder::{ChainedEvent, EventPrincipal};

use super::{AuditVerification, SessionSummary};

/// What `airlock audit verify` prints: ok with the head, or where the chain breaks.
pub fn render_verification(path: &Path, report: &AuditVerification) -> String {
    let mut out = String::new();
    let from = if report.start.seq == 0 {
        "from genesis".to_owned()
    } else {
        format!("from the pruning checkpoint at event {}", report.start.seq)
    };
    match &report.problem {
        None => {
            let _ = writeln!(
                out,
                "{}: ok: {} checked ({from}), head event {} hash {}",
                path.display(),
                events(report.events_checked),
                report.head.seq,
                report.head.hash
            );
        }
        Some(problem) => {
            let _ = writeln!(
                out,
                "{}: TAMPERED at event {}: {problem}",
                path.display(),
                problem.seq()
            );
            let _ = writeln!(
                out,
                "{} verified ({from}) before it, up to event {}",
                events(report.events_checked),
                report.head.seq
            );
        }
    }
    if report.checkpoints_checked > 0 || report.checkpoints_pruned > 0 {
        let _ = writeln!(
            out,
            "checkpoints: {} on the chain, {} older than the retained events",
            report.checkpoints_checked, report.checkpoints_pruned
        );
    }
    out
}

/// What `airlock audit verify` prints for a store with one or more chains
/// (one per replica): each chain's report, headed by its name.
pub fn render_verifications(name: &str, reports: &[crate::ChainVerification]) -> String {
    reports
        .iter()
        .map(|chain| {
            let label = if chain.chain.is_empty() {
                name.to_owned()
            } else {
                format!("{name} chain {}", chain.chain)
            };
            render_verification(Path::new(&label), &chain.report)
        })
        .collect()
}

/// `1 event`, `2 events`.
pub fn events(count: u64) -> String {
    match count {
        1 => "1 event".to_owned(),
        n => format!("{n} events"),
    }
}

fn time(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

/// A table of sessions, one line each.
pub fn render_sessions(sessions: &[SessionSummary]) -> String {
    if sessions.is_empty() {
        return "no sessions recorded\n".to_owned();
    }
    let header = [
        "SESSION",
        "PRINCIPAL",
        "FIRST",
        "LAST",
        "EVENTS",
        "DENIED",
        "APPROVALS",
    ]
    .map(str::to_owned);
    let rows: Vec<[String; 7]> = sessions
        .iter()
        .map(|s| {
            let principal = match (&s.principal_name, &s.principal_id) {
                (Some(name), _) => name.clone(),
                (None, Some(id)) => id.clone(),
                (None, None) => "-".to_owned(),
            };
            let approvals = if s.approvals.is_empty() {
                "-".to_owned()
            } else {
                s.approvals.join(",")
            };
            [
                s.session_id.clone(),
                principal,
                time(s.first_time),
                time(s.last_time),
                s.events.to_string(),
                s.denied.to_string(),
                approvals,
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

/// One line per request: `#seq time principal METHOD path -> status decision …`.
pub fn render_timeline_compact(id: &str, events: &[ChainedEvent]) -> String {
    let mut out = format!("session {id}, {} requests\n", events.len());
    for chained in events {
        let e = &chained.event;
        let decision = match (&e.decision, &e.rule) {
            (Some(decision), Some(rule)) => format!("{decision} ({rule})"),
            (Some(decision), None) => decision.clone(),
            (None, _) => "-".to_owned(),
        };
        let mut extra = String::new();
        if let Some(code) = &e.error_code {
            let _ = write!(extra, " {code}");
        }
        if let Some(approval) = &e.approval_id {
            let _ = write!(extra, " approval {}", &approval[..approval.len().min(8)]);
        }
        if e.elevated
            && let Some(identity) = &e.upstream_identity
        {
            let _ = write!(extra, " elevated to {identity}");
        }
        if e.masked_count > 0 {
            let _ = write!(extra, " masked {}", e.masked_count);
        }
        let time = humantime::format_rfc3339_millis(e.time).to_string();
        let _ = writeln!(
            out,
            "  #{:<3} {} {:<6} {} -> {} {decision}{extra}",
            chained.seq,
            time.get(11..23).unwrap_or(&time),
            e.method,
            short_path(target(e)),
            e.status,
        );
    }
    out
}

/// What a request was for: its path, or for a `CONNECT` (no path) the
/// `host:port` it asked to tunnel to.
fn target(event: &airlock_recorder::AuditEvent) -> &str {
    match &event.host {
        Some(host) if event.path.is_empty() => host,
        _ => &event.path,
    }
}

/// The path with the subscription and resource group abbreviated.
fn short_path(path: &str) -> String {
    let mut parts: Vec<&str> = path.split('/').collect();
    for i in 0..parts.len() {
        if i > 0
            && (parts[i - 1].eq_ignore_ascii_case("subscriptions")
                || parts[i - 1].eq_ignore_ascii_case("resourceGroups"))
            && parts[i].len() > 12
        {
            parts[i] = "…";
        }
    }
    parts.join("/")
}

/// Every request of one session with its principal, decision and masking.
pub fn render_timeline(id: &str, events: &[ChainedEvent]) -> String {
    let mut out = String::new();
    let who = events
        .iter()
        .find_map(|e| e.event.principal.as_ref())
        .map_or("an unverified caller".to_owned(), |p| match p.label() {
            label if label == p.id => label,
            label => format!("{label} ({})", p.id),
        });
    let _ = writeln!(out, "session {id}: {who}, {} requests", events.len());
    for chained in events {
        let event = &chained.event;
        let _ = writeln!(out);
        let principal = event
            .principal
            .as_ref()
            .map_or_else(|| "-".to_owned(), EventPrincipal::label);
        let _ = writeln!(
            out,
            "{}  #{}  {principal}",
            humantime::format_rfc3339_millis(event.time),
            chained.seq
        );
        let _ = writeln!(
            out,
            "    {} {} -> {} ({} ms)",
            event.method,
            target(event),
            event.status,
            event.duration_ms
        );
        if let Some(operation) = event.operations.first() {
            let more = match event.operations.len() {
                1 => String::new(),
                n => format!(" (+{} inside)", n - 1),
            };
            let _ = writeln!(out, "    operation  {operation}{more}");
        }
        let decision = match (&event.decision, &event.rule) {
            (Some(decision), Some(rule)) => format!("{decision} by rule '{rule}'"),
            (Some(decision), None) => decision.clone(),
            (None, _) => "none".to_owned(),
        };
        let error = event
            .error_code
            .as_ref()
            .map(|code| format!(" ({code})"))
            .unwrap_or_default();
        let _ = writeln!(out, "    decision   {decision}{error}");
        if let Some(would) = &event.would_have {
            let _ = writeln!(
                out,
                "    OBSERVED   would have been {would} by rule '{}' (observe mode: not enforced)",
                event.would_have_rule.as_deref().unwrap_or("?")
            );
        }
        if !event.revealed.is_empty() {
            let _ = writeln!(
                out,
                "    REVEALED   {} value(s) sent in clear by {}: {}",
                event.revealed.len(),
                event.revealed_by.as_deref().unwrap_or("?"),
                event.revealed.join(", ")
            );
        }
        if let Some(approval) = &event.approval_id {
            let by = if event.approvers.is_empty() {
                String::new()
            } else {
                format!(", approved by {}", event.approvers.join(", "))
            };
            let _ = writeln!(out, "    approval   {approval}{by}");
        }
        if let Some(identity) = &event.upstream_identity {
            let elevated = if event.elevated {
                " (elevated by the approval, this request only)"
            } else {
                ""
            };
            let _ = writeln!(out, "    acted as   {identity}{elevated}");
        }
        if event.masked_count > 0 {
            let _ = writeln!(
                out,
                "    masked     {} values ({})",
                event.masked_count,
                event.masked_paths.join(", ")
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_as_words() {
        assert_eq!(events(0), "0 events");
        assert_eq!(events(1), "1 event");
        assert_eq!(events(2), "2 events");
    }

    #[test]
    fn long_subscription_and_group_names_are_abbreviated_others_kept() {
        assert_eq!(
            short_path(
                "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/a-long-group-name/providers/Microsoft.Compute/virtualMachines/vm1"
            ),
            "/subscriptions/…/resourceGroups/…/providers/Microsoft.Compute/virtualMachines/vm1"
        );
        assert_eq!(
            short_path("/subscriptions/s1/resourceGroups/rg/x"),
            "/subscriptions/s1/resourceGroups/rg/x"
        );
        assert_eq!(short_path("/secrets/db"), "/secrets/db");
    }

    #[test]
    fn no_sessions_says_so() {
        assert_eq!(render_sessions(&[]), "no sessions recorded\n");
    }
}
