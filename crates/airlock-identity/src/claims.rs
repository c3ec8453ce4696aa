//! From verified claims to a [`Principal`]: v1 and v2 Entra tokens, managed
//! identities, app roles, groups, and group overage.

use airlock_core::{Principal, PrincipalBuilder, PrincipalKind};
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

/// Maps verified claims. `tid` has already been checked by the caller.
///
/// - id: `oid`, else `sub` (tokens from non-Entra OIDC providers);
/// - client: `azp` (v2) or `appid` (v1);
/// - kind: `xms_mirid` → managed identity; `idtyp` `app`/`user`; else a
///   token with `scp` is a user's, one without is an application's;
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
    let kind = if managed_identity.is_some() {
        PrincipalKind::ManagedIdentity
    } else {
        match string(&claims, "idtyp") {
            Some("app") => PrincipalKind::Application,
            Some("user") => PrincipalKind::User,
            _ if claims.contains_key("scp") => PrincipalKind::User,
            _ => PrincipalKind::Application,
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
