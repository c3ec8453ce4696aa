//! Least privilege from evidence: an Azure custom role covering exactly
//! the operations a principal was allowed and used, drafted from its
//! recorded requests (`airlock roles suggest`), and how a current role's
//! permissions were used.
//!
//! What is granted, and why:
//!
//! - every operation used, by its exact name, with how often and when last;
//! - wildcards only for management-plane reads: three or more distinct
//!   reads of one provider namespace become `{Namespace}/*/read`, which
//!   grants reads only. Writes, deletes, actions (`listKeys/action`) and
//!   data-plane operations are never collapsed;
//! - `AssignableScopes`: the narrowest scope every used ARM resource lies
//!   under, cut to a resource group or a subscription (custom roles are
//!   assignable there, not on single resources); one entry per
//!   subscription when they span several. Key Vault data operations name
//!   their vault but not its resource group (their scopes are
//!   `/providers/Microsoft.KeyVault/vaults/{vault}/…`), so they add no
//!   assignable scope: the report lists those vaults.
//!
//! Requests the classifier did not understand cannot be expressed as RBAC
//! operations: they are counted and never granted.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::SystemTime;

use airlock_core::{Operation, OperationPattern, Plane};
use serde::{Deserialize, Serialize};

/// How many distinct reads of one provider become `{Namespace}/*/read`.
pub const COLLAPSE_READS: usize = 3;

/// A role definition as `az role definition create --role-definition`
/// takes it (and as built-in roles are shown).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoleDefinition {
    /// The role's name.
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// Management-plane operations granted.
    #[serde(default)]
    pub actions: Vec<String>,
    /// Taken out of `actions`.
    #[serde(default)]
    pub not_actions: Vec<String>,
    /// Data-plane operations granted.
    #[serde(default)]
    pub data_actions: Vec<String>,
    /// Taken out of `data_actions`.
    #[serde(default)]
    pub not_data_actions: Vec<String>,
    /// Where it may be assigned.
    #[serde(default)]
    pub assignable_scopes: Vec<String>,
}

impl RoleDefinition {
    /// The body of ARM's `PUT {scope}/providers/Microsoft.Authorization/roleDefinitions/{id}`
    /// for this role, as `az role definition create` sends it.
    pub fn arm_body(&self) -> serde_json::Value {
        serde_json::json!({
            "properties": {
                "roleName": self.name,
                "description": self.description,
                "type": "CustomRole",
                "permissions": [{
                    "actions": self.actions,
                    "notActions": self.not_actions,
                    "dataActions": self.data_actions,
                    "notDataActions": self.not_data_actions,
                }],
                "assignableScopes": self.assignable_scopes,
            }
        })
    }

    /// A few built-in roles agents are commonly given, by name (any case),
    /// for `--against`: Owner, Contributor, Reader, Key Vault Secrets User,
    /// Key Vault Secrets Officer, Storage Blob Data Reader, Storage Blob
    /// Data Contributor. Others: pass their JSON (`az role definition list
    /// --name …`).
    pub fn builtin(name: &str) -> Option<Self> {
        let role = |name: &str, actions: &[&str], not_actions: &[&str], data: &[&str]| Self {
            name: name.to_owned(),
            description: format!("The built-in {name} role."),
            actions: actions.iter().map(|s| (*s).to_owned()).collect(),
            not_actions: not_actions.iter().map(|s| (*s).to_owned()).collect(),
            data_actions: data.iter().map(|s| (*s).to_owned()).collect(),
            not_data_actions: Vec::new(),
            assignable_scopes: vec!["/".to_owned()],
        };
        let found = match name.to_ascii_lowercase().as_str() {
            "owner" => role("Owner", &["*"], &[], &[]),
            "contributor" => role(
                "Contributor",
                &["*"],
                &[
                    "Microsoft.Authorization/*/Delete",
                    "Microsoft.Authorization/*/Write",
                    "Microsoft.Authorization/elevateAccess/Action",
                    "Microsoft.Blueprint/blueprintAssignments/write",
                    "Microsoft.Blueprint/blueprintAssignments/delete",
                    "Microsoft.Compute/galleries/share/action",
                    "Microsoft.Purview/consents/write",
                    "Microsoft.Purview/consents/delete",
                ],
                &[],
            ),
            "reader" => role("Reader", &["*/read"], &[], &[]),
            "key vault secrets user" => role(
                "Key Vault Secrets User",
                &[],
                &[],
                &[
                    "Microsoft.KeyVault/vaults/secrets/getSecret/action",
                    "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
                ],
            ),
            "key vault secrets officer" => role(
                "Key Vault Secrets Officer",
                &[
                    "Microsoft.Authorization/*/read",
                    "Microsoft.Insights/alertRules/*",
                    "Microsoft.Resources/deployments/*",
                    "Microsoft.Resources/subscriptions/resourceGroups/read",
                    "Microsoft.Support/*",
                    "Microsoft.KeyVault/checkNameAvailability/read",
                    "Microsoft.KeyVault/deletedVaults/read",
                    "Microsoft.KeyVault/locations/*/read",
                    "Microsoft.KeyVault/vaults/*/read",
                    "Microsoft.KeyVault/operations/read",
                ],
                &[],
                &["Microsoft.KeyVault/vaults/secrets/*"],
            ),
            "storage blob data reader" => role(
                "Storage Blob Data Reader",
                &[
                    "Microsoft.Storage/storageAccounts/blobServices/containers/read",
                    "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
                ],
                &[],
                &["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"],
            ),
            "storage blob data contributor" => role(
                "Storage Blob Data Contributor",
                &[
                    "Microsoft.Storage/storageAccounts/blobServices/containers/delete",
                    "Microsoft.Storage/storageAccounts/blobServices/containers/read",
                    "Microsoft.Storage/storageAccounts/blobServices/containers/write",
                    "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
                ],
                &[],
                &[
                    "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete",
                    "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
                    "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
                    "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/move/action",
                    "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action",
                ],
            ),
            _ => return None,
        };
        Some(found)
    }
}

/// One operation as used: how often, when last, where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Use {
    /// The operation, as first seen.
    pub operation: String,
    /// A data action.
    pub data: bool,
    /// Requests that performed it (or carried it).
    pub count: u64,
    /// The last of them.
    #[serde(with = "airlock_core::serde_time::rfc3339")]
    pub last_used: SystemTime,
}

/// One permission of a role, with the uses it covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionUse {
    /// The `Actions` or `DataActions` entry.
    pub permission: String,
    /// A `DataActions` entry.
    pub data: bool,
    /// The used operations it covers (none: unused in the window).
    pub covers: Vec<Use>,
}

impl PermissionUse {
    /// Requests it covered.
    pub fn count(&self) -> u64 {
        self.covers.iter().map(|u| u.count).sum()
    }

    /// The last request it covered.
    pub fn last_used(&self) -> Option<SystemTime> {
        self.covers.iter().map(|u| u.last_used).max()
    }
}

/// What a window of recorded requests showed for one principal (or group).
#[derive(Clone, Debug, Default)]
pub struct Evidence {
    uses: BTreeMap<String, Use>,
    arm_scopes: Vec<Vec<String>>,
    vaults: BTreeSet<String>,
    /// Allowed requests read.
    pub requests: u64,
    /// Distinct sessions they came in.
    pub sessions: BTreeSet<String>,
    /// Allowed requests the classifier did not understand (never granted).
    pub unclassified: u64,
    /// Requests refused or held (not used, so not needed).
    pub not_allowed: u64,
    /// Allowed requests whose events do not say what they did (recorded
    /// before classified operations were kept): not read.
    pub unreadable: u64,
}

impl Evidence {
    /// Notes one allowed request: `operation` and everything it carried.
    pub fn allowed(&mut self, operation: &Operation, time: SystemTime, session: &str) {
        self.requests += 1;
        self.sessions.insert(session.to_owned());
        if operation.flatten().iter().any(|op| op.is_unknown()) {
            self.unclassified += 1;
            return;
        }
        for op in operation.flatten() {
            let key = op.name().to_ascii_lowercase();
            let data = op.plane() == Plane::Data;
            let entry = self.uses.entry(key).or_insert_with(|| Use {
                operation: op.name().to_owned(),
                data,
                count: 0,
                last_used: time,
            });
            entry.count += 1;
            entry.last_used = entry.last_used.max(time);
            let scope = op.scope().as_str();
            match vault_of(scope) {
                Some(vault) => {
                    self.vaults.insert(vault);
                }
                None => self.arm_scopes.push(segments(scope)),
            }
        }
    }

    /// Notes an allowed request whose operations are not known.
    pub fn allowed_unreadable(&mut self) {
        self.unreadable += 1;
    }

    /// Notes a request that was refused or held.
    pub fn not_allowed(&mut self) {
        self.not_allowed += 1;
    }

    /// Every operation used, by name.
    pub fn uses(&self) -> impl Iterator<Item = &Use> {
        self.uses.values()
    }

    /// Vaults whose data was used (by name: their resource ids are not known).
    pub fn vaults(&self) -> &BTreeSet<String> {
        &self.vaults
    }

    /// The role covering exactly what was used; `None` when nothing was.
    /// `scopes` replaces the derived `AssignableScopes` when given.
    pub fn suggest(&self, name: &str, scopes: &[String]) -> Option<Suggestion> {
        if self.uses.is_empty() {
            return None;
        }
        let mut permissions: Vec<PermissionUse> = Vec::new();
        let mut reads: BTreeMap<String, Vec<&Use>> = BTreeMap::new();
        for used in self.uses.values() {
            let lower = used.operation.to_ascii_lowercase();
            if !used.data && !lower.contains('*') && lower.ends_with("/read") {
                let namespace = used.operation.split('/').next().unwrap_or_default();
                reads.entry(namespace.to_owned()).or_default().push(used);
                continue;
            }
            permissions.push(PermissionUse {
                permission: used.operation.clone(),
                data: used.data,
                covers: vec![used.clone()],
            });
        }
        for (namespace, used) in reads {
            if used.len() >= COLLAPSE_READS {
                permissions.push(PermissionUse {
                    permission: format!("{namespace}/*/read"),
                    data: false,
                    covers: used.into_iter().cloned().collect(),
                });
            } else {
                permissions.extend(used.into_iter().map(|u| PermissionUse {
                    permission: u.operation.clone(),
                    data: false,
                    covers: vec![u.clone()],
                }));
            }
        }
        permissions.sort_by(|a, b| (a.data, &a.permission).cmp(&(b.data, &b.permission)));
        let assignable_scopes = if scopes.is_empty() {
            assignable(&self.arm_scopes)
        } else {
            scopes.to_vec()
        };
        let list = |data: bool| -> Vec<String> {
            permissions
                .iter()
                .filter(|p| p.data == data)
                .map(|p| p.permission.clone())
                .collect()
        };
        let role = RoleDefinition {
            name: name.to_owned(),
            description: format!(
                "Drafted by Airlock from {} recorded request(s): exactly the operations used.",
                self.requests
            ),
            actions: list(false),
            not_actions: Vec::new(),
            data_actions: list(true),
            not_data_actions: Vec::new(),
            assignable_scopes,
        };
        Some(Suggestion { role, permissions })
    }

    /// How each permission of `role` was used in the window: the uses each
    /// `Actions` / `DataActions` entry covers (net of `NotActions` /
    /// `NotDataActions`); an entry covering none was not used.
    ///
    /// # Errors
    ///
    /// A permission that is not a valid operation pattern.
    pub fn against(&self, role: &RoleDefinition) -> Result<Vec<PermissionUse>, String> {
        let compile = |list: &[String]| -> Result<Vec<OperationPattern>, String> {
            list.iter()
                .map(|p| OperationPattern::parse(p).map_err(|e| format!("{p}: {e}")))
                .collect()
        };
        let mut out = Vec::new();
        for (entries, excluded, data) in [
            (&role.actions, &role.not_actions, false),
            (&role.data_actions, &role.not_data_actions, true),
        ] {
            let excluded = compile(excluded)?;
            for entry in entries {
                let pattern =
                    OperationPattern::parse(entry).map_err(|e| format!("{entry}: {e}"))?;
                let covers = self
                    .uses
                    .values()
                    .filter(|u| u.data == data)
                    .filter(|u| {
                        let lower = u.operation.to_ascii_lowercase();
                        pattern.covers(lower.as_bytes())
                            && !excluded.iter().any(|x| x.covers(lower.as_bytes()))
                    })
                    .cloned()
                    .collect();
                out.push(PermissionUse {
                    permission: entry.clone(),
                    data,
                    covers,
                });
            }
        }
        Ok(out)
    }
}

/// A drafted role and the evidence for each of its permissions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Suggestion {
    /// The role, as `az role definition create` takes it.
    pub role: RoleDefinition,
    /// Each permission with the uses behind it.
    pub permissions: Vec<PermissionUse>,
}

impl Suggestion {
    /// The same grant as Airlock policy: one allow rule for `principals`
    /// (a `[rule.principals]` body such as `ids = ["…"]`), scoped to the
    /// role's assignable scopes and the vaults whose data was used.
    pub fn rules_toml(
        &self,
        rule_name: &str,
        principals: &str,
        vaults: &BTreeSet<String>,
    ) -> String {
        let quoted = |list: &[String]| {
            list.iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut scopes: Vec<String> = self
            .role
            .assignable_scopes
            .iter()
            .filter(|s| *s != "/")
            .cloned()
            .collect();
        scopes.extend(
            vaults
                .iter()
                .map(|v| format!("/providers/Microsoft.KeyVault/vaults/{v}")),
        );
        let mut toml = format!("[[rule]]\nname = {rule_name:?}\neffect = \"allow\"\n");
        if !self.role.actions.is_empty() {
            let _ = writeln!(toml, "actions = [{}]", quoted(&self.role.actions));
        }
        if !self.role.data_actions.is_empty() {
            let _ = writeln!(toml, "data_actions = [{}]", quoted(&self.role.data_actions));
        }
        if !scopes.is_empty() {
            let _ = writeln!(toml, "scopes = [{}]", quoted(&scopes));
        }
        let _ = writeln!(toml, "[rule.principals]\n{principals}");
        toml
    }
}

/// `…/vaults/{vault}/…` of a tenant-rooted Key Vault data scope.
fn vault_of(scope: &str) -> Option<String> {
    let rest = scope.strip_prefix("/providers/").filter(|r| {
        r.to_ascii_lowercase()
            .starts_with("microsoft.keyvault/vaults/")
    })?;
    rest.split('/').nth(2).map(str::to_owned)
}

fn segments(scope: &str) -> Vec<String> {
    scope
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The narrowest assignable scopes holding every scope: the common
/// resource group, else the common subscription, else one per subscription.
fn assignable(scopes: &[Vec<String>]) -> Vec<String> {
    let Some(first) = scopes.first() else {
        return Vec::new();
    };
    let common = scopes.iter().skip(1).fold(first.len(), |len, s| {
        first
            .iter()
            .zip(s)
            .take(len)
            .take_while(|(a, b)| a.eq_ignore_ascii_case(b))
            .count()
    });
    let is =
        |s: &[String], i: usize, word: &str| s.get(i).is_some_and(|w| w.eq_ignore_ascii_case(word));
    if common >= 4 && is(first, 0, "subscriptions") && is(first, 2, "resourceGroups") {
        return vec![format!(
            "/subscriptions/{}/resourceGroups/{}",
            first[1], first[3]
        )];
    }
    if common >= 2 && is(first, 0, "subscriptions") {
        return vec![format!("/subscriptions/{}", first[1])];
    }
    let subscriptions: BTreeSet<String> = scopes
        .iter()
        .filter(|s| is(s, 0, "subscriptions") && s.len() >= 2)
        .map(|s| format!("/subscriptions/{}", s[1].to_ascii_lowercase()))
        .collect();
    if subscriptions.is_empty() {
        vec!["/".to_owned()]
    } else {
        subscriptions.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use airlock_core::ResourceScope;

    use super::*;

    const RG: &str = "/subscriptions/s1/resourceGroups/rg1";

    fn op(name: &str, scope: &str) -> Operation {
        Operation::new(name, Plane::Management, ResourceScope::new(scope))
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn reads_of_one_provider_collapse_and_nothing_else_does() {
        let mut evidence = Evidence::default();
        for (n, name) in [
            "Microsoft.Storage/storageAccounts/read",
            "Microsoft.Storage/storageAccounts/blobServices/read",
            "Microsoft.Storage/storageAccounts/fileServices/read",
            "Microsoft.Storage/storageAccounts/listKeys/action",
            "Microsoft.Storage/storageAccounts/write",
            "Microsoft.Compute/virtualMachines/read",
        ]
        .iter()
        .enumerate()
        {
            evidence.allowed(&op(name, &format!("{RG}/providers/x/y")), at(n as u64), "s");
        }
        evidence.allowed(
            &op("Microsoft.Compute/virtualMachines/read", RG),
            at(100),
            "t",
        );
        let suggestion = evidence.suggest("agent-role", &[]).unwrap();
        assert_eq!(
            suggestion.role.actions,
            vec![
                "Microsoft.Compute/virtualMachines/read",
                "Microsoft.Storage/*/read",
                "Microsoft.Storage/storageAccounts/listKeys/action",
                "Microsoft.Storage/storageAccounts/write",
            ]
        );
        assert_eq!(suggestion.role.assignable_scopes, vec![RG]);
        let vm = &suggestion.permissions[0];
        assert_eq!((vm.count(), vm.last_used()), (2, Some(at(100))));
        let reads = &suggestion.permissions[1];
        assert_eq!(reads.covers.len(), 3);
        assert_eq!(evidence.sessions.len(), 2);
    }

    #[test]
    fn scopes_narrow_to_a_group_a_subscription_or_one_per_subscription() {
        let scope =
            |list: &[&str]| assignable(&list.iter().map(|s| segments(s)).collect::<Vec<_>>());
        assert_eq!(scope(&[RG, &format!("{RG}/providers/a/b")]), vec![RG]);
        assert_eq!(
            scope(&[RG, "/subscriptions/s1/resourceGroups/rg2"]),
            vec!["/subscriptions/s1"]
        );
        assert_eq!(
            scope(&["/subscriptions/s1", "/subscriptions/S2/resourceGroups/x"]),
            vec!["/subscriptions/s1", "/subscriptions/s2"]
        );
        assert_eq!(scope(&["/providers/Microsoft.Management/x"]), vec!["/"]);
    }

    #[test]
    fn vault_data_adds_no_assignable_scope_and_unclassified_requests_grant_nothing() {
        let mut evidence = Evidence::default();
        evidence.allowed(
            &Operation::new(
                "Microsoft.KeyVault/vaults/secrets/getSecret/action",
                Plane::Data,
                ResourceScope::new("/providers/Microsoft.KeyVault/vaults/kv1/secrets/db"),
            ),
            at(1),
            "s",
        );
        evidence.allowed(
            &Operation::unknown("unknown", Plane::Management, ResourceScope::new(RG)),
            at(2),
            "s",
        );
        let suggestion = evidence
            .suggest("r", &["/subscriptions/s1".into()])
            .unwrap();
        assert!(suggestion.role.actions.is_empty());
        assert_eq!(
            suggestion.role.data_actions,
            vec!["Microsoft.KeyVault/vaults/secrets/getSecret/action"]
        );
        assert_eq!(suggestion.role.assignable_scopes, vec!["/subscriptions/s1"]);
        assert_eq!(evidence.vaults().iter().collect::<Vec<_>>(), vec!["kv1"]);
        assert_eq!((evidence.requests, evidence.unclassified), (2, 1));
        let toml = suggestion.rules_toml("suggested", "ids = [\"oid\"]", evidence.vaults());
        assert!(
            toml.contains(
                "scopes = [\"/subscriptions/s1\", \"/providers/Microsoft.KeyVault/vaults/kv1\"]"
            ),
            "{toml}"
        );
        crate::Policy::parse(&toml, "suggested.toml").unwrap();
    }

    #[test]
    fn a_current_role_shows_what_it_granted_that_was_never_used() {
        let mut evidence = Evidence::default();
        evidence.allowed(
            &op("Microsoft.Storage/storageAccounts/read", RG),
            at(5),
            "s",
        );
        let reader = RoleDefinition::builtin("reader").unwrap();
        let uses = evidence.against(&reader).unwrap();
        assert_eq!(uses[0].permission, "*/read");
        assert_eq!(uses[0].count(), 1);
        let contributor = RoleDefinition::builtin("Contributor").unwrap();
        let uses = evidence.against(&contributor).unwrap();
        assert_eq!(uses.len(), 1);
        assert_eq!(uses[0].covers.len(), 1);
        let secrets = RoleDefinition::builtin("Key Vault Secrets User").unwrap();
        assert!(
            evidence
                .against(&secrets)
                .unwrap()
                .iter()
                .all(|p| p.covers.is_empty())
        );
        assert!(RoleDefinition::builtin("Nope").is_none());
    }

    #[test]
    fn the_role_reads_as_az_takes_it_and_arm_receives_it() {
        let role = RoleDefinition {
            name: "r".into(),
            actions: vec!["Microsoft.Storage/*/read".into()],
            assignable_scopes: vec![RG.into()],
            ..RoleDefinition::default()
        };
        let az = serde_json::to_value(&role).unwrap();
        assert_eq!(az["Name"], "r");
        assert_eq!(az["Actions"][0], "Microsoft.Storage/*/read");
        assert_eq!(az["AssignableScopes"][0], RG);
        assert_eq!(serde_json::from_value::<RoleDefinition>(az).unwrap(), role);
        let arm = role.arm_body();
        assert_eq!(arm["properties"]["roleName"], "r");
        assert_eq!(
            arm["properties"]["permissions"][0]["actions"][0],
            "Microsoft.Storage/*/read"
        );
        assert_eq!(arm["properties"]["type"], "CustomRole");
    }
}
