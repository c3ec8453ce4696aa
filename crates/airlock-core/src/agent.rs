//! The AI agent behind a request (Microsoft Entra Agent ID).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The agent identity behind a [`Principal`](crate::Principal) whose token
/// carries Entra Agent ID's facet claims (`xms_act_fct`, `xms_sub_fct`).
///
/// Its [`PrincipalKind`](crate::PrincipalKind) says how the agent acts:
/// alone ([`Agent`](crate::PrincipalKind::Agent)), for a user
/// ([`AgentForUser`](crate::PrincipalKind::AgentForUser): the principal is
/// that user, the agent is the client application), or as an agent user
/// ([`AgentUser`](crate::PrincipalKind::AgentUser)).
///
/// ```
/// use airlock_core::Agent;
///
/// let agent = Agent::new("7d1c0000-0000-0000-0000-0000000000c2")
///     .name("release-bot")
///     .blueprint("b1000000-0000-0000-0000-0000000000b1");
/// assert_eq!(agent.to_string(), "release-bot (blueprint b1000000-0000-0000-0000-0000000000b1)");
/// // As the audit trail and the approval API keep it:
/// assert_eq!(
///     serde_json::to_value(&agent).unwrap()["blueprint"],
///     "b1000000-0000-0000-0000-0000000000b1"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Agent {
    app_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blueprint: Option<String>,
}

impl Agent {
    /// An agent identity by its application (client) id.
    pub fn new(app_id: impl Into<String>) -> Self {
        Self {
            app_id: app_id.into(),
            name: None,
            blueprint: None,
        }
    }
    /// Sets the agent's display name (`app_displayname`, where the token has one).
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// Sets the agent identity blueprint's app id (`xms_par_app_azp`).
    #[must_use]
    pub fn blueprint(mut self, blueprint: impl Into<String>) -> Self {
        self.blueprint = Some(blueprint.into());
        self
    }
    /// The agent identity's application (client) id.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }
    /// Its display name, where the token carried one.
    pub fn display_name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    /// The blueprint it was made from: recorded and shown, but not a
    /// security boundary, so policy never authorizes on it alone.
    pub fn blueprint_id(&self) -> Option<&str> {
        self.blueprint.as_deref()
    }

    /// Who asked, in words, for a principal of `kind` named `subject` that
    /// this agent is behind: what the audit trail, approval pages, the CLI
    /// and notifications show.
    ///
    /// ```
    /// use airlock_core::{Agent, PrincipalKind};
    ///
    /// let bot = Agent::new("bot-app").name("release-bot").blueprint("b1");
    /// assert_eq!(
    ///     bot.describe(PrincipalKind::AgentForUser, "Alice"),
    ///     "agent release-bot (blueprint b1) acting for Alice"
    /// );
    /// assert_eq!(bot.describe(PrincipalKind::Agent, "release-bot"), "agent release-bot (blueprint b1)");
    /// assert_eq!(
    ///     bot.describe(PrincipalKind::AgentUser, "bot-mailbox"),
    ///     "agent user bot-mailbox of release-bot (blueprint b1)"
    /// );
    /// ```
    pub fn describe(&self, kind: crate::PrincipalKind, subject: &str) -> String {
        match kind {
            crate::PrincipalKind::AgentForUser => format!("agent {self} acting for {subject}"),
            crate::PrincipalKind::AgentUser => format!("agent user {subject} of {self}"),
            _ => format!("agent {self}"),
        }
    }
}

impl fmt::Display for Agent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name.as_deref().unwrap_or(&self.app_id))?;
        if let Some(blueprint) = &self.blueprint {
            write!(f, " (blueprint {blueprint})")?;
        }
        Ok(())
    }
}

/// Who asked, in words, from what the audit trail and the approval API keep:
/// the subject's name, a kind's name (`agent_for_user`, …) and the agent, if
/// any; [`Agent::describe`] when an agent is behind it, else the name alone.
///
/// ```
/// use airlock_core::{Agent, describe_requester};
///
/// let bot = Agent::new("bot-app");
/// assert_eq!(describe_requester("Alice", Some("agent_for_user"), Some(&bot)), "agent bot-app acting for Alice");
/// assert_eq!(describe_requester("Alice", Some("user"), None), "Alice");
/// ```
pub fn describe_requester(subject: &str, kind: Option<&str>, agent: Option<&Agent>) -> String {
    match (agent, kind.and_then(crate::PrincipalKind::parse)) {
        (Some(agent), Some(kind)) => agent.describe(kind, subject),
        _ => subject.to_owned(),
    }
}
