//! Who a rule or a mapping is about: ids, app ids, groups, roles, kinds,
//! agents and the users agents act for.

use serde::Deserialize;

use crate::{Principal, PrincipalKind};

/// Selects principals. Every field that is given must match (AND); within a
/// field any value may (OR); ids compare case-insensitively. An empty
/// selector selects everyone.
///
/// Policy rules use it as `[rule.principals]`; the upstream uses it to say
/// which agents an Azure identity serves (`[upstream.identities.serves]`).
///
/// For an agent acting for a user ([`PrincipalKind::AgentForUser`]) the
/// selector looks at the agent: `ids`, `groups` and `roles` match nothing
/// (a delegated token carries only the user's), `app_ids` and `agents` match
/// the agent, and `on_behalf_of` the user. The user's own rules apply to the
/// user separately (see `airlock-policy`).
///
/// ```
/// use airlock_core::{Agent, Principal, PrincipalKind, PrincipalSelector};
///
/// let readers: PrincipalSelector = toml::from_str(r#"groups = ["readers"]
/// kinds = ["managed_identity"]"#).unwrap();
/// let agent = Principal::builder("a1", PrincipalKind::ManagedIdentity).groups(["readers"]).build();
/// let person = Principal::builder("u1", PrincipalKind::User).groups(["readers"]).build();
/// assert!(readers.matches(&agent));
/// assert_eq!(readers.mismatch(&person), Some("kinds"));
///
/// // The release bot, acting for anyone in ops.
/// let bot_for_ops: PrincipalSelector = toml::from_str(r#"agents = ["bot-app"]
/// on_behalf_of = { groups = ["ops"] }"#).unwrap();
/// let delegated = Principal::builder("u1", PrincipalKind::AgentForUser)
///     .groups(["ops"])
///     .agent(Agent::new("bot-app"))
///     .build();
/// assert!(bot_for_ops.matches(&delegated));
/// assert_eq!(readers.mismatch(&delegated), Some("groups"));
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
    /// Kinds, as [`PrincipalKind::as_str`] names them.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Agent identities' app ids (any of the three agent kinds).
    #[serde(default)]
    pub agents: Vec<String>,
    /// Agent identity blueprints' app ids (`xms_par_app_azp`); never
    /// enough on its own (see [`validate`](Self::validate)).
    #[serde(default)]
    pub blueprints: Vec<String>,
    /// The user an agent acts for (selects only agents acting for a user).
    #[serde(default)]
    pub on_behalf_of: Option<OnBehalfOf>,
}

/// `on_behalf_of`: the user behind an agent's delegated token.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnBehalfOf {
    /// The users' object ids.
    #[serde(default)]
    pub principals: Vec<String>,
    /// Groups the user is a member of.
    #[serde(default)]
    pub groups: Vec<String>,
}

impl PrincipalSelector {
    /// Whether it names nobody in particular (and so selects everyone).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
            && self.app_ids.is_empty()
            && self.groups.is_empty()
            && self.roles.is_empty()
            && self.kinds.is_empty()
            && self.agents.is_empty()
            && self.blueprints.is_empty()
            && self.on_behalf_of.is_none()
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
        let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
        // A delegated token's id, groups and roles are the user's, not the agent's.
        let subject = principal.kind() != PrincipalKind::AgentForUser;
        if !any(&self.ids, &|id| subject && same(principal.id(), id)) {
            return Some("ids");
        }
        if !any(&self.app_ids, &|app| {
            principal.app_id().is_some_and(|a| same(a, app))
        }) {
            return Some("app_ids");
        }
        if !any(&self.groups, &|group| subject && principal.in_group(group)) {
            return Some("groups");
        }
        if !any(&self.roles, &|role| subject && principal.has_role(role)) {
            return Some("roles");
        }
        if !any(&self.kinds, &|kind| principal.kind().as_str() == kind) {
            return Some("kinds");
        }
        let agent = principal.agent();
        if !any(&self.agents, &|app| {
            agent.is_some_and(|a| same(a.app_id(), app))
        }) {
            return Some("agents");
        }
        if !any(&self.blueprints, &|blueprint| {
            agent
                .and_then(|a| a.blueprint_id())
                .is_some_and(|b| same(b, blueprint))
        }) {
            return Some("blueprints");
        }
        if let Some(user) = &self.on_behalf_of {
            let delegated = principal.kind() == PrincipalKind::AgentForUser;
            if !delegated || !any(&user.principals, &|id| same(principal.id(), id)) {
                return Some("on_behalf_of.principals");
            }
            if !any(&user.groups, &|group| principal.in_group(group)) {
                return Some("on_behalf_of.groups");
            }
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
                "[{key}] is empty; list ids, app_ids, groups, roles, kinds, agents or on_behalf_of, or remove the table to mean everyone"
            ));
        }
        if let Some(kind) = self
            .kinds
            .iter()
            .find(|k| PrincipalKind::parse(k).is_none())
        {
            return Err(format!(
                "{key}.kinds: '{kind}' is not one of {}",
                PrincipalKind::names()
            ));
        }
        if let Some(user) = &self.on_behalf_of
            && user.principals.is_empty()
            && user.groups.is_empty()
        {
            return Err(format!(
                "{key}.on_behalf_of is empty; list the users' principals or groups, or use kinds = [\"agent_for_user\"] to mean any user"
            ));
        }
        let identifies = !(self.ids.is_empty()
            && self.app_ids.is_empty()
            && self.groups.is_empty()
            && self.roles.is_empty()
            && self.agents.is_empty());
        if !self.blueprints.is_empty() && !identifies {
            return Err(format!(
                "{key}.blueprints cannot select on its own: a blueprint is a template any number of agent identities are made from, and Microsoft's guidance is not to authorize on it alone; add the agents' app ids (agents), ids, app_ids, groups or roles"
            ));
        }
        Ok(())
    }
}
