//! A validated set of rules, and how they decide.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use airlock_core::{ApprovalWait, Approvers, Decision, Operation, Principal, PrincipalKind};
use serde::Deserialize;

use crate::answer_rule::AnswerRule;
use crate::quota::{Limit, Per, Quota};
use crate::replay::Verdict;
use crate::rule::{Approval, Candidate, Effect, Reach, Rule, Skip};
use crate::{PolicyEngine, PolicyError};
use airlock_core::OperationPattern;
use airlock_core::PrincipalSelector;
use airlock_core::ScopePattern;

/// The rule name of the decision when no rule allows an operation.
pub const NO_MATCHING_RULE: &str = "no-matching-rule";

/// Rules in the RBAC vocabulary; see the crate docs for the file format.
///
/// Deny beats approve beats allow; an operation no rule allows is denied; a
/// request carrying other operations (`/batch`, deployments, resource-group
/// deletes) is allowed only if every one of them is.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    origin: String,
    rules: Vec<Rule>,
    warnings: Vec<String>,
    /// The rules that enforce.
    index: RuleIndex,
    /// Every rule, observe-mode ones as if they enforced: only when some
    /// rule observes, or the whole policy does.
    observed: Option<RuleIndex>,
    /// `[policy] mode = "observe"`: nothing enforces.
    observe_all: bool,
    /// `[[quota]]`, in file order.
    quotas: Arc<[Quota]>,
    /// `[[answer]]`, in file order.
    answers: Arc<[AnswerRule]>,
}

/// The rule an observe-mode policy allows every request by.
pub const OBSERVE_MODE: &str = "observe mode";

/// Which rules can apply to an operation of a provider namespace, in rule
/// order, so a decision looks at a handful of rules, not all of them.
/// Rules that select principals by object id alone are indexed by those
/// ids instead: a policy of thousands of per-principal rules costs a
/// request only its own principal's (measured: 10 000 such rules on
/// `*/read` took a gateway from about 4 700 to 500 requests/s before).
#[derive(Clone, Debug, Default)]
struct RuleIndex {
    /// Per lower-cased namespace: its rules and the rules of any namespace.
    by_namespace: HashMap<String, Vec<usize>>,
    /// Rules whose patterns may match any namespace (`*/read`).
    any_namespace: Vec<usize>,
    /// Every rule: for pattern operations and unclassified requests.
    all: Vec<usize>,
    /// Per lower-cased object id: the rules selecting principals by `ids`
    /// and nothing else (kept out of the lists above).
    by_id: HashMap<String, Vec<usize>>,
}

impl RuleIndex {
    /// The index of the rules `include` keeps.
    fn build(rules: &[Rule], include: impl Fn(&Rule) -> bool) -> Self {
        let mut index = RuleIndex::default();
        let mut named: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, rule) in rules.iter().enumerate().filter(|(_, rule)| include(rule)) {
            if let Some(ids) = ids_only(&rule.principals) {
                for id in ids {
                    let list = index.by_id.entry(id.to_ascii_lowercase()).or_default();
                    if list.last() != Some(&i) {
                        list.push(i);
                    }
                }
                continue;
            }
            index.all.push(i);
            match rule.namespaces() {
                None => index.any_namespace.push(i),
                Some(namespaces) => {
                    for namespace in namespaces {
                        let list = named
                            .entry(String::from_utf8_lossy(namespace).into_owned())
                            .or_default();
                        if list.last() != Some(&i) {
                            list.push(i);
                        }
                    }
                }
            }
        }
        for (namespace, mut list) in named {
            list.extend(&index.any_namespace);
            list.sort_unstable();
            list.dedup();
            index.by_namespace.insert(namespace, list);
        }
        index
    }

    /// The rules that may apply to `candidate` asked for by `principal`,
    /// in rule order.
    fn rules_for<'a>(
        &'a self,
        candidate: &Candidate<'_>,
        principal: &Principal,
    ) -> impl Iterator<Item = usize> + 'a {
        let open = match candidate.namespace() {
            Some(namespace) => self
                .by_namespace
                .get(namespace)
                .unwrap_or(&self.any_namespace),
            None => &self.all,
        };
        merged(open, self.for_principal(principal))
    }

    /// The rules naming `principal`'s object id (none for a delegated
    /// token, whose id is the user's: `ids` never select it).
    fn for_principal(&self, principal: &Principal) -> &[usize] {
        if self.by_id.is_empty() || principal.kind() == PrincipalKind::AgentForUser {
            return &[];
        }
        let id = principal.id();
        let found = if id.bytes().any(|b| b.is_ascii_uppercase()) {
            self.by_id.get(&id.to_ascii_lowercase())
        } else {
            self.by_id.get(id)
        };
        found.map_or(&[], Vec::as_slice)
    }
}

/// The ids of a selector that names principals by object id and nothing else.
fn ids_only(selector: &PrincipalSelector) -> Option<&[String]> {
    let only = !selector.ids.is_empty()
        && PrincipalSelector {
            ids: Vec::new(),
            ..selector.clone()
        }
        .is_empty();
    only.then_some(selector.ids.as_slice())
}

/// Two ascending lists of rule positions as one, in order, without repeats.
fn merged<'a>(a: &'a [usize], b: &'a [usize]) -> impl Iterator<Item = usize> + 'a {
    let (mut i, mut j) = (0, 0);
    std::iter::from_fn(move || {
        let next = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) if x <= y => {
                i += 1;
                j += usize::from(x == y);
                x
            }
            (_, Some(&y)) => {
                j += 1;
                y
            }
            (Some(&x), None) => {
                i += 1;
                x
            }
            (None, None) => return None,
        };
        Some(next)
    })
}

/// Whose rules a decision came from. For an agent acting for a user the
/// policy decides twice: for the agent (the principal as it is) and for
/// the user it acts for ([`Principal::acting_user`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Facet {
    /// Anyone but an agent acting for a user: decided once.
    Principal,
    /// The agent's rules decided (its deny or approval, or nothing allowed it).
    Agent,
    /// The user's rules decided.
    User,
    /// Both allowed.
    Both,
}

impl fmt::Display for Facet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Facet::Principal => "the principal",
            Facet::Agent => "the agent",
            Facet::User => "the user the agent acts for",
            Facet::Both => "both the agent and the user it acts for",
        })
    }
}

/// What `airlock policy explain` shows: the decision, whose rules made it,
/// and what every rule made of every operation.
#[derive(Clone, Debug)]
pub struct Explanation {
    /// The decision.
    pub decision: Decision,
    /// Whose rules decided.
    pub decided_by: Facet,
    /// One line per rule and operation (and facet, for an agent acting for a user).
    pub trace: Vec<RuleTrace>,
    /// Observe mode: what the rules would have decided had they all
    /// enforced, when that is stricter than `decision`.
    pub would_have: Option<Decision>,
}

/// What one rule made of one operation, for `airlock policy explain`.
#[derive(Clone, Debug)]
pub struct RuleTrace {
    /// Whom the rule was compared with ([`Facet::Agent`] or [`Facet::User`]
    /// for an agent acting for a user, else [`Facet::Principal`]).
    pub facet: Facet,
    /// The operation (`name on scope`).
    pub operation: String,
    /// The rule.
    pub rule: String,
    /// Where the rule starts in the policy file (1-based).
    pub line: usize,
    /// Its effect.
    pub effect: Effect,
    /// `Ok` when it applied, else why not.
    pub outcome: Result<(), Skip>,
    /// The rule is in observe mode (or the whole policy is): it records
    /// what it would do and does not enforce.
    pub observe: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    rule: Vec<toml::Spanned<RawRule>>,
    #[serde(default)]
    quota: Vec<toml::Spanned<RawQuota>>,
    #[serde(default)]
    answer: Vec<toml::Spanned<RawAnswer>>,
}

/// `[[answer]]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnswer {
    name: String,
    operations: Vec<String>,
    principals: Option<PrincipalSelector>,
    #[serde(default)]
    scopes: Vec<String>,
    min_bytes: Option<u64>,
    min_items: Option<u64>,
    min_masked: Option<u32>,
    #[serde(default)]
    content_types: Vec<String>,
    approval: Option<RawApproval>,
}

/// `[[quota]]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuota {
    name: String,
    /// Operation patterns, either plane.
    operations: Vec<String>,
    principals: Option<PrincipalSelector>,
    #[serde(default)]
    scopes: Vec<String>,
    max_requests: Option<u64>,
    max_bytes: Option<u64>,
    #[serde(with = "humantime_serde")]
    window: Duration,
    #[serde(default)]
    per: RawPer,
    #[serde(default)]
    on_exceed: OnExceed,
    approval: Option<RawApproval>,
}

#[derive(Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawPer {
    #[default]
    Principal,
    Group,
}

/// `on_exceed = "deny" | "approve"`.
#[derive(Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum OnExceed {
    #[default]
    Deny,
    Approve,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    effect: Effect,
    /// Shown to the agent when the rule denies.
    reason: Option<String>,
    #[serde(default)]
    actions: Vec<String>,
    #[serde(default)]
    not_actions: Vec<String>,
    #[serde(default)]
    data_actions: Vec<String>,
    #[serde(default)]
    not_data_actions: Vec<String>,
    #[serde(default)]
    scopes: Vec<String>,
    principals: Option<PrincipalSelector>,
    approval: Option<RawApproval>,
    /// `enforce` (the default) or `observe`.
    #[serde(default)]
    mode: RuleMode,
}

/// Whether a rule enforces or only records what it would have done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RuleMode {
    #[default]
    Enforce,
    Observe,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApproval {
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    ids: Vec<String>,
    #[serde(default = "one")]
    min_approvals: u32,
    #[serde(default)]
    justification: bool,
    #[serde(default = "default_hold", with = "humantime_serde")]
    hold: Duration,
    #[serde(default = "default_ttl", with = "humantime_serde")]
    ttl: Duration,
    #[serde(default)]
    wait: RawWait,
    elevate_to: Option<String>,
    confirm_by: Option<ConfirmBy>,
}

/// `confirm_by = "acting_user"`: who else may let the request through.
#[derive(Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ConfirmBy {
    /// The user an agent acts for, signed in as themselves.
    ActingUser,
}

/// `wait = "hold" | "async"`; absent means by method (see [`ApprovalWait`]).
#[derive(Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawWait {
    #[default]
    Auto,
    Hold,
    Async,
}

fn one() -> u32 {
    1
}
fn default_hold() -> Duration {
    Duration::from_secs(300)
}
fn default_ttl() -> Duration {
    Duration::from_secs(3600)
}

impl Policy {
    /// Reads and validates a policy file.
    ///
    /// # Errors
    ///
    /// A [`PolicyError`] naming the file, line and rule.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
            origin: origin.clone(),
            line: None,
            rule: None,
            problem: format!("cannot read the policy file: {e}"),
        })?;
        Self::parse(&text, &origin)
    }

    /// Parses and validates policy TOML; `origin` names it in errors.
    ///
    /// # Errors
    ///
    /// A [`PolicyError`] naming the line and rule: unknown keys, rules that
    /// name nothing, malformed or impossible patterns, empty principal
    /// selectors, approve rules without approvers, duplicate names.
    pub fn parse(text: &str, origin: &str) -> Result<Self, PolicyError> {
        let raw: RawPolicy = toml::from_str(text).map_err(|e| PolicyError {
            origin: origin.to_owned(),
            line: e.span().map(|span| line_of(text, span.start)),
            rule: None,
            problem: e.message().to_owned(),
        })?;
        let mut policy = Policy {
            origin: origin.to_owned(),
            ..Policy::default()
        };
        let mut names = HashSet::new();
        for spanned in raw.rule {
            let line = line_of(text, spanned.span().start);
            let raw = spanned.into_inner();
            let error = |problem: String| PolicyError {
                origin: origin.to_owned(),
                line: Some(line),
                rule: Some(raw.name.clone()),
                problem,
            };
            if raw.name.trim().is_empty() {
                return Err(error("the rule has an empty name; give every rule a unique name (it is shown in denials and audit records)".into()));
            }
            if !names.insert(raw.name.to_ascii_lowercase()) {
                return Err(error(
                    "another rule has the same name; names must be unique".into(),
                ));
            }
            let (rule, warnings) = compile(&raw, line).map_err(error)?;
            policy.warnings.extend(
                warnings
                    .into_iter()
                    .map(|w| format!("{origin}:{line}: rule '{}': {w}", raw.name)),
            );
            policy.rules.push(rule);
        }
        let file = Tables { text, origin };
        policy.quotas = file
            .compile(
                raw.quota,
                "quota",
                |q| &q.name,
                compile_quota,
                &mut policy.warnings,
            )?
            .into();
        policy.answers = file
            .compile(
                raw.answer,
                "answer rule",
                |a| &a.name,
                compile_answer,
                &mut policy.warnings,
            )?
            .into();
        policy.index = RuleIndex::build(&policy.rules, |rule| !rule.observe);
        if policy.rules.iter().any(|rule| rule.observe) {
            policy.observed = Some(RuleIndex::build(&policy.rules, |_| true));
        }
        Ok(policy)
    }

    /// The whole policy in observe mode (`[policy] mode = "observe"`, for a
    /// first rollout): every request is allowed (by [`OBSERVE_MODE`]), and
    /// what the rules would have done is [observed](PolicyEngine::observed).
    ///
    /// ```
    /// use airlock_core::{Decision, Operation, Plane, Principal, PrincipalKind, ResourceScope};
    /// use airlock_policy::{Policy, PolicyEngine};
    /// let policy = Policy::parse(r#"
    ///     [[rule]]
    ///     name = "reads"
    ///     effect = "allow"
    ///     actions = ["*/read"]
    /// "#, "policy.toml").unwrap().observing_all();
    /// let agent = Principal::builder("oid", PrincipalKind::ManagedIdentity).build();
    /// let delete = Operation::new("Microsoft.Compute/virtualMachines/delete", Plane::Management, ResourceScope::new("/subscriptions/s"));
    /// let decided = policy.decide(&agent, &delete);
    /// assert_eq!(decided.rule(), "observe mode");
    /// let would = policy.observed(&agent, &delete, &decided).unwrap();
    /// assert!(matches!(would, Decision::Deny { .. }));
    /// ```
    #[must_use]
    pub fn observing_all(mut self) -> Self {
        if !self.observe_all {
            self.observe_all = true;
            self.observed = Some(RuleIndex::build(&self.rules, |_| true));
            self.warnings.push(format!(
                "{}: the whole policy is in observe mode ([policy] mode = \"observe\"): every request is allowed, and what the rules would have done is only recorded (would_have)",
                self.origin
            ));
        }
        self
    }

    /// Things that are allowed but probably not meant.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// How many rules there are.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether `principal` is an approver in any `approve` rule: listed by
    /// id or a member of a listed group. The approver API admits only them.
    ///
    /// ```
    /// use airlock_core::{Principal, PrincipalKind};
    /// let policy = airlock_policy::Policy::parse(r#"
    ///     [[rule]]
    ///     name = "storage-needs-approval"
    ///     effect = "approve"
    ///     actions = ["Microsoft.Storage/storageAccounts/write"]
    ///     [rule.approval]
    ///     groups = ["ops"]
    /// "#, "inline").unwrap();
    /// let carol = Principal::builder("carol", PrincipalKind::User).groups(["ops"]).build();
    /// let agent = Principal::builder("agent", PrincipalKind::ManagedIdentity).build();
    /// assert!(policy.is_approver(&carol));
    /// assert!(!policy.is_approver(&agent));
    /// ```
    pub fn is_approver(&self, principal: &Principal) -> bool {
        let rules = self.rules.iter().filter_map(|rule| rule.approval.as_ref());
        let quotas = self.quotas.iter().filter_map(Quota::approvers);
        let answers = self.answers.iter().map(AnswerRule::approvers);
        rules
            .map(|a| &a.approvers)
            .chain(quotas)
            .chain(answers)
            .any(|a| a.admits(principal))
    }

    /// The `[[answer]]` rules, in file order (the approval layer's answer
    /// step enforces them).
    pub fn answer_rules(&self) -> Arc<[AnswerRule]> {
        self.answers.clone()
    }

    /// The `[[quota]]` tables, in file order (the [`QuotaLayer`](crate::QuotaLayer) enforces them).
    pub fn quotas(&self) -> Arc<[Quota]> {
        self.quotas.clone()
    }

    /// Whether `principal` may confirm requests of an agent acting for them:
    /// some rule says `confirm_by = "acting_user"` and `principal` is a
    /// person signed in as themselves (not an agent, not for someone).
    /// Which requests they may confirm is the approval's to say: only their
    /// own agents'.
    ///
    /// ```
    /// use airlock_core::{Principal, PrincipalKind};
    /// let policy = airlock_policy::Policy::parse(r#"
    ///     [[rule]]
    ///     name = "bot-writes-if-alice-says-so"
    ///     effect = "approve"
    ///     actions = ["Microsoft.Storage/*"]
    ///     [rule.principals]
    ///     kinds = ["agent_for_user"]
    ///     [rule.approval]
    ///     confirm_by = "acting_user"
    /// "#, "policy.toml").unwrap();
    /// let alice = Principal::builder("alice", PrincipalKind::User).build();
    /// let app = Principal::builder("ci", PrincipalKind::Application).build();
    /// assert!(policy.may_confirm(&alice) && !policy.is_approver(&alice));
    /// assert!(!policy.may_confirm(&app));
    /// ```
    pub fn may_confirm(&self, principal: &Principal) -> bool {
        principal.kind() == PrincipalKind::User
            && self
                .rules
                .iter()
                .filter_map(|rule| rule.approval.as_ref())
                .any(|a| a.approvers.acting_user)
    }

    /// Checks that every `approval.elevate_to` names an identity for which
    /// `known` holds (the gateway passes its `[[upstream.identities]]`).
    ///
    /// ```
    /// let policy = airlock_policy::Policy::parse(r#"
    ///     [[rule]]
    ///     name = "deletes-run-as-contributor"
    ///     effect = "approve"
    ///     actions = ["Microsoft.Resources/subscriptions/resourceGroups/delete"]
    ///     [rule.approval]
    ///     groups = ["ops"]
    ///     elevate_to = "contributor"
    /// "#, "policy.toml").unwrap();
    /// assert!(policy.check_elevations(|name| name == "contributor").is_ok());
    /// let error = policy.check_elevations(|_| false).unwrap_err();
    /// assert_eq!(error.line, Some(2));
    /// assert!(error.problem.contains("'contributor'"));
    /// ```
    ///
    /// # Errors
    ///
    /// The first rule whose `elevate_to` is unknown.
    pub fn check_elevations(&self, known: impl Fn(&str) -> bool) -> Result<(), PolicyError> {
        for rule in &self.rules {
            if let Some(identity) = rule.approval.as_ref().and_then(|a| a.elevate_to.as_deref())
                && !known(identity)
            {
                return Err(PolicyError {
                    origin: self.origin.clone(),
                    line: Some(rule.line),
                    rule: Some(rule.name.clone()),
                    problem: format!(
                        "approval.elevate_to = '{identity}' is not an upstream identity the gateway holds a credential for; add an [[upstream.identities]] entry named '{identity}' (not on_behalf_of: that one acts as the caller) to the gateway's configuration, or fix the name"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Whether there are no rules (everything is denied).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The decision, whose rules made it, and what every rule made of every operation.
    pub fn explain(&self, principal: &Principal, operation: &Operation) -> Explanation {
        let user = principal.acting_user();
        let facets = match &user {
            None => vec![(Facet::Principal, principal)],
            Some(user) => vec![(Facet::Agent, principal), (Facet::User, user)],
        };
        let mut trace = Vec::new();
        for (facet, who) in facets {
            for op in operation.flatten() {
                let candidate = Candidate::new(op);
                for rule in &self.rules {
                    trace.push(RuleTrace {
                        facet,
                        operation: op.to_string(),
                        rule: rule.name.clone(),
                        line: rule.line,
                        effect: rule.effect,
                        outcome: rule.applies(who, &candidate, reach_of(rule.effect)),
                        observe: rule.observe || self.observe_all,
                    });
                }
            }
        }
        let (decision, decided_by) = if self.observe_all {
            (self.decide(principal, operation), Facet::Principal)
        } else {
            self.decide_facets(principal, operation)
        };
        let would_have = self.observed(principal, operation, &decision);
        Explanation {
            decision,
            decided_by,
            trace,
            would_have,
        }
    }

    /// The decision and whose rules made it. An agent acting for a user gets
    /// no more than both the agent's and the user's rules allow: an explicit
    /// deny of either (the agent's first), else the first facet nothing
    /// allows, else an approval either asks for (the agent's rule first),
    /// else allowed by both.
    fn decide_facets(&self, principal: &Principal, operation: &Operation) -> (Decision, Facet) {
        self.decide_facets_by(&self.index, principal, operation)
    }

    /// [`decide_facets`](Self::decide_facets) by the rules of `index`.
    fn decide_facets_by(
        &self,
        index: &RuleIndex,
        principal: &Principal,
        operation: &Operation,
    ) -> (Decision, Facet) {
        let Some(user) = principal.acting_user() else {
            return (self.evaluate(index, principal, operation), Facet::Principal);
        };
        let agent = self.evaluate(index, principal, operation);
        let user = self.evaluate(index, &user, operation);
        let explicit =
            |d: &Decision| matches!(d, Decision::Deny { rule, .. } if rule != NO_MATCHING_RULE);
        let for_user = |rule, reason| Decision::Deny {
            rule,
            reason: format!(
                "{reason} (the user agent {} acts for; an agent acting for a user may do only what the rules allow both of them)",
                principal
                    .agent()
                    .map_or("?".to_owned(), ToString::to_string)
            ),
        };
        match (agent, user) {
            (agent, _) if explicit(&agent) => (agent, Facet::Agent),
            (_, Decision::Deny { rule, reason }) if rule != NO_MATCHING_RULE => {
                (for_user(rule, reason), Facet::User)
            }
            (agent @ Decision::Deny { .. }, _) => (agent, Facet::Agent),
            (_, Decision::Deny { rule, reason }) => (for_user(rule, reason), Facet::User),
            (approval @ Decision::RequireApproval { .. }, _) => (approval, Facet::Agent),
            (_, approval @ Decision::RequireApproval { .. }) => (approval, Facet::User),
            (Decision::Allow { rule: a }, Decision::Allow { rule: u }) => {
                let rule = if a == u { a } else { format!("{a} + {u}") };
                (Decision::Allow { rule }, Facet::Both)
            }
        }
    }

    fn evaluate(
        &self,
        rules: &RuleIndex,
        principal: &Principal,
        operation: &Operation,
    ) -> Decision {
        let mut approval: Option<&Rule> = None;
        let mut root_allow: Option<&Rule> = None;
        // An explicit deny anywhere says more than "nothing allows X", so the
        // first operation nothing allows is remembered, not returned.
        let mut ungranted: Option<(&Operation, bool)> = None;
        for (index, op) in operation.flatten().into_iter().enumerate() {
            let candidate = Candidate::new(op);
            let mut granted: Option<&Rule> = None;
            let mut asks: Option<&Rule> = None;
            for rule in rules
                .rules_for(&candidate, principal)
                .map(|i| &self.rules[i])
            {
                if rule
                    .applies(principal, &candidate, reach_of(rule.effect))
                    .is_err()
                {
                    continue;
                }
                match rule.effect {
                    Effect::Deny => return deny(rule, op, index > 0),
                    Effect::Approve => {
                        asks = asks.or(Some(rule));
                        // An approve rule that covers the operation also grants it.
                        if rule.applies(principal, &candidate, Reach::Covers).is_ok() {
                            granted = granted.or(Some(rule));
                        }
                    }
                    Effect::Allow => granted = granted.or(Some(rule)),
                }
            }
            match granted {
                None => ungranted = ungranted.or(Some((op, index > 0))),
                Some(rule) if index == 0 => root_allow = Some(rule),
                Some(_) => {}
            }
            approval = approval.or(asks);
        }
        if let Some((op, inside)) = ungranted {
            return Decision::Deny {
                rule: NO_MATCHING_RULE.into(),
                reason: format!(
                    "no rule allows {op}{} for {principal}",
                    if inside {
                        " (carried inside this request)"
                    } else {
                        ""
                    }
                ),
            };
        }
        match (approval, root_allow) {
            (Some(rule), _) => require_approval(rule),
            (None, Some(rule)) => Decision::Allow {
                rule: rule.name.clone(),
            },
            (None, None) => Decision::Deny {
                rule: NO_MATCHING_RULE.into(),
                reason: format!("no rule allows {operation} for {principal}"),
            },
        }
    }
}

/// Deny and approve rules act on any operation they *overlap*; allow rules
/// only on operations they *cover* entirely.
fn reach_of(effect: Effect) -> Reach {
    match effect {
        Effect::Deny | Effect::Approve => Reach::Overlaps,
        Effect::Allow => Reach::Covers,
    }
}

fn deny(rule: &Rule, op: &Operation, inside: bool) -> Decision {
    let where_ = if inside {
        " (carried inside this request)"
    } else {
        ""
    };
    Decision::Deny {
        rule: rule.name.clone(),
        reason: match &rule.reason {
            Some(reason) => format!("{op}{where_} is denied by rule '{}': {reason}", rule.name),
            None => format!("{op}{where_} is denied by rule '{}'", rule.name),
        },
    }
}

fn require_approval(rule: &Rule) -> Decision {
    let approval = rule.approval.clone().unwrap_or_else(|| Approval {
        approvers: Approvers::default(),
        min_approvals: 1,
        justification: false,
        hold: default_hold(),
        ttl: default_ttl(),
        wait: ApprovalWait::Auto,
        elevate_to: None,
    });
    Decision::RequireApproval {
        rule: rule.name.clone(),
        approvers: approval.approvers,
        min_approvals: approval.min_approvals,
        justification_required: approval.justification,
        hold: approval.hold,
        ttl: approval.ttl,
        wait: approval.wait,
        elevate_to: approval.elevate_to,
    }
}

impl PolicyEngine for Policy {
    fn decide(&self, principal: &Principal, operation: &Operation) -> Decision {
        if self.observe_all {
            return Decision::Allow {
                rule: OBSERVE_MODE.into(),
            };
        }
        self.decide_facets(principal, operation).0
    }

    /// Decides again with observe-mode rules enforcing; the decision when
    /// it is stricter than `decided` (approval over allow, deny over both).
    fn observed(
        &self,
        principal: &Principal,
        operation: &Operation,
        decided: &Decision,
    ) -> Option<Decision> {
        let observed = self.observed.as_ref()?;
        let would = self.decide_facets_by(observed, principal, operation).0;
        // Verdicts order allow < approval < deny.
        (Verdict::of(&would) > Verdict::of(decided)).then_some(would)
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn patterns(list: &[String], key: &str) -> Result<Vec<OperationPattern>, String> {
    list.iter()
        .map(|p| OperationPattern::parse(p).map_err(|e| format!("{key}: {e}")))
        .collect()
}

/// Validates one rule; returns it and its warnings.
fn compile(raw: &RawRule, line: usize) -> Result<(Rule, Vec<String>), String> {
    check_operations(raw)?;
    if raw.mode == RuleMode::Observe && raw.effect == Effect::Allow {
        return Err("mode = \"observe\" is for deny and approve rules (it records what they would have refused or held); an allow rule in observe mode would only take a grant away: remove the rule, or make it deny or approve".into());
    }
    let principals = compile_principals(raw.principals.as_ref())?;
    let mut warnings = Vec::new();
    let approval = compile_approval(raw, &principals, &mut warnings)?;
    if raw.mode == RuleMode::Observe {
        warnings.push("in observe mode: it does not enforce; what it would have done is recorded (would_have)".into());
    }
    let scopes = raw
        .scopes
        .iter()
        .map(|s| ScopePattern::parse(s).map_err(|e| format!("scopes: {e}")))
        .collect::<Result<_, _>>()?;
    Ok((
        Rule {
            name: raw.name.clone(),
            effect: raw.effect,
            reason: raw.reason.clone(),
            actions: patterns(&raw.actions, "actions")?,
            not_actions: patterns(&raw.not_actions, "not_actions")?,
            data_actions: patterns(&raw.data_actions, "data_actions")?,
            not_data_actions: patterns(&raw.not_data_actions, "not_data_actions")?,
            scopes,
            principals,
            approval,
            line,
            observe: raw.mode == RuleMode::Observe,
        },
        warnings,
    ))
}

/// The policy file's text and name, for compiling its named tables.
struct Tables<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Tables<'_> {
    /// Compiles each table of one kind (`[[quota]]`, `[[answer]]`): names
    /// unique (ignoring case) and non-empty, errors and warnings with the
    /// file, line and name.
    fn compile<R, T>(
        &self,
        tables: Vec<toml::Spanned<R>>,
        kind: &str,
        name: impl Fn(&R) -> &String,
        compile: impl Fn(&R, &mut Vec<String>) -> Result<T, String>,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<T>, PolicyError> {
        let mut names = HashSet::new();
        let mut compiled = Vec::with_capacity(tables.len());
        for spanned in tables {
            let line = line_of(self.text, spanned.span().start);
            let raw = spanned.into_inner();
            let name = name(&raw);
            let error = |problem: String| PolicyError {
                origin: self.origin.to_owned(),
                line: Some(line),
                rule: Some(name.clone()),
                problem,
            };
            if name.trim().is_empty() || !names.insert(name.to_ascii_lowercase()) {
                return Err(error(format!(
                    "every {kind} needs a name of its own (refusals, approvals and `airlock quota show` name it)"
                )));
            }
            let mut found = Vec::new();
            compiled.push(compile(&raw, &mut found).map_err(error)?);
            warnings.extend(
                found
                    .into_iter()
                    .map(|w| format!("{}:{line}: {kind} '{name}': {w}", self.origin)),
            );
        }
        Ok(compiled)
    }
}

/// Validates one `[[answer]]` rule.
fn compile_answer(raw: &RawAnswer, warnings: &mut Vec<String>) -> Result<AnswerRule, String> {
    if raw.operations.is_empty() {
        return Err(
            "the rule names no operations; list the operations whose answers it looks at".into(),
        );
    }
    if raw.min_bytes.is_none()
        && raw.min_items.is_none()
        && raw.min_masked.is_none()
        && raw.content_types.is_empty()
    {
        return Err("the rule names no condition, so it would hold every answer; give min_bytes, min_items, min_masked or content_types (or require approval of the request with an approve rule)".into());
    }
    let principals = compile_principals(raw.principals.as_ref())?;
    let Some(approval) = &raw.approval else {
        return Err("an [[answer]] rule needs approval = { groups = [...] } or ids: who releases a held answer".into());
    };
    let mut approval = check_approval(approval, &principals, warnings)?;
    if approval.elevate_to.is_some() {
        return Err(
            "approval.elevate_to is for requests; a held answer was already fetched".into(),
        );
    }
    approval.wait = ApprovalWait::Hold;
    let scopes = raw
        .scopes
        .iter()
        .map(|s| ScopePattern::parse(s).map_err(|e| format!("scopes: {e}")))
        .collect::<Result<_, _>>()?;
    Ok(AnswerRule {
        name: raw.name.clone(),
        principals,
        operations: patterns(&raw.operations, "operations")?,
        scopes,
        min_bytes: raw.min_bytes,
        min_items: raw.min_items,
        min_masked: raw.min_masked,
        content_types: raw.content_types.clone(),
        approval,
    })
}

/// Validates one quota.
fn compile_quota(raw: &RawQuota, warnings: &mut Vec<String>) -> Result<Quota, String> {
    if raw.operations.is_empty() {
        return Err("the quota names no operations; list the operations it counts, e.g. operations = [\"Microsoft.KeyVault/vaults/secrets/getSecret/action\"]".into());
    }
    let limit = match (raw.max_requests, raw.max_bytes) {
        (Some(n), None) => Limit::Requests(n),
        (None, Some(n)) => Limit::Bytes(n),
        _ => {
            return Err(
                "give exactly one of max_requests (operations) and max_bytes (bytes of answers)"
                    .into(),
            );
        }
    };
    if limit.max() == 0 {
        return Err("a limit of 0 allows nothing: deny the operations with a rule instead".into());
    }
    if raw.window.is_zero() {
        return Err("window must be longer than zero, e.g. window = \"1h\"".into());
    }
    let principals = compile_principals(raw.principals.as_ref())?;
    let per = match raw.per {
        RawPer::Principal => Per::Principal,
        RawPer::Group if principals.groups.is_empty() => {
            return Err("per = \"group\" counts per group of principals.groups, and it lists none; name the groups whose members share a count".into());
        }
        RawPer::Group => Per::Group,
    };
    let approval = match (raw.on_exceed, &raw.approval) {
        (OnExceed::Approve, Some(a)) => Some(check_approval(a, &principals, warnings)?),
        (OnExceed::Approve, None) => {
            return Err(
                "on_exceed = \"approve\" needs [quota.approval] with the approvers' groups or ids"
                    .into(),
            );
        }
        (OnExceed::Deny, Some(_)) => {
            return Err(
                "[quota.approval] only belongs to quotas with on_exceed = \"approve\"".into(),
            );
        }
        (OnExceed::Deny, None) => None,
    };
    let scopes = raw
        .scopes
        .iter()
        .map(|s| ScopePattern::parse(s).map_err(|e| format!("scopes: {e}")))
        .collect::<Result<_, _>>()?;
    Ok(Quota {
        name: raw.name.clone(),
        principals,
        operations: patterns(&raw.operations, "operations")?,
        scopes,
        limit,
        window: raw.window,
        per,
        approval,
    })
}

/// A rule names operations, and every exclusion narrows something.
fn check_operations(raw: &RawRule) -> Result<(), String> {
    if raw.actions.is_empty() && raw.data_actions.is_empty() {
        return Err("the rule names no operations; list actions (management plane) and/or data_actions (data plane)".into());
    }
    if raw.actions.is_empty() && !raw.not_actions.is_empty() {
        return Err(
            "not_actions without actions excludes from nothing; list the actions it narrows".into(),
        );
    }
    if raw.data_actions.is_empty() && !raw.not_data_actions.is_empty() {
        return Err("not_data_actions without data_actions excludes from nothing; list the data_actions it narrows".into());
    }
    Ok(())
}

/// `[rule.principals]`: absent means everyone; present, it must select someone.
fn compile_principals(raw: Option<&PrincipalSelector>) -> Result<PrincipalSelector, String> {
    let Some(selector) = raw else {
        return Ok(PrincipalSelector::default());
    };
    selector.validate("rule.principals")?;
    Ok(selector.clone())
}

/// `[rule.approval]`: required by `approve` rules, refused on any other;
/// it must be satisfiable, and approvers who are also requesters are warned of.
fn compile_approval(
    raw: &RawRule,
    principals: &PrincipalSelector,
    warnings: &mut Vec<String>,
) -> Result<Option<Approval>, String> {
    let a = match (raw.effect, &raw.approval) {
        (Effect::Approve, Some(a)) => a,
        (Effect::Approve, None) => {
            return Err(
                "an approve rule needs [rule.approval] with the approvers' groups or ids".into(),
            );
        }
        (_, Some(_)) => {
            return Err("[rule.approval] only belongs to rules with effect = \"approve\"".into());
        }
        (_, None) => return Ok(None),
    };
    check_approval(a, principals, warnings).map(Some)
}

/// An approval's settings: approvers who can approve, sane counts and times.
fn check_approval(
    a: &RawApproval,
    principals: &PrincipalSelector,
    warnings: &mut Vec<String>,
) -> Result<Approval, String> {
    let acting_user = a.confirm_by == Some(ConfirmBy::ActingUser);
    let only_agents_for_users = !principals.kinds.is_empty()
        && principals
            .kinds
            .iter()
            .all(|k| k == PrincipalKind::AgentForUser.as_str());
    if a.groups.is_empty() && a.ids.is_empty() {
        if !acting_user {
            return Err("approval has no approvers; list approval.groups or approval.ids".into());
        }
        if !only_agents_for_users {
            return Err("approval.confirm_by = \"acting_user\" without approvers can only let through an agent acting for a user (nobody else has an acting user); add principals.kinds = [\"agent_for_user\"], or list approval.groups or approval.ids for everyone else".into());
        }
    }
    if a.min_approvals == 0 {
        return Err("approval.min_approvals must be at least 1".into());
    }
    if a.elevate_to
        .as_deref()
        .is_some_and(|name| name.trim().is_empty())
    {
        return Err("approval.elevate_to is empty; name an [[upstream.identities]] entry, or remove the key to run approved requests as the requester's everyday identity".into());
    }
    if a.hold.is_zero() || a.ttl.is_zero() {
        return Err("approval.hold and approval.ttl must be longer than zero".into());
    }
    let listed = a.ids.len() as u64;
    if a.groups.is_empty() && !a.ids.is_empty() && u64::from(a.min_approvals) > listed {
        return Err(format!(
            "approval.min_approvals = {} but only {listed} approver id(s) are listed and no groups: it could never be approved; lower min_approvals or add approvers",
            a.min_approvals
        ));
    }
    if let Some(both) = a
        .ids
        .iter()
        .find(|id| principals.ids.iter().any(|p| p.eq_ignore_ascii_case(id)))
    {
        warnings.push(format!("approver id '{both}' is also a requester of this rule; it can never approve its own requests"));
    }
    if a.ids.is_empty()
        && !a.groups.is_empty()
        && !principals.groups.is_empty()
        && a.groups
            .iter()
            .all(|g| principals.groups.iter().any(|p| p.eq_ignore_ascii_case(g)))
    {
        warnings.push(
            "the only approvers are the requesters' own group: requesters could approve each other"
                .into(),
        );
    }
    Ok(Approval {
        approvers: Approvers {
            groups: a.groups.clone(),
            ids: a.ids.clone(),
            acting_user,
        },
        min_approvals: a.min_approvals,
        justification: a.justification,
        hold: a.hold,
        ttl: a.ttl,
        wait: match a.wait {
            RawWait::Auto => ApprovalWait::Auto,
            RawWait::Hold => ApprovalWait::Hold,
            RawWait::Async => ApprovalWait::Async,
        },
        elevate_to: a.elevate_to.clone(),
    })
}
