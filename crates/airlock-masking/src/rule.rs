//! [`MaskRule`]: which operations' responses hold secrets, and where.

use airlock_core::OperationPattern;

use crate::MaskError;
use crate::json_path::JsonPath;

/// Responses to these operations hold secrets at these JSON paths.
///
/// Operations are role-definition patterns ([`OperationPattern`]:
/// case-insensitive, `*` spans `/`). Paths are a JSONPath subset: `$`,
/// `.field`, `['field']`, `[*]`, `[N]`, `.*` and `..field`; one that selects
/// an object or array masks every string inside it, and one that finds
/// nothing in a body is fine. A rule makes its responses *must mask*: they
/// are parsed and masked, or withheld. A rule with no paths only does that
/// (the detectors still scan the body).
///
/// ```
/// use airlock_masking::MaskRule;
///
/// let rule = MaskRule::new(
///     ["Microsoft.Storage/storageAccounts/listKeys/action", "Microsoft.Storage/storageAccounts/regenerateKey/action"],
///     ["$.keys[*].value"],
/// )
/// .unwrap();
/// assert!(rule.matches_operation("microsoft.storage/STORAGEACCOUNTS/listkeys/action"));
///
/// let error = MaskRule::new(["*/listKeys/action"], ["$.keys[?(@.x)]"]).unwrap_err();
/// assert!(error.to_string().contains("no filters"));
/// ```
#[derive(Clone, Debug)]
pub struct MaskRule {
    operations: Vec<OperationPattern>,
    pub(crate) paths: Vec<JsonPath>,
    pub(crate) detectors: bool,
    pub(crate) xml_elements: Vec<String>,
    pub(crate) fallback: bool,
}

/// Operation patterns of a masking or reveal rule: at least one, each valid.
pub(crate) fn operation_patterns<O>(operations: O) -> Result<Vec<OperationPattern>, MaskError>
where
    O: IntoIterator,
    O::Item: AsRef<str>,
{
    let operations = operations
        .into_iter()
        .map(|op| {
            OperationPattern::parse(op.as_ref()).map_err(|e| MaskError::Operation(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if operations.is_empty() {
        return Err(MaskError::NoOperations);
    }
    Ok(operations)
}

impl MaskRule {
    /// A rule for `operations` masking `json_paths`, detectors on.
    ///
    /// # Errors
    ///
    /// [`MaskError::NoOperations`], [`MaskError::Operation`] or
    /// [`MaskError::JsonPath`], saying what is wrong.
    pub fn new<O, P>(operations: O, json_paths: P) -> Result<Self, MaskError>
    where
        O: IntoIterator,
        O::Item: AsRef<str>,
        P: IntoIterator,
        P::Item: AsRef<str>,
    {
        let operations = operation_patterns(operations)?;
        let paths = json_paths
            .into_iter()
            .map(|path| JsonPath::parse(path.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            operations,
            paths,
            detectors: true,
            xml_elements: Vec::new(),
            fallback: false,
        })
    }

    /// Whether the detectors also scan these operations' responses (default
    /// `true`). Off only when every rule matching a response turns them off.
    #[must_use]
    pub fn detectors(mut self, on: bool) -> Self {
        self.detectors = on;
        self
    }

    /// Makes this a fallback: it applies only to operations no other rule
    /// names. For patterns that say an answer holds a secret without saying
    /// where (`*/list*Secrets/action`, masking every string with `$`),
    /// while a rule that knows the answer (`…/storageAccounts/listKeys`)
    /// masks only what it names.
    ///
    /// ```
    /// use airlock_masking::MaskRule;
    /// let fallback = MaskRule::new(["*/list*Keys/action"], ["$"]).unwrap().fallback();
    /// assert!(fallback.is_fallback());
    /// ```
    #[must_use]
    pub fn fallback(mut self) -> Self {
        self.fallback = true;
        self
    }

    /// Whether it is a [`fallback`](Self::fallback).
    pub fn is_fallback(&self) -> bool {
        self.fallback
    }

    /// Elements whose text is secret when the answer is XML (Storage's data
    /// plane): `["Value"]` masks every `<Value>…</Value>`; a name with a
    /// leading `@` is an attribute whose value is secret: `["@userPWD"]`
    /// masks the `userPWD="…"` of a Web App's publishing profile.
    ///
    /// ```
    /// use airlock_masking::MaskRule;
    /// let rule = MaskRule::new(["*/generateUserDelegationKey/action"], [] as [&str; 0])
    ///     .unwrap()
    ///     .xml_elements(["Value"]);
    /// assert_eq!(rule.xml_element_names().collect::<Vec<_>>(), ["Value"]);
    /// ```
    #[must_use]
    pub fn xml_elements(mut self, names: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.xml_elements.extend(names.into_iter().map(Into::into));
        self
    }

    /// The XML element names (and `@attribute` names), as given.
    pub fn xml_element_names(&self) -> impl Iterator<Item = &str> {
        self.xml_elements.iter().map(String::as_str)
    }

    /// Whether this rule names the operation `name` (any case).
    pub fn matches_operation(&self, name: &str) -> bool {
        self.matches_lower(name.to_lowercase().as_bytes())
    }

    /// The JSON paths, as written.
    pub fn json_paths(&self) -> impl Iterator<Item = &str> {
        self.paths.iter().map(JsonPath::as_str)
    }

    /// For a lower-cased name; a name that is itself a pattern (`*/delete`)
    /// matches when it could be one of this rule's operations.
    pub(crate) fn matches_lower(&self, name: &[u8]) -> bool {
        self.operations.iter().any(|pattern| pattern.overlaps(name))
    }
}
