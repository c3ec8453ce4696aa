//! From verified claims to a [`Principal`]: v1 and v2 Entra tokens, managed
//! identities, Entra Agent ID's agents, app roles, groups, and group overage.

use airlock_core::{Agent, Principal, PrincipalBuilder, PrincipalKind};
use serde_json::{Map, Value};

use crate::AuthError;

/// A principal whose groups may still need resolving.
pub(crate) struct Mapped {
    pub(crate) builder: PrincipalBuilder,
    pub(crate) tenant_id: String,
    pub(crate) object_id: String,
    /// The token's groups did not fit (`_claim_names.groups` or `hasgroups`).
    pub(crate) overage: bool,
}

impl Mapped {
    /// The principal with the groups the token carried.
    pub(crate) fn build(self) -> Principal {
        self.builder.build()
    }
}

fn string<'c>(claims: &'c Map<String, Value>, name: &str) -> Option<&'c str> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn strings(claims: &Map<String, Value>, name: &'static str) -> Result<Vec<String>, AuthError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or(AuthError::MissingClaim(name))
            })
            .collect(),
        Some(_) => Err(AuthError::MissingClaim(name)),
    }
}

/// Entra Agent ID's facet values that matter here (`xms_act_fct`, `xms_sub_fct`).
const AGENT_IDENTITY: &str = "11";
const AGENT_USER: &str = "13";

/// A facet claim: a string of space-separated integers in any order.
/// Absent is empty; unknown values are kept but mean nothing here.
fn facets<'c>(
    claims: &'c Map<String, Value>,
    name: &'static str,
) -> Result<Vec<&'c str>, AuthError> {
    let bad = |problem| AuthError::BadClaim {
        claim: name,
        problem,
    };
    match claims.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(text)) => {
            let values: Vec<&str> = text.split_ascii_whitespace().collect();
            if values
                .iter()
                .all(|v| v.len() <= 9 && v.bytes().all(|b| b.is_ascii_digit()))
            {
                Ok(values)
            } else {
                Err(bad("expected space-separated integers such as \"11\""))
            }
        }
        Some(_) => Err(bad("expected a string of space-separated integers")),
    }
}

/// The agent kind the facets say, if any: `user_token` is whether the token
/// was issued to a user (`idtyp`/`scp`). Combinations Entra does not issue
/// are refused rather than guessed.
fn agent_kind(
    claims: &Map<String, Value>,
    user_token: bool,
    managed_identity: bool,
) -> Result<Option<PrincipalKind>, AuthError> {
    let actor = facets(claims, "xms_act_fct")?;
    let subject = facets(claims, "xms_sub_fct")?;
    let agent_actor = actor.contains(&AGENT_IDENTITY);
    let agent_subject = subject.contains(&AGENT_IDENTITY);
    let agent_user = subject.contains(&AGENT_USER);
    let contradiction = |claim, problem| Err(AuthError::BadClaim { claim, problem });
    if !(agent_actor || agent_subject || agent_user) {
        return Ok(None);
    }
    if managed_identity {
        return contradiction(
            "xms_act_fct",
            "agent facets on a managed identity's token (xms_mirid)",
        );
    }
    match (user_token, agent_user, agent_subject) {
        (false, true, _) => contradiction("xms_sub_fct", "an agent user (13) on an app-only token"),
        (true, true, true) => contradiction(
            "xms_sub_fct",
            "both agent identity (11) and agent user (13)",
        ),
        (true, true, false) => Ok(Some(PrincipalKind::AgentUser)),
        (true, false, true) => contradiction(
            "xms_sub_fct",
            "a user token whose subject is an agent identity (11) but not an agent user (13)",
        ),
        (true, false, false) => Ok(Some(PrincipalKind::AgentForUser)),
        (false, false, _) => Ok(Some(PrincipalKind::Agent)),
    }
}

/// Maps verified claims. `tid` has already been checked by the caller.
///
/// - id: `oid`, else `sub` (tokens from non-Entra OIDC providers);
/// - client: `azp` (v2) or `appid` (v1);
/// - kind: Entra Agent ID's facets first (§5b of AZURE.md: actor facet 11
///   on an app-only token → agent; on a user's token → agent for that user;
///   subject facet 13 → agent user), then `xms_mirid` → managed identity;
///   `idtyp` `app`/`user`; else a token with `scp` is a user's, one without
///   is an application's;
/// - agent: the client (`azp`/`appid`), named by `app_displayname`, with the
///   blueprint from `xms_par_app_azp`;
/// - display name: `name`, `app_displayname`, the managed identity's name
///   (last segment of `xms_mirid`), `preferred_username`, `upn`.
pub(crate) fn map_claims(claims: Map<String, Value>) -> Result<Mapped, AuthError> {
    let object_id = string(&claims, "oid")
        .or_else(|| string(&claims, "sub"))
        .ok_or(AuthError::MissingClaim("oid"))?
        .to_owned();
    let tenant_id = string(&claims, "tid").unwrap_or_default().to_owned();
    let app_id = string(&claims, "azp").or_else(|| string(&claims, "appid"));
    let managed_identity = string(&claims, "xms_mirid");
    let user_token = match string(&claims, "idtyp") {
        Some("app") => false,
        Some("user") => true,
        _ => claims.contains_key("scp"),
    };
    let agent_kind = agent_kind(&claims, user_token, managed_identity.is_some())?;
    let kind = match agent_kind {
        Some(kind) => kind,
        None if managed_identity.is_some() => PrincipalKind::ManagedIdentity,
        None if user_token => PrincipalKind::User,
        None => PrincipalKind::Application,
    };
    let agent = match agent_kind {
        None => None,
        Some(_) => {
            let app_id = app_id.ok_or(AuthError::MissingClaim("azp"))?;
            let mut agent = Agent::new(app_id);
            if let Some(name) = string(&claims, "app_displayname") {
                agent = agent.name(name);
            }
            match claims.get("xms_par_app_azp") {
                None | Some(Value::Null) => {}
                Some(Value::String(blueprint)) if !blueprint.is_empty() => {
                    agent = agent.blueprint(blueprint.as_str());
                }
                Some(_) => {
                    return Err(AuthError::BadClaim {
                        claim: "xms_par_app_azp",
                        problem: "expected the blueprint's app id as a string",
                    });
                }
            }
            Some(agent)
        }
    };
    let display_name = string(&claims, "name")
        .or_else(|| string(&claims, "app_displayname"))
        .or_else(|| {
            managed_identity
                .and_then(|id| id.rsplit('/').next())
                .filter(|n| !n.is_empty())
        })
        .or_else(|| string(&claims, "preferred_username"))
        .or_else(|| string(&claims, "upn"));
    let overage = claims
        .get("_claim_names")
        .and_then(Value::as_object)
        .is_some_and(|names| names.contains_key("groups"))
        || claims.get("hasgroups").and_then(Value::as_bool) == Some(true);
    let groups = strings(&claims, "groups")?;
    let roles = strings(&claims, "roles")?;

    let mut builder = Principal::builder(object_id.clone(), kind)
        .tenant_id(tenant_id.clone())
        .groups(groups)
        .roles(roles);
    if let Some(app_id) = app_id {
        builder = builder.app_id(app_id);
    }
    if let Some(name) = display_name {
        builder = builder.display_name(name);
    }
    if let Some(agent) = agent {
        builder = builder.agent(agent);
    }
    Ok(Mapped {
        builder: builder.raw_claims(claims),
        tenant_id,
        object_id,
        overage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(claims: Value) -> Result<Mapped, AuthError> {
        let Value::Object(claims) = claims else {
            unreachable!()
        };
        map_claims(claims)
    }

    #[test]
    fn managed_identity_v2() {
        let mapped = map(json!({
            "oid": "o1", "sub": "o1", "tid": "t1", "azp": "a1", "idtyp": "app",
            "xms_mirid": "/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/build-agent",
            "groups": ["g1"], "roles": ["Reader"]
        }))
        .unwrap();
        assert!(!mapped.overage);
        let p = mapped.build();
        assert_eq!(
            (p.id(), p.tenant_id(), p.app_id()),
            ("o1", "t1", Some("a1"))
        );
        assert_eq!(p.kind(), PrincipalKind::ManagedIdentity);
        assert_eq!(p.display_name(), Some("build-agent"));
        assert_eq!(
            (p.groups(), p.roles()),
            (&["g1".to_owned()][..], &["Reader".to_owned()][..])
        );
    }

    #[test]
    fn user_v1_and_application_without_idtyp() {
        let user = map(json!({"oid": "u", "tid": "t", "appid": "c", "scp": "user_impersonation", "name": "Alice"})).unwrap().build();
        assert_eq!(
            (user.kind(), user.app_id(), user.display_name()),
            (PrincipalKind::User, Some("c"), Some("Alice"))
        );
        let app = map(json!({"oid": "a", "tid": "t", "appid": "c", "app_displayname": "ci"}))
            .unwrap()
            .build();
        assert_eq!(
            (app.kind(), app.display_name()),
            (PrincipalKind::Application, Some("ci"))
        );
        let generic = map(json!({"sub": "s-1"})).unwrap().build();
        assert_eq!(generic.id(), "s-1");
    }

    /// Every token shape of Entra Agent ID (AZURE.md §5b), v1 and v2.
    #[test]
    fn agent_token_shapes() {
        use PrincipalKind::*;
        let bp = "b1";
        // (case, claims, kind, agent app id, blueprint)
        type Row = (
            &'static str,
            Value,
            PrincipalKind,
            Option<&'static str>,
            Option<&'static str>,
        );
        let table: [Row; 9] = [
            (
                "agent alone v2",
                json!({"oid": "ag", "azp": "ag-app", "idtyp": "app", "xms_act_fct": "11", "xms_sub_fct": "11", "xms_par_app_azp": bp}),
                Agent,
                Some("ag-app"),
                Some(bp),
            ),
            (
                "agent alone v1, facets reordered, unknown values",
                json!({"oid": "ag", "appid": "ag-app", "app_displayname": "bot", "xms_act_fct": "9 11 3", "xms_sub_fct": "3 11"}),
                Agent,
                Some("ag-app"),
                None,
            ),
            (
                "agent alone, subject facet only",
                json!({"oid": "ag", "azp": "ag-app", "idtyp": "app", "xms_sub_fct": "11"}),
                Agent,
                Some("ag-app"),
                None,
            ),
            (
                "agent for a user v2",
                json!({"oid": "alice", "azp": "ag-app", "idtyp": "user", "scp": "user_impersonation", "name": "Alice", "xms_act_fct": "3 11", "xms_par_app_azp": bp}),
                AgentForUser,
                Some("ag-app"),
                Some(bp),
            ),
            (
                "agent for a user v1 (scp, no idtyp)",
                json!({"oid": "alice", "appid": "ag-app", "scp": "user_impersonation", "xms_act_fct": "11"}),
                AgentForUser,
                Some("ag-app"),
                None,
            ),
            (
                "agent user",
                json!({"oid": "au", "azp": "ag-app", "idtyp": "user", "scp": "x", "xms_sub_fct": "13", "xms_act_fct": "11"}),
                AgentUser,
                Some("ag-app"),
                None,
            ),
            (
                "unknown facet values only",
                json!({"oid": "u", "azp": "c", "idtyp": "user", "xms_act_fct": "3 9", "xms_sub_fct": "1"}),
                User,
                None,
                None,
            ),
            (
                "blueprint without facets is not an agent",
                json!({"oid": "a", "azp": "c", "idtyp": "app", "xms_par_app_azp": bp}),
                Application,
                None,
                None,
            ),
            (
                "empty facets",
                json!({"oid": "m", "azp": "c", "xms_mirid": "/x/mi", "xms_act_fct": ""}),
                ManagedIdentity,
                None,
                None,
            ),
        ];
        for (case, claims, kind, agent, blueprint) in table {
            let p = map(claims)
                .unwrap_or_else(|e| panic!("{case}: {e}"))
                .build();
            assert_eq!(p.kind(), kind, "{case}");
            assert_eq!(p.agent().map(airlock_core::Agent::app_id), agent, "{case}");
            assert_eq!(
                p.agent().and_then(|a| a.blueprint_id()),
                blueprint,
                "{case}"
            );
        }
        let bot = map(json!({"oid": "alice", "azp": "ag-app", "app_displayname": "bot", "idtyp": "user", "name": "Alice", "xms_act_fct": "11", "xms_par_app_azp": bp, "groups": ["ops"]})).unwrap().build();
        assert_eq!(
            bot.to_string(),
            "agent bot (blueprint b1) acting for Alice (user alice)"
        );
        assert_eq!(bot.acting_user().unwrap().to_string(), "Alice (user alice)");
    }

    #[test]
    fn malformed_agent_facets_are_refused() {
        let bad = |claims: Value| match map(claims) {
            Err(AuthError::BadClaim { claim, .. }) => claim,
            other => panic!("expected BadClaim, got {:?}", other.map(Mapped::build)),
        };
        assert_eq!(
            bad(json!({"oid": "a", "azp": "c", "xms_act_fct": 11})),
            "xms_act_fct"
        );
        assert_eq!(
            bad(json!({"oid": "a", "azp": "c", "xms_act_fct": ["11"]})),
            "xms_act_fct"
        );
        assert_eq!(
            bad(json!({"oid": "a", "azp": "c", "xms_sub_fct": "11,13"})),
            "xms_sub_fct"
        );
        assert_eq!(
            bad(json!({"oid": "a", "azp": "c", "xms_sub_fct": "eleven"})),
            "xms_sub_fct"
        );
        // Contradictions Entra does not issue.
        assert_eq!(
            bad(json!({"oid": "a", "azp": "c", "idtyp": "app", "xms_sub_fct": "13"})),
            "xms_sub_fct"
        );
        assert_eq!(
            bad(json!({"oid": "a", "azp": "c", "idtyp": "user", "xms_sub_fct": "11"})),
            "xms_sub_fct"
        );
        assert_eq!(
            bad(json!({"oid": "a", "azp": "c", "idtyp": "user", "xms_sub_fct": "11 13"})),
            "xms_sub_fct"
        );
        assert_eq!(
            bad(json!({"oid": "a", "azp": "c", "xms_mirid": "/x", "xms_act_fct": "11"})),
            "xms_act_fct"
        );
        assert_eq!(
            bad(
                json!({"oid": "a", "azp": "c", "idtyp": "app", "xms_act_fct": "11", "xms_par_app_azp": 7})
            ),
            "xms_par_app_azp"
        );
        // An agent must name its app.
        assert_eq!(
            map(json!({"oid": "a", "idtyp": "app", "xms_act_fct": "11"})).err(),
            Some(AuthError::MissingClaim("azp"))
        );
        let message = map(json!({"oid": "a", "xms_act_fct": "x"}))
            .err()
            .unwrap()
            .to_string();
        assert!(
            message.contains("'xms_act_fct'") && message.contains("space-separated integers"),
            "{message}"
        );
    }

    #[test]
    fn overage_and_bad_claims() {
        let names = map(json!({"oid": "u", "_claim_names": {"groups": "src1"}, "_claim_sources": {"src1": {"endpoint": "https://graph"}}})).unwrap();
        assert!(names.overage);
        assert!(map(json!({"oid": "u", "hasgroups": true})).unwrap().overage);
        assert_eq!(
            map(json!({"tid": "t"})).err(),
            Some(AuthError::MissingClaim("oid"))
        );
        assert_eq!(
            map(json!({"oid": "u", "groups": "g1"})).err(),
            Some(AuthError::MissingClaim("groups"))
        );
        assert_eq!(
            map(json!({"oid": "u", "roles": [1]})).err(),
            Some(AuthError::MissingClaim("roles"))
        );
    }
}
