//! Who is asking: the verified identity behind a request.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::Agent;

/// What kind of Entra ID identity a [`Principal`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum PrincipalKind {
    /// A service principal acting as itself (client credentials).
    Application,
    /// A system- or user-assigned managed identity.
    ManagedIdentity,
    /// A human user (delegated token).
    User,
    /// An AI agent acting alone (Entra Agent ID: app-only token whose actor
    /// and subject facets say agent).
    Agent,
    /// An AI agent acting for a user (on-behalf-of): the principal's id,
    /// groups and roles are the user's, [`Principal::agent`] is the agent.
    AgentForUser,
    /// An agent user: a user account an agent drives (subject facet 13).
    AgentUser,
}

impl PrincipalKind {
    /// The lower-case name used in configuration and audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Application => "application",
            PrincipalKind::ManagedIdentity => "managed_identity",
            PrincipalKind::User => "user",
            PrincipalKind::Agent => "agent",
            PrincipalKind::AgentForUser => "agent_for_user",
            PrincipalKind::AgentUser => "agent_user",
        }
    }

    /// Every kind, in the order configuration lists them.
    pub const ALL: [PrincipalKind; 6] = [
        PrincipalKind::Application,
        PrincipalKind::ManagedIdentity,
        PrincipalKind::User,
        PrincipalKind::Agent,
        PrincipalKind::AgentForUser,
        PrincipalKind::AgentUser,
    ];

    /// The kind named `name` (as [`as_str`](Self::as_str) spells it).
    ///
    /// ```
    /// use airlock_core::PrincipalKind;
    /// assert_eq!(PrincipalKind::parse("agent_for_user"), Some(PrincipalKind::AgentForUser));
    /// assert_eq!(PrincipalKind::parse("robot"), None);
    /// ```
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The kinds' names, comma-separated, for messages.
    pub fn names() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }

    /// Whether an AI agent is behind it (any of the three agent kinds).
    pub fn is_agent(self) -> bool {
        matches!(
            self,
            PrincipalKind::Agent | PrincipalKind::AgentForUser | PrincipalKind::AgentUser
        )
    }

    /// Whether a person (or an agent user) signed in: a delegated token.
    pub fn is_user(self) -> bool {
        matches!(
            self,
            PrincipalKind::User | PrincipalKind::AgentForUser | PrincipalKind::AgentUser
        )
    }
}

impl fmt::Display for PrincipalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A verified identity, put in the request's extensions by the identity layer.
///
/// Cheap to clone: the claims live behind an [`Arc`].
///
/// ```
/// use airlock_core::{Principal, PrincipalKind};
///
/// let agent = Principal::builder("00000000-0000-0000-0000-0000000000a1", PrincipalKind::ManagedIdentity)
///     .tenant_id("tenant-1")
///     .display_name("build-agent")
///     .groups(["agents"])
///     .build();
/// assert!(agent.in_group("agents"));
/// assert_eq!(agent.to_string(), "build-agent (managed_identity 00000000-0000-0000-0000-0000000000a1)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Principal {
    inner: Arc<PrincipalInner>,
}

#[derive(PartialEq, Eq)]
struct PrincipalInner {
    id: String,
    tenant_id: String,
    app_id: Option<String>,
    kind: PrincipalKind,
    display_name: Option<String>,
    groups: Vec<String>,
    roles: Vec<String>,
    agent: Option<Agent>,
    raw_claims: serde_json::Map<String, serde_json::Value>,
}

impl Principal {
    /// Starts a principal with its object id (Entra `oid`, else `sub`) and kind.
    pub fn builder(id: impl Into<String>, kind: PrincipalKind) -> PrincipalBuilder {
        PrincipalBuilder {
            inner: PrincipalInner {
                id: id.into(),
                tenant_id: String::new(),
                app_id: None,
                kind,
                display_name: None,
                groups: Vec::new(),
                roles: Vec::new(),
                agent: None,
                raw_claims: serde_json::Map::new(),
            },
        }
    }

    /// The object id (`oid`, else `sub`).
    pub fn id(&self) -> &str {
        &self.inner.id
    }
    /// The tenant (`tid`).
    pub fn tenant_id(&self) -> &str {
        &self.inner.tenant_id
    }
    /// The client application (`appid` in v1, `azp` in v2 tokens).
    pub fn app_id(&self) -> Option<&str> {
        self.inner.app_id.as_deref()
    }
    /// Application, managed identity or user.
    pub fn kind(&self) -> PrincipalKind {
        self.inner.kind
    }
    /// A human-readable name, where the token carried one.
    pub fn display_name(&self) -> Option<&str> {
        self.inner.display_name.as_deref()
    }
    /// Group object ids (resolved through Graph on overage).
    pub fn groups(&self) -> &[String] {
        &self.inner.groups
    }
    /// App roles (`roles` claim).
    pub fn roles(&self) -> &[String] {
        &self.inner.roles
    }
    /// The AI agent behind the request, for the three agent kinds.
    pub fn agent(&self) -> Option<&Agent> {
        self.inner.agent.as_ref()
    }
    /// For an agent acting for a user: that user, as a plain
    /// [`PrincipalKind::User`] (same id, groups and roles, no agent). Policy
    /// decides for both and grants only what both are granted.
    ///
    /// ```
    /// use airlock_core::{Agent, Principal, PrincipalKind};
    /// let delegated = Principal::builder("alice-oid", PrincipalKind::AgentForUser)
    ///     .display_name("Alice")
    ///     .groups(["ops"])
    ///     .agent(Agent::new("agent-app").name("release-bot"))
    ///     .build();
    /// assert_eq!(delegated.to_string(), "agent release-bot acting for Alice (user alice-oid)");
    /// let alice = delegated.acting_user().unwrap();
    /// assert_eq!((alice.kind(), alice.id(), alice.agent()), (PrincipalKind::User, "alice-oid", None));
    /// assert!(alice.in_group("ops"));
    /// ```
    pub fn acting_user(&self) -> Option<Principal> {
        if self.inner.kind != PrincipalKind::AgentForUser {
            return None;
        }
        let inner = &self.inner;
        Some(Principal {
            inner: Arc::new(PrincipalInner {
                id: inner.id.clone(),
                tenant_id: inner.tenant_id.clone(),
                app_id: inner.app_id.clone(),
                kind: PrincipalKind::User,
                display_name: inner.display_name.clone(),
                groups: inner.groups.clone(),
                roles: inner.roles.clone(),
                agent: None,
                raw_claims: serde_json::Map::new(),
            }),
        })
    }
    /// All claims of the verified token, for custom engines.
    pub fn raw_claims(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.inner.raw_claims
    }
    /// Whether the principal is a member of `group` (exact, case-insensitive: ids are GUIDs).
    pub fn in_group(&self, group: &str) -> bool {
        self.inner
            .groups
            .iter()
            .any(|g| g.eq_ignore_ascii_case(group))
    }
    /// Whether the principal holds app role `role` (exact match, as Entra compares roles).
    pub fn has_role(&self, role: &str) -> bool {
        self.inner.roles.iter().any(|r| r == role)
    }
}

impl fmt::Debug for Principal {
    // Raw claims are left out on purpose: they can be large and are never needed in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("id", &self.inner.id)
            .field("tenant_id", &self.inner.tenant_id)
            .field("app_id", &self.inner.app_id)
            .field("kind", &self.inner.kind)
            .field("display_name", &self.inner.display_name)
            .field("groups", &self.inner.groups.len())
            .field("roles", &self.inner.roles)
            .field("agent", &self.inner.agent)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        let (kind, agent) = match (&inner.agent, inner.kind) {
            (Some(agent), PrincipalKind::AgentForUser) => {
                write!(f, "agent {agent} acting for ")?;
                (PrincipalKind::User, None)
            }
            (agent, kind) => (kind, agent.as_ref().and_then(Agent::blueprint_id)),
        };
        match &inner.display_name {
            Some(name) => write!(f, "{name} ({kind} {}", inner.id)?,
            None => write!(f, "{kind} {}", inner.id)?,
        }
        if let Some(blueprint) = agent {
            write!(f, ", blueprint {blueprint}")?;
        }
        if inner.display_name.is_some() {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// Builds a [`Principal`]; see [`Principal::builder`].
#[derive(Debug)]
pub struct PrincipalBuilder {
    inner: PrincipalInner,
}

impl fmt::Debug for PrincipalInner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrincipalInner")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl PrincipalBuilder {
    /// Sets the tenant id (`tid`).
    #[must_use]
    pub fn tenant_id(mut self, tenant_id: impl Into<String>) -> Self {
        self.inner.tenant_id = tenant_id.into();
        self
    }
    /// Sets the client application id.
    #[must_use]
    pub fn app_id(mut self, app_id: impl Into<String>) -> Self {
        self.inner.app_id = Some(app_id.into());
        self
    }
    /// Sets the display name.
    #[must_use]
    pub fn display_name(mut self, name: impl Into<String>) -> Self {
        self.inner.display_name = Some(name.into());
        self
    }
    /// Sets the group ids.
    #[must_use]
    pub fn groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.inner.groups = groups.into_iter().map(Into::into).collect();
        self
    }
    /// Sets the app roles.
    #[must_use]
    pub fn roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.inner.roles = roles.into_iter().map(Into::into).collect();
        self
    }
    /// Sets the agent behind it (for the agent kinds).
    #[must_use]
    pub fn agent(mut self, agent: Agent) -> Self {
        self.inner.agent = Some(agent);
        self
    }
    /// Keeps the token's claims for custom engines.
    #[must_use]
    pub fn raw_claims(mut self, claims: serde_json::Map<String, serde_json::Value>) -> Self {
        self.inner.raw_claims = claims;
        self
    }
    /// Finishes the principal.
    pub fn build(self) -> Principal {
        Principal {
            inner: Arc::new(self.inner),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_match_ignores_case_but_roles_do_not() {
        let p = Principal::builder("oid", PrincipalKind::User)
            .groups(["ABCD-ef"])
            .roles(["Reader"])
            .build();
        assert!(p.in_group("abcd-EF"));
        assert!(!p.in_group("abcd"));
        assert!(p.has_role("Reader"));
        assert!(!p.has_role("reader"));
    }

    #[test]
    fn clones_share_claims() {
        let p = Principal::builder("oid", PrincipalKind::Application).build();
        let q = p.clone();
        assert!(Arc::ptr_eq(&p.inner, &q.inner));
        assert_eq!(q.to_string(), "application oid");
    }
}
