//! [`ClaimMapping`]: how a token from an identity provider other than Entra
//! ID (a Kubernetes service-account issuer, GitHub Actions, any OIDC issuer)
//! becomes a [`Principal`](airlock_core::Principal).

use airlock_core::{Principal, PrincipalKind};
use serde_json::{Map, Value};

use crate::AuthError;
use crate::claims::Mapped;

/// Which claims name a non-Entra token's subject, and the namespace its
/// principal ids live in: `{namespace}:{id claim}`, so that no such
/// provider's subject can ever pass for an Entra object id (GUIDs) or for
/// another provider's subject. The principal is an
/// [`Application`](PrincipalKind::Application) (a workload).
///
/// ```
/// use airlock_identity::ClaimMapping;
///
/// let k8s = ClaimMapping::new("aks-prod").name_claim("sub").groups_claim("groups");
/// assert_eq!(k8s.namespace(), "aks-prod");
/// assert_eq!(k8s.principal_id("system:serviceaccount:agents:builder"), "aks-prod:system:serviceaccount:agents:builder");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimMapping {
    namespace: String,
    id: String,
    name: Option<String>,
    groups: Option<String>,
}

impl ClaimMapping {
    /// Principal ids `{namespace}:{sub}`, no name, no groups.
    pub fn new(namespace: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            id: "sub".into(),
            name: None,
            groups: None,
        }
    }
    /// The claim holding the subject (default `sub`).
    #[must_use]
    pub fn id_claim(mut self, claim: impl Into<String>) -> Self {
        self.id = claim.into();
        self
    }
    /// The claim holding a display name.
    #[must_use]
    pub fn name_claim(mut self, claim: impl Into<String>) -> Self {
        self.name = Some(claim.into());
        self
    }
    /// The claim holding groups: an array of strings, or one string.
    #[must_use]
    pub fn groups_claim(mut self, claim: impl Into<String>) -> Self {
        self.groups = Some(claim.into());
        self
    }
    /// The namespace principal ids are put in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }
    /// The principal id for subject `id`.
    pub fn principal_id(&self, id: &str) -> String {
        format!("{}:{id}", self.namespace)
    }

    /// Maps verified claims.
    pub(crate) fn map(&self, claims: Map<String, Value>) -> Result<Mapped, AuthError> {
        let missing = || AuthError::MappedClaimMissing {
            claim: self.id.clone(),
        };
        let subject = match claims.get(&self.id) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(missing()),
        };
        let object_id = self.principal_id(&subject);
        let mut builder = Principal::builder(object_id.clone(), PrincipalKind::Application);
        if let Some(name) = self
            .name
            .as_ref()
            .and_then(|c| claims.get(c))
            .and_then(Value::as_str)
        {
            builder = builder.display_name(name);
        }
        if let Some(claim) = &self.groups {
            let groups: Vec<String> = match claims.get(claim) {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::String(one)) => vec![one.clone()],
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<_>>()
                    .ok_or_else(|| AuthError::MappedClaimMalformed {
                        claim: claim.clone(),
                    })?,
                Some(_) => {
                    return Err(AuthError::MappedClaimMalformed {
                        claim: claim.clone(),
                    });
                }
            };
            builder = builder.groups(groups);
        }
        Ok(Mapped {
            builder: builder.raw_claims(claims),
            tenant_id: String::new(),
            object_id,
            overage: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(mapping: &ClaimMapping, claims: Value) -> Result<Principal, AuthError> {
        let Value::Object(claims) = claims else {
            unreachable!()
        };
        mapping.map(claims).map(Mapped::build)
    }

    #[test]
    fn subjects_are_namespaced_and_named_and_grouped_as_configured() {
        let github = ClaimMapping::new("github")
            .name_claim("repository")
            .groups_claim("repository_owner");
        let p = map(
            &github,
            json!({"sub": "repo:contoso/infra:ref:refs/heads/main", "repository": "contoso/infra", "repository_owner": "contoso"}),
        )
        .unwrap();
        assert_eq!(p.id(), "github:repo:contoso/infra:ref:refs/heads/main");
        assert_eq!(p.display_name(), Some("contoso/infra"));
        assert!(p.in_group("contoso"));
        assert_eq!(p.kind(), PrincipalKind::Application);

        let by_oid = ClaimMapping::new("k8s").id_claim("kubernetes_sub");
        assert!(matches!(
            map(&by_oid, json!({"sub": "x"})),
            Err(AuthError::MappedClaimMissing { claim }) if claim == "kubernetes_sub"
        ));
        let grouped = ClaimMapping::new("k8s").groups_claim("groups");
        assert!(matches!(
            map(&grouped, json!({"sub": "x", "groups": [1, 2]})),
            Err(AuthError::MappedClaimMalformed { claim }) if claim == "groups"
        ));
    }
}
