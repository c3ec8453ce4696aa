//! Scope patterns: resource-id prefixes, compared segment by segment and
//! case-insensitively, where a segment may hold `*` wildcards that match
//! within that segment (`/subscriptions/*/resourceGroups/prod-*`).

use std::fmt;

use crate::operation_pattern::glob_covers;

/// A compiled scope pattern: policy rules' and reveal rules' `scopes`.
///
/// ```
/// use airlock_core::ScopePattern;
/// let prod = ScopePattern::parse("/subscriptions/*/resourceGroups/prod-*").unwrap();
/// assert!(prod.covers("/subscriptions/s1/resourcegroups/prod-eu/providers/microsoft.web/sites/a"));
/// assert!(!prod.covers("/subscriptions/s1/resourcegroups/dev"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ScopePattern {
    text: String,
    segments: Vec<Box<[u8]>>,
}

impl fmt::Debug for ScopePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Display for ScopePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl ScopePattern {
    /// Parses `/subscriptions/{s}/resourceGroups/{rg}` style prefixes; `/` is everything.
    ///
    /// # Errors
    ///
    /// A pattern not starting with `/`, with an empty segment or `**`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if !text.starts_with('/') {
            return Err(format!(
                "'{text}' must start with '/', like a resource id (/subscriptions/…)"
            ));
        }
        let trimmed = text.trim_end_matches('/');
        if trimmed.contains("//") {
            return Err(format!("'{text}' has an empty segment"));
        }
        if trimmed.split('/').any(|s| s.contains("**")) {
            return Err(format!(
                "'{text}' has '**'; a scope is a prefix already, so everything beneath it is included"
            ));
        }
        // Compared as scopes are: a blob's name keeps its case.
        let segments = segments(&crate::operation::normalize_id(trimmed))
            .map(|s| s.as_bytes().into())
            .collect();
        Ok(Self {
            text: text.to_owned(),
            segments,
        })
    }

    /// Whether `scope` (a lower-cased resource id) is at or beneath this pattern.
    pub fn covers(&self, scope: &str) -> bool {
        let mut parts = segments(scope);
        self.segments.iter().all(|p| {
            parts
                .next()
                .is_some_and(|s| segment_matches(p, s.as_bytes()))
        })
    }

    /// Whether this pattern and `scope` lie on one branch: one contains the
    /// other. For operations on everything beneath a scope (`*/delete`).
    pub fn overlaps(&self, scope: &str) -> bool {
        self.segments
            .iter()
            .zip(segments(scope))
            .all(|(p, s)| segment_matches(p, s.as_bytes()))
    }
}

/// Whether one operation (not those it carries) is named by any of
/// `operations` and lies within any of `scopes` (no scopes: anywhere): how
/// reveal rules, quotas and answer rules pick operations.
///
/// ```
/// use airlock_core::{Operation, OperationPattern, Plane, ResourceScope, ScopePattern, scope_pattern::names};
/// let reads = [OperationPattern::parse("Microsoft.KeyVault/vaults/secrets/getSecret/action").unwrap()];
/// let prod = [ScopePattern::parse("/providers/Microsoft.KeyVault/vaults/prod-*").unwrap()];
/// let get = |vault: &str| Operation::new(
///     "Microsoft.KeyVault/vaults/secrets/getSecret/action",
///     Plane::Data,
///     ResourceScope::new(format!("/providers/Microsoft.KeyVault/vaults/{vault}/secrets/db")),
/// );
/// assert!(names(&reads, &prod, &get("prod-kv")));
/// assert!(!names(&reads, &prod, &get("dev-kv")));
/// assert!(names(&reads, &[], &get("dev-kv")));
/// ```
pub fn names(
    operations: &[crate::OperationPattern],
    scopes: &[ScopePattern],
    operation: &crate::Operation,
) -> bool {
    let name = operation.name().to_lowercase();
    operations.iter().any(|p| p.covers(name.as_bytes()))
        && (scopes.is_empty()
            || scopes
                .iter()
                .any(|s| s.covers(operation.scope().normalized())))
}

fn segments(id: &str) -> impl Iterator<Item = &str> {
    id.split('/').filter(|s| !s.is_empty())
}

/// One segment against a glob segment (`*` within the segment only: the
/// segments hold no `/`).
fn segment_matches(pattern: &[u8], segment: &[u8]) -> bool {
    glob_covers(pattern, segment)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(p: &str) -> ScopePattern {
        ScopePattern::parse(p).unwrap()
    }

    #[test]
    fn prefixes_are_segment_wise_and_case_insensitive() {
        let rg = pat("/subscriptions/S1/resourceGroups/Prod");
        assert!(rg.covers("/subscriptions/s1/resourcegroups/prod"));
        assert!(rg.covers(
            "/subscriptions/s1/resourcegroups/prod/providers/microsoft.compute/virtualmachines/vm1"
        ));
        assert!(!rg.covers("/subscriptions/s1/resourcegroups/prod2"));
        assert!(!rg.covers("/subscriptions/s1"));
        assert!(pat("/").covers("/subscriptions/s1"));
    }

    /// Azure Storage compares blob names case-sensitively: a rule for the
    /// `public/` prefix does not cover `PUBLIC/`, another blob; the rest of
    /// the id still compares case-insensitively.
    #[test]
    fn blob_names_keep_their_case() {
        let public = pat(
            "/providers/Microsoft.Storage/storageAccounts/demostore/blobServices/default/containers/logs/blobs/public",
        );
        let scope = |id: &str| crate::ResourceScope::new(id).normalized().to_owned();
        assert!(public.covers(&scope(
            "/providers/microsoft.storage/STORAGEACCOUNTS/DemoStore/BlobServices/Default/Containers/logs/Blobs/public/a.txt"
        )));
        assert!(!public.covers(&scope(
            "/providers/Microsoft.Storage/storageAccounts/demostore/blobServices/default/containers/logs/blobs/PUBLIC/creds.txt"
        )));
        assert_ne!(
            crate::ResourceScope::new("/x/blobServices/default/containers/c/blobs/A"),
            crate::ResourceScope::new("/x/blobServices/default/containers/c/blobs/a")
        );
        // A resource group named `blobs` is no blob: still any case.
        assert!(
            pat("/subscriptions/s/resourceGroups/blobs/providers/X.Y/z/N").covers(&scope(
                "/subscriptions/S/resourcegroups/BLOBS/providers/x.y/Z/n"
            ))
        );
    }

    #[test]
    fn segment_globs() {
        let prod = pat("/subscriptions/*/resourceGroups/prod-*");
        assert!(prod.covers("/subscriptions/s1/resourcegroups/prod-eu/providers/x/y/z"));
        assert!(!prod.covers("/subscriptions/s1/resourcegroups/dev-eu"));
        assert!(
            !pat("/subscriptions/*").covers("/providers/microsoft.management/managementgroups/mg")
        );
    }

    #[test]
    fn overlap_goes_both_ways() {
        let vm = pat(
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
        );
        assert!(vm.overlaps("/subscriptions/s1/resourcegroups/rg"));
        assert!(!vm.covers("/subscriptions/s1/resourcegroups/rg"));
        assert!(!vm.overlaps("/subscriptions/s1/resourcegroups/other"));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in ["subscriptions/s", "/subscriptions//x", "/subscriptions/**"] {
            assert!(ScopePattern::parse(bad).is_err(), "{bad}");
        }
    }
}
