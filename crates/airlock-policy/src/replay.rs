//! Policy replay: recorded requests decided again under a candidate policy,
//! and what would change, grouped so that a trail of a million requests
//! gives a report of a few lines (memory grows with the number of distinct
//! changes, not of requests).
//!
//! The requests come from the audit trail (`airlock policy replay` reads
//! them from the store); nothing is sent anywhere. Each is decided from
//! what its event recorded: the principal with its groups and roles, and
//! every classified operation with its scope.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use airlock_core::{Decision, Operation, Principal};
use serde::Serialize;

use crate::PolicyEngine;

/// What a decision came to, ordered from least to most strict (allow <
/// approval < deny).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    /// Forwarded.
    Allow,
    /// Held for approval.
    RequireApproval,
    /// Refused.
    Deny,
}

impl Verdict {
    /// The verdict of `decision`.
    pub fn of(decision: &Decision) -> Self {
        match decision {
            Decision::Allow { .. } => Verdict::Allow,
            Decision::RequireApproval { .. } => Verdict::RequireApproval,
            Decision::Deny { .. } => Verdict::Deny,
        }
    }

    /// A verdict as audit events spell it (`allow`, `deny`, `requireApproval`).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "allow" => Some(Verdict::Allow),
            "deny" => Some(Verdict::Deny),
            "requireApproval" => Some(Verdict::RequireApproval),
            _ => None,
        }
    }

    /// As audit events spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::RequireApproval => "requireApproval",
            Verdict::Deny => "deny",
        }
    }
}

/// Requests whose verdict changes alike: same principal, operation, rule
/// and change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// What was decided when the request was recorded.
    pub from: Verdict,
    /// What the candidate decides.
    pub to: Verdict,
    /// Who asked, in words (with the object id).
    pub principal: String,
    /// The request's operation.
    pub operation: String,
    /// The candidate's rule behind `to` (`no matching rule` when none).
    pub rule: String,
    /// How many recorded requests.
    pub count: u64,
    /// The first of them, as the caller described it (method, path, time).
    pub example: String,
}

/// What a replay found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayReport {
    /// Requests decided again.
    pub replayed: u64,
    /// Of those, decided as they were.
    pub unchanged: u64,
    /// Requests that could not be decided again, and why, with counts.
    pub skipped: BTreeMap<String, u64>,
    /// The changes, most requests first.
    pub changes: Vec<Change>,
}

impl ReplayReport {
    /// Requests whose verdict changes.
    pub fn changed(&self) -> u64 {
        self.changes.iter().map(|c| c.count).sum()
    }

    /// The report for people: one paragraph, then one block per change.
    pub fn render_text(&self) -> String {
        let skipped: u64 = self.skipped.values().sum();
        let mut text = format!(
            "{} recorded request(s) decided again: {} would change, {} unchanged",
            self.replayed,
            self.changed(),
            self.unchanged
        );
        if skipped > 0 {
            let reasons: Vec<String> = self
                .skipped
                .iter()
                .map(|(reason, n)| format!("{n} {reason}"))
                .collect();
            let _ = write!(
                text,
                "; {skipped} not decided again ({})",
                reasons.join(", ")
            );
        }
        text.push_str(".\n");
        for change in &self.changes {
            let _ = write!(
                text,
                "\n{} -> {}  {} request(s)\n  principal: {}\n  operation: {}\n  rule:      {}\n  e.g.       {}\n",
                change.from.as_str(),
                change.to.as_str(),
                change.count,
                change.principal,
                change.operation,
                change.rule,
                change.example
            );
        }
        text
    }
}

/// What requests that change alike share: from, to, principal, operation, rule.
type ChangeKey = (Verdict, Verdict, String, String, String);

/// Decides recorded requests again under `policy` and gathers the changes.
///
/// ```
/// use airlock_core::{Operation, Plane, Principal, PrincipalKind, ResourceScope};
/// use airlock_policy::replay::{Replay, Verdict};
/// use airlock_policy::Policy;
///
/// let candidate = Policy::parse(r#"
///     [[rule]]
///     name = "reads-only"
///     effect = "allow"
///     actions = ["*/read"]
/// "#, "candidate.toml").unwrap();
/// let agent = Principal::builder("oid-1", PrincipalKind::ManagedIdentity).build();
/// let delete = Operation::new(
///     "Microsoft.Resources/subscriptions/resourceGroups/delete",
///     Plane::Management,
///     ResourceScope::new("/subscriptions/s/resourceGroups/rg"),
/// );
/// let mut replay = Replay::new(&candidate);
/// replay.add(&agent, &delete, Verdict::Allow, || "DELETE /subscriptions/s/resourceGroups/rg".into());
/// let report = replay.finish();
/// assert_eq!(report.changed(), 1);
/// assert_eq!(report.changes[0].to, Verdict::Deny);
/// ```
pub struct Replay<'a, E: ?Sized> {
    engine: &'a E,
    /// Per change: how many requests, and the first one's description.
    groups: BTreeMap<ChangeKey, (u64, String)>,
    report: ReplayReport,
}

impl<E: ?Sized> std::fmt::Debug for Replay<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("report", &self.report)
            .field("changes", &self.groups.len())
            .finish_non_exhaustive()
    }
}

impl<'a, E: PolicyEngine + ?Sized> Replay<'a, E> {
    /// A replay under `engine` (a candidate [`crate::Policy`], or any engine).
    pub fn new(engine: &'a E) -> Self {
        Self {
            engine,
            groups: BTreeMap::new(),
            report: ReplayReport::default(),
        }
    }

    /// Decides one recorded request again; `recorded` is what was decided
    /// then, `example` describes the request (called only for the first of
    /// its group). Returns the new verdict.
    pub fn add(
        &mut self,
        principal: &Principal,
        operation: &Operation,
        recorded: Verdict,
        example: impl FnOnce() -> String,
    ) -> Verdict {
        let decision = self.engine.decide(principal, operation);
        let verdict = Verdict::of(&decision);
        self.report.replayed += 1;
        if verdict == recorded {
            self.report.unchanged += 1;
            return verdict;
        }
        let key = (
            recorded,
            verdict,
            principal.to_string(),
            operation.name().to_owned(),
            decision.rule().to_owned(),
        );
        self.groups
            .entry(key)
            .and_modify(|(count, _)| *count += 1)
            .or_insert_with(|| (1, example()));
        verdict
    }

    /// Counts a request that could not be decided again, by `reason`.
    pub fn skip(&mut self, reason: &str) {
        *self.report.skipped.entry(reason.to_owned()).or_default() += 1;
    }

    /// The report: changes with the most requests first.
    pub fn finish(mut self) -> ReplayReport {
        let mut changes: Vec<Change> = self
            .groups
            .into_iter()
            .map(
                |((from, to, principal, operation, rule), (count, example))| Change {
                    from,
                    to,
                    principal,
                    operation,
                    rule,
                    count,
                    example,
                },
            )
            .collect();
        changes.sort_by_key(|change| std::cmp::Reverse(change.count));
        self.report.changes = changes;
        self.report
    }
}

#[cfg(test)]
mod tests {
    use airlock_core::{Plane, PrincipalKind, ResourceScope};

    use super::*;
    use crate::Policy;

    fn op(name: &str) -> Operation {
        Operation::new(
            name,
            Plane::Management,
            ResourceScope::new("/subscriptions/s/resourceGroups/rg"),
        )
    }

    #[test]
    fn changes_are_grouped_counted_and_sorted_with_their_first_example() {
        let candidate = Policy::parse(
            r#"
            [[rule]]
            name = "no-deletes"
            effect = "deny"
            actions = ["*/delete"]

            [[rule]]
            name = "writes-need-approval"
            effect = "approve"
            actions = ["*/write"]
            [rule.approval]
            groups = ["approvers"]

            [[rule]]
            name = "everything"
            effect = "allow"
            actions = ["*"]
            "#,
            "candidate.toml",
        )
        .unwrap();
        let agent = Principal::builder("oid-1", PrincipalKind::ManagedIdentity).build();
        let mut replay = Replay::new(&candidate);
        let delete = op("Microsoft.Resources/subscriptions/resourceGroups/delete");
        let write = op("Microsoft.Resources/subscriptions/resourceGroups/write");
        let read = op("Microsoft.Resources/subscriptions/resourceGroups/read");
        for n in 0..3 {
            replay.add(&agent, &delete, Verdict::Allow, || format!("delete #{n}"));
        }
        assert_eq!(
            replay.add(&agent, &write, Verdict::Allow, || "write".into()),
            Verdict::RequireApproval
        );
        replay.add(&agent, &read, Verdict::Allow, || unreachable!("unchanged"));
        replay.add(&agent, &read, Verdict::Deny, || "read once denied".into());
        replay.skip("without a classification");
        let report = replay.finish();
        assert_eq!(
            (report.replayed, report.unchanged, report.changed()),
            (6, 1, 5)
        );
        assert_eq!(report.skipped["without a classification"], 1);
        let first = &report.changes[0];
        assert_eq!(
            (first.from, first.to, first.count),
            (Verdict::Allow, Verdict::Deny, 3)
        );
        assert_eq!(first.rule, "no-deletes");
        assert_eq!(first.example, "delete #0");
        assert!(first.principal.contains("oid-1"), "{}", first.principal);
        let text = report.render_text();
        assert!(text.starts_with("6 recorded request(s) decided again: 5 would change, 1 unchanged; 1 not decided again (1 without a classification)."), "{text}");
        assert!(text.contains("deny -> allow  1 request(s)"), "{text}");
        assert!(
            text.contains("allow -> requireApproval  1 request(s)"),
            "{text}"
        );
    }

    #[test]
    fn verdicts_read_as_events_spell_them() {
        for verdict in [Verdict::Allow, Verdict::Deny, Verdict::RequireApproval] {
            assert_eq!(Verdict::parse(verdict.as_str()), Some(verdict));
        }
        assert_eq!(Verdict::parse("maybe"), None);
    }
}
