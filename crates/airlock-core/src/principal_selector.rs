//! Who a rule or a mapping is about: ids, app ids, groups, roles, kinds.

use serde::Deserialize;

use crate::Principal;

/// The kinds a selector may name.
const KINDS: [&str; 3] = ["application", "managed_identity", "user"];

/// Selects principals. Every field that is given must match (AND); within a
/// field any value may (OR); ids compare case-insensitively. An empty
/// selector selects everyone.
///
/// Policy rules use it as `[rule.principals]`; the upstream uses it to say
/// which agents an Azure identity serves (`[upstream.identities.serves]`).
///
/// ```
/// use airlock_core::{Principal, PrincipalKind, PrincipalSelector};
///
/// let readers: PrincipalSelector = toml::from_str(r#"groups = ["readers"]
/// kinds = ["managed_identity"]"#).unwrap();
/// let agent = Principal::builder("a1", PrincipalKind::ManagedIdentity).groups(["readers"]).build();
/// let person = Principal::builder("u1", PrincipalKind::User).groups(["readers"]).build();
/// assert!(readers.matches(&agent));
/// assert_eq!(readers.mismatch(&person), Some("kinds"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalSelector {
    /// Object ids.
    #[serde(default)]
    pub ids: Vec<String>,
    /// Application (client) ids.
    #[serde(default)]
    pub app_ids: Vec<String>,
    /// Entra group object ids.
    #[serde(default)]
    pub groups: Vec<String>,
    /// App roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// `application`, `managed_identity` or `user`.
    #[serde(default)]
    pub kinds: Vec<String>,
}

impl PrincipalSelector {
    /// Whether it names nobody in particular (and so selects everyone).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
            && self.app_ids.is_empty()
            && self.groups.is_empty()
            && self.roles.is_empty()
            && self.kinds.is_empty()
    }

    /// Whether `principal` is selected.
    pub fn matches(&self, principal: &Principal) -> bool {
        self.mismatch(principal).is_none()
    }

    /// `None` when `principal` is selected, else the first field that did not match.
    pub fn mismatch(&self, principal: &Principal) -> Option<&'static str> {
        let any = |values: &[String], test: &dyn Fn(&str) -> bool| {
            values.is_empty() || values.iter().any(|v| test(v))
        };
        if !any(&self.ids, &|id| principal.id().eq_ignore_ascii_case(id)) {
            return Some("ids");
        }
        if !any(&self.app_ids, &|app| {
            principal
                .app_id()
                .is_some_and(|a| a.eq_ignore_ascii_case(app))
        }) {
            return Some("app_ids");
        }
        if !any(&self.groups, &|group| principal.in_group(group)) {
            return Some("groups");
        }
        if !any(&self.roles, &|role| principal.has_role(role)) {
            return Some("roles");
        }
        if !any(&self.kinds, &|kind| principal.kind().as_str() == kind) {
            return Some("kinds");
        }
        None
    }

    /// Checks that it selects someone and names only known kinds; `key`
    /// names it in the message (`rule.principals`).
    ///
    /// # Errors
    ///
    /// What is wrong and how to fix it.
    pub fn validate(&self, key: &str) -> Result<(), String> {
        if self.is_empty() {
            return Err(format!(
                "[{key}] is empty; list ids, app_ids, groups, roles or kinds, or remove the table to mean everyone"
            ));
        }
        if let Some(kind) = self.kinds.iter().find(|k| !KINDS.contains(&k.as_str())) {
            return Err(format!(
                "{key}.kinds: '{kind}' is not one of application, managed_identity, user"
            ));
        }
        Ok(())
    }
}
