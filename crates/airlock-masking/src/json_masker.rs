//! [`JsonMasker`]: the default [`Masker`]: rules plus detectors.

use std::sync::Arc;

use airlock_core::Operation;
use bytes::Bytes;

use crate::detectors::{self, Context};
use crate::json_scan::{Masked, Plan, mask_json};
use crate::media_type::{first_significant, is_json, is_text};
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
    rules: Arc<[MaskRule]>,
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
            rules: self.rules.into(),
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
        let name = operation.name().to_lowercase();
        let children: Vec<String> = operation
            .flatten()
            .iter()
            .skip(1)
            .map(|child| child.name().to_lowercase())
            .collect();
        let mut plan = Plan::default();
        let mut keep_detectors = false;
        for rule in self.rules.iter() {
            let on_child = children
                .iter()
                .any(|child| rule.matches_lower(child.as_bytes()));
            if !on_child && !rule.matches_lower(name.as_bytes()) {
                continue;
            }
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

impl Masker for JsonMasker {
    fn must_mask(&self, operation: &Operation) -> bool {
        let matches = |op: &Operation| {
            let name = op.name().to_lowercase();
            self.rules
                .iter()
                .any(|rule| rule.matches_lower(name.as_bytes()))
        };
        operation.flatten().into_iter().any(matches)
    }

    fn mask(&self, context: &MaskContext<'_>, body: &[u8]) -> Result<MaskOutcome, MaskError> {
        let Some(first) = first_significant(body) else {
            return Ok(MaskOutcome::unchanged());
        };
        let content_type = context.content_type;
        let mut plan = self.plan(context.operation);
        plan.reveal_selected = context.reveal;
        let must = plan.rule_matched;
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
