//! Which [`MaskRule`]s name an operation, remembered per operation name.
//!
//! Every response asks twice (must it be masked? with which paths?), and
//! testing the name against each rule's patterns, about sixty with the
//! built-in rules, cost more than scanning a small JSON answer. The names
//! that come back are few (the RBAC operations agents use), so the answer
//! is kept per name as given; a name is lower-cased only the first time.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use crate::MaskRule;

/// Names remembered at most. Names come from request paths, which an agent
/// chooses: past this many the memory starts over rather than grow.
const REMEMBERED: usize = 4096;

/// The rules, and which of them each name seen so far matches.
#[derive(Debug)]
pub(crate) struct RuleIndex {
    rules: Box<[MaskRule]>,
    /// Read on every response, from every worker thread; written only
    /// for a name not seen before.
    seen: RwLock<HashMap<Box<str>, Arc<[usize]>>>,
}

impl RuleIndex {
    pub(crate) fn new(rules: Vec<MaskRule>) -> Self {
        Self {
            rules: rules.into(),
            seen: RwLock::new(HashMap::new()),
        }
    }

    pub(crate) fn rules(&self) -> &[MaskRule] {
        &self.rules
    }

    /// The positions, in order, of the rules that match the operation
    /// `name` (any case).
    pub(crate) fn matching(&self, name: &str) -> Arc<[usize]> {
        if self.rules.is_empty() {
            return Arc::from([]);
        }
        let seen = self.seen.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = seen.get(name) {
            return Arc::clone(found);
        }
        drop(seen);
        let lower = name.to_lowercase();
        let mut found: Vec<usize> = self
            .rules
            .iter()
            .enumerate()
            .filter(|(_, rule)| rule.matches_lower(lower.as_bytes()))
            .map(|(at, _)| at)
            .collect();
        // A fallback applies only where no other rule names the operation.
        if found.iter().any(|&at| !self.rules[at].fallback) {
            found.retain(|&at| !self.rules[at].fallback);
        }
        let found: Arc<[usize]> = found.into();
        let mut seen = self.seen.write().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= REMEMBERED {
            seen.clear();
        }
        seen.insert(name.into(), Arc::clone(&found));
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> RuleIndex {
        let rules = [
            MaskRule::new(["*/listKeys/action"], ["$.keys[*].value"]).unwrap(),
            MaskRule::new(["Microsoft.Web/*"], ["$.a"]).unwrap(),
            MaskRule::new(
                ["microsoft.storage/storageaccounts/listkeys/action"],
                ["$.b"],
            )
            .unwrap(),
        ];
        RuleIndex::new(rules.into())
    }

    #[test]
    fn finds_every_matching_rule_in_order_in_any_case() {
        let index = index();
        let name = "Microsoft.Storage/storageAccounts/listKeys/action";
        assert_eq!(*index.matching(name), [0, 2]);
        // Asked again (remembered), and in another case (worked out anew).
        assert_eq!(*index.matching(name), [0, 2]);
        assert_eq!(*index.matching(&name.to_uppercase()), [0, 2]);
        assert_eq!(
            *index.matching("Microsoft.Web/sites/config/list/action"),
            [1]
        );
        assert!(
            index
                .matching("Microsoft.Compute/virtualMachines/read")
                .is_empty()
        );
    }

    #[test]
    fn a_fallback_applies_only_where_no_other_rule_names_the_operation() {
        let index = RuleIndex::new(vec![
            MaskRule::new(["*/list*Keys/action"], ["$"])
                .unwrap()
                .fallback(),
            MaskRule::new(
                ["Microsoft.Storage/storageAccounts/listKeys/action"],
                ["$.keys[*].value"],
            )
            .unwrap(),
        ]);
        assert_eq!(
            *index.matching("Microsoft.Storage/storageAccounts/listKeys/action"),
            [1]
        );
        assert_eq!(
            *index.matching("Microsoft.Contoso/widgets/listKeys/action"),
            [0]
        );
    }

    #[test]
    fn starts_over_rather_than_grow_past_its_bound() {
        let index = index();
        for n in 0..REMEMBERED + 10 {
            assert!(index.matching(&format!("Microsoft.X/t{n}/read")).is_empty());
        }
        assert!(index.seen.read().unwrap().len() <= REMEMBERED);
        assert_eq!(*index.matching("Microsoft.Web/sites/read"), [1]);
    }
}
