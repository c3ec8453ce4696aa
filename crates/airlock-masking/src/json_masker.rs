//! [`JsonMasker`]: the default [`Masker`]: rules plus detectors.

use std::sync::Arc;

use airlock_core::Operation;
use bytes::Bytes;

use crate::detectors::{self, Context};
use crate::json_scan::{Masked, Plan, mask_json};
use crate::media_type::{first_significant, is_json, is_text};
use crate::rule_index::RuleIndex;
use crate::splice::apply_hits;
use crate::{MaskContext, MaskError, MaskOutcome, MaskRule, Masker, TokenKey};

/// The default masker: [`MaskRule`]s (operation patterns × JSON paths) and
/// detectors for secret shapes in every string (connection strings, SAS
/// signatures, JWTs, PEM private keys, storage keys).
///
/// - A body is parsed as JSON when its content type says JSON
///   (`application/json`, `text/json`, `…+json`), or when the operation must
///   be masked and the body starts with `{` or `[`. Output is valid JSON
///   whenever the input is; only masked strings change (member order,
///   whitespace and numbers are kept byte for byte).
/// - Rules apply to the operation and every operation it carries: a rule
///   that matches a child (a request inside `/batch`) matches its paths at
///   any depth, as inner responses sit inside the outer one.
/// - Detectors run on every JSON string and on `text/*` bodies (and on any
///   text body that must be masked), unless turned off for the masker or by
///   every rule that matches. A JSON body that is not valid JSON is scanned
///   as text when it need not be masked, and refused when it must.
/// - A value a rule selects becomes a token of the reader, the resource
///   (the operation's scope) and the field ([`TokenKey::scope`]); a secret a
///   detector finds becomes [`REDACTED`](crate::REDACTED), linkable to
///   nothing: detectors look at text the agent may have written itself (a
///   tag, a URL echoed in an error), so a token there could confirm a guess.
/// - A value that is already masked is never masked again.
/// - With [`MaskContext::reveal`] (a reveal rule or approval), rule-selected
///   values are left as they are; the detectors still run elsewhere.
///
/// ```
/// use airlock_core::{Operation, Plane, ResourceScope};
/// use airlock_masking::{JsonMasker, MaskContext, MaskRule, Masker, TokenKey};
///
/// let masker = JsonMasker::builder(TokenKey::new([42u8; 32]).unwrap())
///     .rule(MaskRule::new(["Microsoft.Storage/storageAccounts/listKeys/action"], ["$.keys[*].value"]).unwrap())
///     .detectors(true)
///     .build();
/// let list_keys = Operation::new(
///     "Microsoft.Storage/storageAccounts/listKeys/action",
///     Plane::Management,
///     ResourceScope::new("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st"),
/// );
/// assert!(masker.must_mask(&list_keys));
///
/// let body = br#"{"keys":[{"keyName":"key1","value":"c2VjcmV0","permissions":"FULL"}]}"#;
/// let context = MaskContext::new(&list_keys).content_type(Some("application/json"));
/// let outcome = masker.mask(&context, body).unwrap();
/// let masked: serde_json::Value = serde_json::from_slice(&outcome.body.unwrap()).unwrap();
/// assert!(masked["keys"][0]["value"].as_str().unwrap().starts_with("***MASKED:"));
/// assert_eq!(masked["keys"][0]["keyName"], "key1");
/// assert_eq!(outcome.paths, ["$.keys[0].value"]);
/// ```
#[derive(Clone, Debug)]
pub struct JsonMasker {
    key: TokenKey,
    rules: Arc<RuleIndex>,
    detectors: bool,
}

/// Builds a [`JsonMasker`]; see [`JsonMasker::builder`].
#[derive(Debug)]
pub struct JsonMaskerBuilder {
    key: TokenKey,
    rules: Vec<MaskRule>,
    detectors: bool,
}

impl JsonMaskerBuilder {
    /// Adds a rule.
    #[must_use]
    pub fn rule(mut self, rule: MaskRule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Adds rules.
    #[must_use]
    pub fn rules(mut self, rules: impl IntoIterator<Item = MaskRule>) -> Self {
        self.rules.extend(rules);
        self
    }

    /// Whether the detectors run at all (default `true`).
    #[must_use]
    pub fn detectors(mut self, on: bool) -> Self {
        self.detectors = on;
        self
    }

    /// The masker.
    pub fn build(self) -> JsonMasker {
        JsonMasker {
            key: self.key,
            rules: Arc::new(RuleIndex::new(self.rules)),
            detectors: self.detectors,
        }
    }
}

impl JsonMasker {
    /// A builder with no rules and the detectors on; `key` makes the tokens.
    pub fn builder(key: TokenKey) -> JsonMaskerBuilder {
        JsonMaskerBuilder {
            key,
            rules: Vec::new(),
            detectors: true,
        }
    }

    /// What to do for `operation`: the paths of every rule matching it or an
    /// operation it carries, and whether the detectors run.
    fn plan(&self, operation: &Operation) -> Plan<'_> {
        let mut plan = Plan::default();
        let own = self.rules.matching(operation.name());
        // Rules of the operations carried inside it (`/batch`), in rule order.
        let mut children = Vec::new();
        visit_children(operation, &mut |child| {
            children.extend_from_slice(&self.rules.matching(child.name()));
        });
        children.sort_unstable();
        children.dedup();
        let mut keep_detectors = false;
        let rules = self.rules.rules();
        for at in merge_sorted(&own, &children) {
            let rule = &rules[at];
            let on_child = children.binary_search(&at).is_ok();
            plan.rule_matched = true;
            keep_detectors |= rule.detectors;
            plan.paths
                .extend(rule.paths.iter().map(|path| (path, !on_child)));
            plan.xml_elements.extend(rule.xml_element_names());
        }
        plan.detectors = self.detectors && (!plan.rule_matched || keep_detectors);
        plan
    }

    /// The detectors over a text body.
    fn mask_text(body: &[u8]) -> Masked {
        let hits = detectors::find(body, Context::Text, || false);
        let mut masked = Masked::default();
        if hits.is_empty() {
            return masked;
        }
        masked.body = Some(apply_hits(body, &hits));
        for hit in hits {
            masked.record(format!("$ ({})", hit.label));
        }
        masked
    }
}

/// Calls `each` with every operation carried inside `operation`, at any depth.
fn visit_children<'o>(operation: &'o Operation, each: &mut impl FnMut(&'o Operation)) {
    for child in operation.children() {
        each(child);
        visit_children(child, each);
    }
}

/// The union of two ascending lists, ascending, without repeats.
fn merge_sorted<'a>(a: &'a [usize], b: &'a [usize]) -> impl Iterator<Item = usize> + 'a {
    let (mut i, mut j) = (0, 0);
    std::iter::from_fn(move || {
        let next = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => return None,
        };
        i += usize::from(a.get(i) == Some(&next));
        j += usize::from(b.get(j) == Some(&next));
        Some(next)
    })
}

impl Masker for JsonMasker {
    fn must_mask(&self, operation: &Operation) -> bool {
        let mut must = !self.rules.matching(operation.name()).is_empty();
        visit_children(operation, &mut |child| {
            must = must || !self.rules.matching(child.name()).is_empty();
        });
        must
    }

    fn mask(&self, context: &MaskContext<'_>, body: &[u8]) -> Result<MaskOutcome, MaskError> {
        let Some(first) = first_significant(body) else {
            return Ok(MaskOutcome::unchanged());
        };
        let content_type = context.content_type;
        let mut plan = self.plan(context.operation);
        plan.reveal_selected = context.reveal;
        plan.secret_names = context.request;
        let must = plan.rule_matched;
        // No rule applies, so only a detector could change the body; none
        // can when no byte of it could start one of their shapes, even
        // decoded. A few `memchr` passes instead of a scan of the document:
        // most ARM answers hold no `=`, `J`, `\` or PEM header at all.
        if !must
            && !context.request
            && (!plan.detectors || !detectors::may_hold_secret_escaped(body))
        {
            return Ok(MaskOutcome::unchanged());
        }
        let masked = if is_json(content_type) || (must && matches!(first, b'{' | b'[')) {
            // Rule-selected values get tokens of this reader and resource.
            let tokens = must.then(|| {
                self.key
                    .scope(context.principal, context.operation.scope().as_str())
            });
            match mask_json(body, &plan, tokens.as_ref()) {
                Ok(masked) => masked,
                Err(error) if must => return Err(error),
                Err(_) if plan.detectors => Self::mask_text(body),
                Err(_) => Masked::default(),
            }
        } else if is_text(content_type) || must {
            if must
                && ((!plan.detectors && plan.xml_elements.is_empty())
                    || std::str::from_utf8(body).is_err())
            {
                return Err(MaskError::Unreadable {
                    content_type: content_type.unwrap_or("none").chars().take(100).collect(),
                });
            }
            let by_element = match (
                must && !plan.xml_elements.is_empty() && !plan.reveal_selected,
                std::str::from_utf8(body),
            ) {
                (true, Ok(text)) => {
                    let tokens = self
                        .key
                        .scope(context.principal, context.operation.scope().as_str());
                    crate::xml::mask_elements(text, &plan.xml_elements, &tokens)
                }
                _ => Masked::default(),
            };
            if plan.detectors {
                let scanned = Self::mask_text(by_element.body.as_deref().unwrap_or(body));
                Masked {
                    body: scanned.body.or(by_element.body),
                    count: by_element.count.saturating_add(scanned.count),
                    paths: by_element.paths.into_iter().chain(scanned.paths).collect(),
                }
            } else {
                by_element
            }
        } else {
            Masked::default()
        };
        Ok(MaskOutcome {
            body: masked.body.map(Bytes::from),
            count: masked.count,
            paths: masked.paths,
        })
    }
}
