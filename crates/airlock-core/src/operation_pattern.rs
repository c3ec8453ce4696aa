//! Operation patterns with Azure role-definition semantics: case-insensitive,
//! `*` matches any run of characters, `/` included
//! (`Microsoft.Compute/virtualMachines/*` covers child types, `*/read` every read).
//!
//! Operations can be patterns too: a resource-group delete carries the child
//! `*/delete` ("every delete beneath"). A deny rule applies when its pattern
//! *overlaps* such an operation; an allow rule only when it *covers* it.

use std::fmt;

/// A compiled operation pattern, as in role definitions' `actions`:
/// case-insensitive, `*` spans `/`.
///
/// ```
/// use airlock_core::OperationPattern;
///
/// let pattern = OperationPattern::parse("Microsoft.Storage/storageAccounts/*/action").unwrap();
/// assert!(pattern.matches("microsoft.storage/storageAccounts/listKeys/action"));
/// assert!(!pattern.matches("Microsoft.Storage/storageAccounts/read"));
/// assert!(OperationPattern::parse("Microsoft.Compute/**").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct OperationPattern {
    text: String,
    lower: Box<[u8]>,
    /// The literal text before the first `*` (all of it when there is none).
    literal_prefix: usize,
    /// Where the literal text after the last `*` starts.
    literal_suffix: usize,
}

impl fmt::Debug for OperationPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Display for OperationPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Why an operation pattern is unusable: what is wrong and how to write it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PatternError(String);

impl OperationPattern {
    /// Parses a pattern, refusing what Azure would not accept or what could
    /// never match.
    ///
    /// # Errors
    ///
    /// What is wrong with the pattern and how to write it.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        Self::parse_text(text).map_err(PatternError)
    }

    fn parse_text(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("an empty action pattern matches nothing".into());
        }
        // A request the classifier did not understand is named
        // "{METHOD} {path}" (as `airlock policy explain` prints it); a rule
        // may name such requests exactly, or with '*'.
        if let Some((method, path)) = text.split_once(' ') {
            if method.is_empty()
                || !method.bytes().all(|b| b.is_ascii_uppercase())
                || !path.starts_with('/')
                || path.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(format!(
                    "'{text}' is neither an operation name nor an unclassified request (\"METHOD /path\")"
                ));
            }
            return Ok(Self::compile(text));
        }
        if let Some(bad) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '*' | '-' | '_')))
        {
            return Err(format!(
                "'{text}' contains '{bad}'; action names use letters, digits, '.', '/', '-', '_' and the wildcard '*'"
            ));
        }
        if text.contains("**") {
            return Err(format!(
                "'{text}' has '**'; a single '*' already spans '/' (write '*')"
            ));
        }
        if text.starts_with('/') || text.ends_with('/') || text.contains("//") {
            return Err(format!(
                "'{text}' has an empty segment; write e.g. 'Microsoft.Compute/virtualMachines/read'"
            ));
        }
        Ok(Self::compile(text))
    }

    fn compile(text: &str) -> Self {
        let lower: Box<[u8]> = text.to_lowercase().into_bytes().into();
        let literal_prefix = lower.iter().position(|&b| b == b'*').unwrap_or(lower.len());
        let literal_suffix = lower
            .iter()
            .rposition(|&b| b == b'*')
            .map_or(lower.len(), |i| i + 1);
        Self {
            text: text.to_owned(),
            lower,
            literal_prefix,
            literal_suffix,
        }
    }

    /// The provider namespace every name this pattern matches starts with
    /// (`microsoft.compute`), or `None` when it could match any.
    pub fn namespace(&self) -> Option<&[u8]> {
        let end = self.lower.iter().position(|&b| b == b'/')?;
        (end <= self.literal_prefix).then(|| &self.lower[..end])
    }

    /// Whether this pattern has no wildcard.
    pub fn is_literal(&self) -> bool {
        self.literal_prefix == self.lower.len()
    }

    /// Whether `name` (any case) is an operation this pattern names.
    pub fn matches(&self, name: &str) -> bool {
        self.covers(name.to_lowercase().as_bytes())
    }

    /// Whether the lower-cased operation `name` (which may itself contain
    /// `*`, meaning "any") could be an operation this pattern names.
    pub fn overlaps(&self, name: &[u8]) -> bool {
        // A plain name stands for itself only: overlapping is matching.
        if !name.contains(&b'*') {
            return self.covers(name);
        }
        let prefix = self.literal_prefix.min(name.len());
        let comparable = name[..prefix]
            .iter()
            .position(|&b| b == b'*')
            .unwrap_or(prefix);
        if self.lower[..comparable] != name[..comparable] {
            return false;
        }
        globs_intersect(&self.lower, name)
    }

    /// Whether every operation the lower-cased `name` can stand for is named
    /// by this pattern. For a plain name this is ordinary wildcard matching.
    pub fn covers(&self, name: &[u8]) -> bool {
        if name.len() < self.literal_prefix
            || self.lower[..self.literal_prefix] != name[..self.literal_prefix]
        {
            return false;
        }
        // The text after the last '*' must end the name (`*/read`): a cheap
        // rejection before the general match.
        let suffix = &self.lower[self.literal_suffix..];
        if self.literal_suffix > self.literal_prefix
            && (name.len() < suffix.len() || !name.ends_with(suffix))
        {
            return false;
        }
        glob_covers(
            &self.lower[self.literal_prefix..],
            &name[self.literal_prefix..],
        )
    }
}

/// Whether the `*`-pattern `p` matches every string of `q`, where a `*` in
/// `q` is "any text" that only a `*` in `p` can absorb; for a `q` without
/// `*` this is plain wildcard matching (byte-wise: lower-case both first).
/// Greedy backtracking over the last star, linear in practice.
///
/// ```
/// use airlock_core::operation_pattern::glob_covers;
///
/// assert!(glob_covers(b"prod-*", b"prod-eu"));
/// assert!(!glob_covers(b"prod-*", b"dev-eu"));
/// assert!(glob_covers(b"*/delete", b"*/delete"));
/// assert!(!glob_covers(b"a/delete", b"*/delete"));
/// ```
pub fn glob_covers(p: &[u8], q: &[u8]) -> bool {
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < q.len() {
        if i < p.len() && p[i] == b'*' {
            star = Some((i, j));
            i += 1;
        } else if i < p.len() && p[i] == q[j] && q[j] != b'*' {
            i += 1;
            j += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&b| b == b'*')
}

/// Whether two star patterns have a string in common (dynamic programming
/// over both, O(len(a) × len(b)); names are short, so the rows live on the
/// stack up to 256 bytes).
fn globs_intersect(a: &[u8], b: &[u8]) -> bool {
    const STACK: usize = 257;
    let m = b.len();
    let (mut next_stack, mut current_stack) = ([false; STACK], [false; STACK]);
    let (mut next_heap, mut current_heap);
    let (mut next, mut current): (&mut [bool], &mut [bool]) = if m < STACK {
        (&mut next_stack[..=m], &mut current_stack[..=m])
    } else {
        next_heap = vec![false; m + 1];
        current_heap = vec![false; m + 1];
        (&mut next_heap, &mut current_heap)
    };
    // next[j]: whether a[i+1..] and b[j..] can produce a common string.
    for i in (0..=a.len()).rev() {
        for j in (0..=m).rev() {
            current[j] = match (a.get(i), b.get(j)) {
                (None, None) => true,
                (Some(b'*'), _) => next[j] || (j < m && current[j + 1]),
                (_, Some(b'*')) => current[j + 1] || (i < a.len() && next[j]),
                (Some(x), Some(y)) => x == y && next[j + 1],
                _ => false,
            };
        }
        std::mem::swap(&mut next, &mut current);
    }
    next[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(p: &str) -> OperationPattern {
        OperationPattern::parse(p).unwrap()
    }
    fn covers(p: &str, name: &str) -> bool {
        pat(p).covers(name.to_ascii_lowercase().as_bytes())
    }
    fn overlaps(p: &str, name: &str) -> bool {
        pat(p).overlaps(name.to_ascii_lowercase().as_bytes())
    }

    #[test]
    fn azure_wildcards_span_slashes_and_ignore_case() {
        assert!(covers(
            "Microsoft.Compute/virtualMachines/*",
            "Microsoft.Compute/virtualMachines/extensions/write"
        ));
        assert!(covers("*/read", "Microsoft.Storage/storageAccounts/read"));
        assert!(covers(
            "microsoft.compute/VIRTUALMACHINES/delete",
            "Microsoft.Compute/virtualMachines/delete"
        ));
        assert!(covers(
            "Microsoft.CostManagement/*/query/*",
            "Microsoft.CostManagement/exports/query/action"
        ));
        assert!(covers(
            "*",
            "Microsoft.KeyVault/vaults/secrets/getSecret/action"
        ));
        assert!(!covers("*/read", "Microsoft.Storage/storageAccounts/write"));
        assert!(!covers(
            "Microsoft.Compute/virtualMachines/read",
            "Microsoft.Compute/virtualMachines/readx"
        ));
        assert!(!covers(
            "Microsoft.Compute/*",
            "Microsoft.Storage/storageAccounts/read"
        ));
    }

    #[test]
    fn pattern_operations_need_cover_to_allow_and_overlap_to_deny() {
        // A resource-group delete's child `*/delete`.
        assert!(overlaps(
            "Microsoft.Compute/virtualMachines/delete",
            "*/delete"
        ));
        assert!(!covers(
            "Microsoft.Compute/virtualMachines/delete",
            "*/delete"
        ));
        assert!(covers("*/delete", "*/delete"));
        assert!(covers("*", "*/delete"));
        assert!(!overlaps("*/read", "*/delete"));
        assert!(!overlaps(
            "Microsoft.Compute/virtualMachines/read",
            "*/delete"
        ));
        assert!(overlaps("Microsoft.*/write", "*/delete/x/write"));
    }

    #[test]
    fn impossible_patterns_are_refused() {
        for bad in [
            "",
            "Microsoft.Compute/**",
            "/read",
            "Microsoft.Compute//read",
            "Microsoft Compute/read",
            "a/b/",
        ] {
            assert!(OperationPattern::parse(bad).is_err(), "{bad}");
        }
    }

    /// A plainly recursive matcher, obviously right, to check the fast ones against.
    fn reference(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => reference(&p[1..], s) || (!s.is_empty() && reference(p, &s[1..])),
            (Some(a), Some(b)) => a == b && reference(&p[1..], &s[1..]),
            _ => false,
        }
    }

    proptest::proptest! {
        #[test]
        fn matching_agrees_with_the_reference(p in "\\*?[ab]{1,3}(\\*[ab]{1,3}){0,2}\\*?", s in "[ab]{0,10}") {
            let pattern = pat(&p);
            let expected = reference(p.as_bytes(), s.as_bytes());
            proptest::prop_assert_eq!(pattern.covers(s.as_bytes()), expected);
            proptest::prop_assert_eq!(pattern.overlaps(s.as_bytes()), expected);
        }

        #[test]
        fn cover_implies_overlap_and_every_instance_matches(p in "\\*?[ab]{1,3}(\\*[ab]{1,3}){0,2}\\*?", q in "\\*?[ab]{1,3}(\\*[ab]{1,3}){0,2}\\*?", fill in "[ab]{0,3}") {
            let pattern = pat(&p);
            let instance = q.replace('*', &fill);
            if pattern.covers(q.as_bytes()) {
                proptest::prop_assert!(pattern.overlaps(q.as_bytes()));
                proptest::prop_assert!(reference(p.as_bytes(), instance.as_bytes()), "{} covers {} but not its instance {}", p, q, instance);
            }
            if reference(p.as_bytes(), instance.as_bytes()) {
                proptest::prop_assert!(pattern.overlaps(q.as_bytes()), "{} matches {} (an instance of {}) but does not overlap it", p, instance, q);
            }
        }
    }
}
