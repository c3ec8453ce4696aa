//! Action patterns with Azure role-definition semantics: case-insensitive,
//! `*` matches any run of characters, `/` included
//! (`Microsoft.Compute/virtualMachines/*` covers child types, `*/read` every read).
//!
//! Operations can be patterns too: a resource-group delete carries the child
//! `*/delete` ("every delete beneath"). A deny rule applies when its pattern
//! *overlaps* such an operation; an allow rule only when it *covers* it.

use std::fmt;

/// A compiled, lower-cased action pattern.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ActionPattern {
    text: String,
    lower: Box<[u8]>,
    /// The literal text before the first `*` (all of it when there is none).
    literal_prefix: usize,
}

impl fmt::Debug for ActionPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Display for ActionPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl ActionPattern {
    /// Parses a pattern, refusing what Azure would not accept or what could
    /// never match.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("an empty action pattern matches nothing".into());
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
        let lower: Box<[u8]> = text.to_ascii_lowercase().into_bytes().into();
        let literal_prefix = lower.iter().position(|&b| b == b'*').unwrap_or(lower.len());
        Ok(Self {
            text: text.to_owned(),
            lower,
            literal_prefix,
        })
    }

    /// Whether this pattern has no wildcard.
    pub(crate) fn is_literal(&self) -> bool {
        self.literal_prefix == self.lower.len()
    }

    /// Whether the lower-cased operation `name` (which may itself contain
    /// `*`, meaning "any") could be an operation this pattern names.
    pub(crate) fn overlaps(&self, name: &[u8]) -> bool {
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
    pub(crate) fn covers(&self, name: &[u8]) -> bool {
        if name.len() < self.literal_prefix
            || self.lower[..self.literal_prefix] != name[..self.literal_prefix]
        {
            return false;
        }
        glob_covers(
            &self.lower[self.literal_prefix..],
            &name[self.literal_prefix..],
        )
    }
}

/// Whether pattern `p` matches every string of `q`, where a `*` in `q` is
/// "any text" that only a `*` in `p` can absorb. Greedy backtracking over the
/// last star, linear in practice.
fn glob_covers(p: &[u8], q: &[u8]) -> bool {
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
/// over both, O(len(a) × len(b)); names are short).
fn globs_intersect(a: &[u8], b: &[u8]) -> bool {
    // reach[j]: the suffixes a[i..] and b[j..] can produce a common string.
    let m = b.len();
    let mut next = vec![false; m + 1];
    let mut current = vec![false; m + 1];
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

    fn pat(p: &str) -> ActionPattern {
        ActionPattern::parse(p).unwrap()
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
            assert!(ActionPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
