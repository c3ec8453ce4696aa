//! What a development token says: the principal and the token's shape.

use std::time::Duration;

use airlock_core::PrincipalKind;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::{RESOURCE_GROUP, SUBSCRIPTION_ID};

/// The object id of the agents' group, carried by [`TokenSpec::agent`].
pub const AGENTS_GROUP: &str = "00000000-0000-0000-0000-0000000000c1";
/// The object id of the approvers' group, carried by [`TokenSpec::approver`].
pub const APPROVERS_GROUP: &str = "00000000-0000-0000-0000-0000000000c2";

/// Entra ID's two access-token formats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TokenVersion {
    /// `ver: "1.0"`: `iss` is `https://sts.windows.net/{tid}/`, the client is `appid`.
    V1,
    /// `ver: "2.0"`: `iss` is the issuer's v2 URL, the client is `azp`.
    #[default]
    V2,
}

/// The principal and shape of a token to mint; see [`IssuerHandle::mint`](crate::IssuerHandle::mint).
///
/// Start from [`TokenSpec::agent`], [`TokenSpec::approver`] or
/// [`TokenSpec::application`] and adjust with the builder methods (or the
/// public fields):
///
/// ```
/// use airlock_sim::{TokenSpec, TokenVersion};
/// use std::time::Duration;
///
/// let expired = TokenSpec::agent().not_before_offset_secs(-7200).lifetime(Duration::from_secs(3600));
/// let v1 = TokenSpec::approver().version(TokenVersion::V1).claim("amr", serde_json::json!(["pwd", "mfa"]));
/// let no_oid = TokenSpec::application("ci", "oid-1", "app-1").without_claim("oid");
/// # let _ = (expired, v1, no_oid);
/// ```
#[derive(Clone, Debug)]
pub struct TokenSpec {
    /// Display name: `name` in user tokens, the identity's name in `xms_mirid`.
    pub name: String,
    /// `oid`.
    pub object_id: String,
    /// Application, managed identity or user.
    pub kind: PrincipalKind,
    /// The client application: `azp` (v2) or `appid` (v1).
    pub app_id: String,
    /// `preferred_username` (v2) or `upn`/`unique_name` (v1), users only.
    pub username: Option<String>,
    /// `scp`, the delegated scopes (users only).
    pub scope: Option<String>,
    /// `xms_mirid` (managed identities only).
    pub managed_identity_resource_id: Option<String>,
    /// `xms_par_app_azp`, the agent identity blueprint (agent kinds only).
    pub blueprint: Option<String>,
    /// The agent's name as `app_displayname` (agent kinds, v1 tokens only).
    pub agent_name: Option<String>,
    /// `groups`, omitted when empty.
    pub groups: Vec<String>,
    /// `roles` (app roles), omitted when empty.
    pub roles: Vec<String>,
    /// `aud`; default `api://airlock`.
    pub audience: String,
    /// v1 or v2 (default).
    pub version: TokenVersion,
    /// `exp - nbf`; default one hour.
    pub lifetime: Duration,
    /// `iat` and `nbf` relative to now, in seconds (negative: in the past); default 0.
    pub not_before_offset_secs: i64,
    /// `tid` (and the tenant in `iss`) instead of the issuer's own tenant.
    pub tenant_id: Option<String>,
    /// Claims merged last, overwriting any minted claim; a `null` value removes the claim.
    pub extra_claims: Map<String, Value>,
}

impl TokenSpec {
    /// A principal with no groups, roles or scopes, and default token shape.
    pub fn new(
        name: impl Into<String>,
        object_id: impl Into<String>,
        kind: PrincipalKind,
        app_id: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            object_id: object_id.into(),
            kind,
            app_id: app_id.into(),
            username: None,
            scope: None,
            managed_identity_resource_id: None,
            blueprint: None,
            agent_name: None,
            groups: Vec::new(),
            roles: Vec::new(),
            audience: "api://airlock".to_owned(),
            version: TokenVersion::V2,
            lifetime: Duration::from_secs(3600),
            not_before_offset_secs: 0,
            tenant_id: None,
            extra_claims: Map::new(),
        }
    }

    /// The demo agent: the user-assigned managed identity `build-agent` in the agents group.
    pub fn agent() -> Self {
        let mut spec = Self::new(
            "build-agent",
            "00000000-0000-0000-0000-0000000000a1",
            PrincipalKind::ManagedIdentity,
            "00000000-0000-0000-0000-0000000000a2",
        );
        spec.managed_identity_resource_id = Some(format!(
            "/subscriptions/{SUBSCRIPTION_ID}/resourcegroups/{RESOURCE_GROUP}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/build-agent"
        ));
        spec.groups = vec![AGENTS_GROUP.to_owned()];
        spec
    }

    /// The demo approver: the user `alice@contoso.example` in the approvers group,
    /// signed in through a client app with the `user_impersonation` scope.
    pub fn approver() -> Self {
        let mut spec = Self::new(
            "Alice Approver",
            "00000000-0000-0000-0000-0000000000b1",
            PrincipalKind::User,
            "00000000-0000-0000-0000-0000000000b2",
        );
        spec.username = Some("alice@contoso.example".to_owned());
        spec.scope = Some("user_impersonation".to_owned());
        spec.groups = vec![APPROVERS_GROUP.to_owned()];
        spec
    }

    /// A service principal acting as itself (client credentials): app-only, no `scp`.
    pub fn application(
        name: impl Into<String>,
        object_id: impl Into<String>,
        app_id: impl Into<String>,
    ) -> Self {
        Self::new(name, object_id, PrincipalKind::Application, app_id)
    }

    /// An Entra Agent ID agent identity acting alone: an app-only token
    /// whose actor and subject facets say agent (`xms_act_fct`/`xms_sub_fct` `11`).
    pub fn agent_identity(
        name: impl Into<String>,
        object_id: impl Into<String>,
        app_id: impl Into<String>,
    ) -> Self {
        let name = name.into();
        let mut spec = Self::new(name.clone(), object_id, PrincipalKind::Agent, app_id);
        spec.agent_name = Some(name);
        spec
    }

    /// The agent `agent_app_id` acting for `user` (Entra's on-behalf-of
    /// flow): the user's token, with the agent as client and actor facet `11`.
    ///
    /// ```
    /// use airlock_sim::TokenSpec;
    /// let for_alice = TokenSpec::agent_for_user(TokenSpec::approver(), "agent-app").blueprint("bp-app");
    /// assert_eq!((for_alice.object_id.as_str(), for_alice.app_id.as_str()), ("00000000-0000-0000-0000-0000000000b1", "agent-app"));
    /// ```
    pub fn agent_for_user(user: TokenSpec, agent_app_id: impl Into<String>) -> Self {
        Self {
            kind: PrincipalKind::AgentForUser,
            app_id: agent_app_id.into(),
            scope: user
                .scope
                .clone()
                .or_else(|| Some("user_impersonation".to_owned())),
            ..user
        }
    }

    /// An agent user: a user account driven by the agent `agent_app_id`
    /// (subject facet `13`).
    pub fn agent_user(
        name: impl Into<String>,
        object_id: impl Into<String>,
        agent_app_id: impl Into<String>,
    ) -> Self {
        let mut spec = Self::new(name, object_id, PrincipalKind::AgentUser, agent_app_id);
        spec.scope = Some("user_impersonation".to_owned());
        spec
    }

    /// Sets the agent identity blueprint's app id (`xms_par_app_azp`).
    #[must_use]
    pub fn blueprint(mut self, blueprint: impl Into<String>) -> Self {
        self.blueprint = Some(blueprint.into());
        self
    }

    /// Sets the display name.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
    /// Sets `oid`.
    #[must_use]
    pub fn object_id(mut self, object_id: impl Into<String>) -> Self {
        self.object_id = object_id.into();
        self
    }
    /// Sets the kind of principal.
    #[must_use]
    pub fn kind(mut self, kind: PrincipalKind) -> Self {
        self.kind = kind;
        self
    }
    /// Sets the client application id.
    #[must_use]
    pub fn app_id(mut self, app_id: impl Into<String>) -> Self {
        self.app_id = app_id.into();
        self
    }
    /// Sets the user name (users only).
    #[must_use]
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }
    /// Sets `scp` (users only).
    #[must_use]
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }
    /// Sets the group ids.
    #[must_use]
    pub fn groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }
    /// Sets the app roles.
    #[must_use]
    pub fn roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }
    /// Sets `aud`.
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = audience.into();
        self
    }
    /// Sets the token version.
    #[must_use]
    pub fn version(mut self, version: TokenVersion) -> Self {
        self.version = version;
        self
    }
    /// Sets `exp - nbf`.
    #[must_use]
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }
    /// Moves `iat`/`nbf` (and so `exp`) by `offset` seconds from now.
    #[must_use]
    pub fn not_before_offset_secs(mut self, offset: i64) -> Self {
        self.not_before_offset_secs = offset;
        self
    }
    /// Mints for another tenant (`tid` and the tenant in `iss`).
    #[must_use]
    pub fn tenant_id(mut self, tenant_id: impl Into<String>) -> Self {
        self.tenant_id = Some(tenant_id.into());
        self
    }
    /// Sets (or overwrites) one claim, after every minted claim.
    #[must_use]
    pub fn claim(mut self, name: impl Into<String>, value: Value) -> Self {
        self.extra_claims.insert(name.into(), value);
        self
    }
    /// Removes one claim from the minted token.
    #[must_use]
    pub fn without_claim(self, name: impl Into<String>) -> Self {
        self.claim(name, Value::Null)
    }

    /// The claims, Entra-shaped. `issuer_base` is `http://127.0.0.1:PORT`.
    pub(crate) fn claims(
        &self,
        issuer_base: &str,
        issuer_tenant: &str,
        now: i64,
    ) -> Map<String, Value> {
        let tenant = self.tenant_id.as_deref().unwrap_or(issuer_tenant);
        let not_before = now.saturating_add(self.not_before_offset_secs);
        let lifetime = i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX);
        let is_user = self.kind.is_user();
        let mut claims = Map::new();
        let mut set = |name: &str, value: Value| {
            claims.insert(name.to_owned(), value);
        };
        set("aud", json!(self.audience));
        set("iat", json!(not_before));
        set("nbf", json!(not_before));
        set("exp", json!(not_before.saturating_add(lifetime)));
        set("tid", json!(tenant));
        set("oid", json!(self.object_id));
        set(
            "sub",
            json!(if is_user {
                pairwise_subject(&self.object_id, &self.app_id)
            } else {
                self.object_id.clone()
            }),
        );
        set(
            "uti",
            json!(URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())),
        );
        set("idtyp", json!(if is_user { "user" } else { "app" }));
        // 0: public client (a user signing in), 1: client secret, 2: certificate or managed identity.
        let client_auth = match self.kind {
            PrincipalKind::User => "0",
            PrincipalKind::Application => "1",
            // Agent identities sign in with their blueprint's federated credential.
            PrincipalKind::ManagedIdentity
            | PrincipalKind::Agent
            | PrincipalKind::AgentForUser
            | PrincipalKind::AgentUser => "2",
        };
        match self.version {
            TokenVersion::V2 => {
                set("iss", json!(format!("{issuer_base}/{tenant}/v2.0")));
                set("ver", json!("2.0"));
                set("azp", json!(self.app_id));
                set("azpacr", json!(client_auth));
            }
            TokenVersion::V1 => {
                set("iss", json!(format!("https://sts.windows.net/{tenant}/")));
                set("ver", json!("1.0"));
                set("appid", json!(self.app_id));
                set("appidacr", json!(client_auth));
                if !is_user {
                    set("idp", json!(format!("https://sts.windows.net/{tenant}/")));
                }
            }
        }
        if is_user {
            set("name", json!(self.name));
            if let Some(username) = &self.username {
                match self.version {
                    TokenVersion::V2 => set("preferred_username", json!(username)),
                    TokenVersion::V1 => {
                        set("upn", json!(username));
                        set("unique_name", json!(username));
                    }
                }
            }
            if let Some(scope) = &self.scope {
                set("scp", json!(scope));
            }
        }
        if self.kind == PrincipalKind::ManagedIdentity
            && let Some(id) = &self.managed_identity_resource_id
        {
            set("xms_mirid", json!(id));
        }
        match self.kind {
            PrincipalKind::Agent => {
                set("xms_act_fct", json!("11"));
                set("xms_sub_fct", json!("11"));
            }
            PrincipalKind::AgentForUser => set("xms_act_fct", json!("11")),
            PrincipalKind::AgentUser => {
                set("xms_act_fct", json!("11"));
                set("xms_sub_fct", json!("13"));
            }
            _ => {}
        }
        if self.kind.is_agent() {
            if let Some(blueprint) = &self.blueprint {
                set("xms_par_app_azp", json!(blueprint));
            }
            if let (TokenVersion::V1, Some(name)) = (self.version, &self.agent_name) {
                set("app_displayname", json!(name));
            }
        }
        if !self.groups.is_empty() {
            set("groups", json!(self.groups));
        }
        if !self.roles.is_empty() {
            set("roles", json!(self.roles));
        }
        for (name, value) in &self.extra_claims {
            if value.is_null() {
                claims.remove(name);
            } else {
                claims.insert(name.clone(), value.clone());
            }
        }
        claims
    }
}

/// Entra's `sub` for users is pairwise: stable per user and client application.
fn pairwise_subject(object_id: &str, app_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(format!("{object_id}:{app_id}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "http://127.0.0.1:1";

    #[test]
    fn agent_v2_claims() {
        let claims = TokenSpec::agent().claims(BASE, "tid-1", 1000);
        assert_eq!(claims["iss"], "http://127.0.0.1:1/tid-1/v2.0");
        assert_eq!(claims["ver"], "2.0");
        assert_eq!(claims["aud"], "api://airlock");
        assert_eq!(claims["sub"], claims["oid"]);
        assert_eq!(claims["azp"], "00000000-0000-0000-0000-0000000000a2");
        assert_eq!(claims["idtyp"], "app");
        assert_eq!(claims["groups"], json!([AGENTS_GROUP]));
        assert_eq!(
            (claims["nbf"].as_i64(), claims["exp"].as_i64()),
            (Some(1000), Some(4600))
        );
        assert!(
            claims["xms_mirid"]
                .as_str()
                .unwrap_or_default()
                .ends_with("/userAssignedIdentities/build-agent")
        );
        for absent in ["scp", "roles", "name", "appid"] {
            assert!(!claims.contains_key(absent), "{absent}");
        }
    }

    #[test]
    fn approver_v1_claims_and_overrides() {
        let spec = TokenSpec::approver()
            .version(TokenVersion::V1)
            .tenant_id("other")
            .without_claim("scp")
            .claim("x", json!(1));
        let claims = spec.claims(BASE, "tid-1", 0);
        assert_eq!(claims["iss"], "https://sts.windows.net/other/");
        assert_eq!(claims["tid"], "other");
        assert_eq!(claims["ver"], "1.0");
        assert_eq!(claims["appid"], "00000000-0000-0000-0000-0000000000b2");
        assert_eq!(claims["upn"], "alice@contoso.example");
        assert_ne!(claims["sub"], claims["oid"]);
        assert_eq!(claims["x"], 1);
        assert!(!claims.contains_key("scp") && !claims.contains_key("azp"));
    }
}
