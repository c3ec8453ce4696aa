//! What a request does, in the Azure RBAC vocabulary.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

/// Whether an operation is a control-plane action or a data action.
///
/// Mirrors Azure role definitions: `actions` grant management operations,
/// `dataActions` grant data-plane operations, and a control-plane `*` never
/// grants data actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Plane {
    /// ARM (`management.azure.com`).
    Management,
    /// A data plane such as Key Vault (`{vault}.vault.azure.net`).
    Data,
}

/// A normalized Azure resource id (or scope).
///
/// Comparison uses the lower-cased form, as ARM compares ids
/// case-insensitively, except a blob's name, which Azure Storage compares
/// case-sensitively ([`normalize_id`]); the original spelling is kept for
/// display.
///
/// ```
/// use airlock_core::ResourceScope;
///
/// let a = ResourceScope::new("/subscriptions/S1/resourceGroups/RG");
/// let b = ResourceScope::new("/subscriptions/s1/resourcegroups/rg");
/// assert_eq!(a, b);
/// assert_eq!(a.as_str(), "/subscriptions/S1/resourceGroups/RG");
/// assert!(a.contains(&ResourceScope::new("/subscriptions/s1/resourceGroups/rg/providers/X.Y/z/n")));
/// assert!(!a.contains(&ResourceScope::new("/subscriptions/s1/resourceGroups/rg2")));
/// assert_eq!(ResourceScope::new("/subscriptions/s/resourceGroups/ÄRGER"), ResourceScope::new("/subscriptions/s/resourceGroups/ärger"));
/// ```
#[derive(Clone, Debug, Eq, Serialize)]
pub struct ResourceScope {
    #[serde(rename = "scope")]
    display: String,
    #[serde(skip)]
    normalized: String,
}

/// An id as scopes compare it: lower-cased, as ARM compares names (Unicode
/// letters included: resource groups may be named `Ärger`), except a
/// blob's name, after `…/blobServices/{s}/containers/{c}/blobs/`, which
/// Azure Storage compares case-sensitively: `PUBLIC/x` is another blob
/// than `public/x`, and a rule for one must not cover the other.
///
/// ```
/// use airlock_core::normalize_id;
///
/// assert_eq!(normalize_id("/subscriptions/S/resourceGroups/RG"), "/subscriptions/s/resourcegroups/rg");
/// assert_eq!(
///     normalize_id("/providers/Microsoft.Storage/storageAccounts/SA/blobServices/default/containers/logs/Blobs/PUBLIC/a.txt"),
///     "/providers/microsoft.storage/storageaccounts/sa/blobservices/default/containers/logs/blobs/PUBLIC/a.txt"
/// );
/// ```
pub fn normalize_id(id: &str) -> String {
    let lower = id.to_lowercase();
    // Most ids name no blob: one pass, no split (a scope is made per request).
    if !lower.contains("/blobservices/") {
        return lower;
    }
    let parts: Vec<&str> = id.split('/').collect();
    let blob_name = (4..parts.len()).find(|&i| {
        parts[i].eq_ignore_ascii_case("blobs")
            && parts[i - 2].eq_ignore_ascii_case("containers")
            && parts[i - 4].eq_ignore_ascii_case("blobServices")
    });
    match blob_name {
        Some(blobs) => {
            let mut normalized = parts[..=blobs].join("/").to_lowercase();
            for part in &parts[blobs + 1..] {
                normalized.push('/');
                normalized.push_str(part);
            }
            normalized
        }
        None => lower,
    }
}

impl ResourceScope {
    /// Makes a scope from a resource id; a trailing `/` is dropped (except for the root `/`).
    pub fn new(id: impl Into<String>) -> Self {
        let mut display: String = id.into();
        while display.len() > 1 && display.ends_with('/') {
            display.pop();
        }
        let normalized = normalize_id(&display);
        Self {
            display,
            normalized,
        }
    }
    /// The id as the client spelled it.
    pub fn as_str(&self) -> &str {
        &self.display
    }
    /// The lower-cased id used for comparison.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }
    /// Whether `other` is this scope or lies beneath it (segment-wise, not string-prefix).
    pub fn contains(&self, other: &ResourceScope) -> bool {
        let (outer, inner) = (self.normalized.as_str(), other.normalized.as_str());
        outer == "/"
            || inner == outer
            || (inner.starts_with(outer) && inner.as_bytes().get(outer.len()) == Some(&b'/'))
    }
}

impl PartialEq for ResourceScope {
    fn eq(&self, other: &Self) -> bool {
        self.normalized == other.normalized
    }
}

impl std::hash::Hash for ResourceScope {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.normalized.hash(state);
    }
}

impl fmt::Display for ResourceScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

/// One classified request: the RBAC operation Azure would perform, and where.
///
/// Requests that carry other requests (`/batch`, deployments, resource-group
/// deletes) list them as [`children`](Operation::children); policy must allow
/// every one.
///
/// ```
/// use airlock_core::{Operation, Plane, ResourceScope};
///
/// let delete = Operation::new(
///     "Microsoft.Compute/virtualMachines/delete",
///     Plane::Management,
///     ResourceScope::new("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"),
/// )
/// .with_api_version("2024-07-01");
/// assert_eq!(delete.to_string(), "Microsoft.Compute/virtualMachines/delete on /subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1");
/// assert!(!delete.is_unknown());
/// ```
///
/// Cloning is cheap (one reference count): every layer that reads the
/// request's operation (policy, masking, approval, the audit draft, error
/// answers) may keep its own copy.
#[derive(Clone, PartialEq, Eq)]
pub struct Operation {
    data: Arc<OperationData>,
}

/// What an [`Operation`] holds; shared by its clones, changed only while it
/// is built (`with_*`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
struct OperationData {
    name: String,
    plane: Plane,
    #[serde(flatten)]
    scope: ResourceScope,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_version: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    children: Vec<Operation>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    unknown: bool,
}

impl Operation {
    /// A classified operation.
    pub fn new(name: impl Into<String>, plane: Plane, scope: ResourceScope) -> Self {
        Self::of(name.into(), plane, scope, false)
    }

    /// A request the classifier did not understand; policy denies it unless a
    /// rule names it explicitly.
    pub fn unknown(name: impl Into<String>, plane: Plane, scope: ResourceScope) -> Self {
        Self::of(name.into(), plane, scope, true)
    }

    fn of(name: String, plane: Plane, scope: ResourceScope, unknown: bool) -> Self {
        Self {
            data: Arc::new(OperationData {
                name,
                plane,
                scope,
                api_version: None,
                children: Vec::new(),
                unknown,
            }),
        }
    }

    /// Records the request's `api-version`.
    #[must_use]
    pub fn with_api_version(mut self, api_version: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.data).api_version = Some(api_version.into());
        self
    }

    /// Adds an operation carried inside this one.
    #[must_use]
    pub fn with_child(mut self, child: Operation) -> Self {
        Arc::make_mut(&mut self.data).children.push(child);
        self
    }

    /// The RBAC operation name, e.g. `Microsoft.Compute/virtualMachines/delete`.
    pub fn name(&self) -> &str {
        &self.data.name
    }
    /// Management or data plane.
    pub fn plane(&self) -> Plane {
        self.data.plane
    }
    /// The resource id the operation acts on.
    pub fn scope(&self) -> &ResourceScope {
        &self.data.scope
    }
    /// The request's `api-version`, where it had one.
    pub fn api_version(&self) -> Option<&str> {
        self.data.api_version.as_deref()
    }
    /// Operations carried inside this one.
    pub fn children(&self) -> &[Operation] {
        &self.data.children
    }
    /// Whether the classifier could not name this request.
    pub fn is_unknown(&self) -> bool {
        self.data.unknown
    }
    /// This operation and every operation carried inside it, depth first.
    pub fn flatten(&self) -> Vec<&Operation> {
        let mut all = vec![self];
        for child in self.children() {
            all.extend(child.flatten());
        }
        all
    }
}

impl fmt::Debug for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // As the fields would print, without the shared handle around them.
        let data = &*self.data;
        f.debug_struct("Operation")
            .field("name", &data.name)
            .field("plane", &data.plane)
            .field("scope", &data.scope)
            .field("api_version", &data.api_version)
            .field("children", &data.children)
            .field("unknown", &data.unknown)
            .finish()
    }
}

impl Serialize for Operation {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.data.serialize(serializer)
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}", self.name(), self.scope())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_containment_is_segment_wise() {
        let rg = ResourceScope::new("/subscriptions/s/resourceGroups/rg");
        assert!(rg.contains(&ResourceScope::new("/SUBSCRIPTIONS/S/resourcegroups/RG/")));
        assert!(!rg.contains(&ResourceScope::new(
            "/subscriptions/s/resourceGroups/rg-other"
        )));
        assert!(ResourceScope::new("/").contains(&rg));
        assert!(!rg.contains(&ResourceScope::new("/subscriptions/s")));
    }

    #[test]
    fn flatten_lists_nested_children() {
        let scope = ResourceScope::new("/subscriptions/s");
        let op =
            Operation::new("a/write", Plane::Management, scope.clone()).with_child(
                Operation::new("b/write", Plane::Management, scope.clone())
                    .with_child(Operation::new("c/delete", Plane::Management, scope.clone())),
            );
        let names: Vec<_> = op.flatten().iter().map(|o| o.name().to_owned()).collect();
        assert_eq!(names, ["a/write", "b/write", "c/delete"]);
    }

    #[test]
    fn serializes_for_audit_records() {
        let op = Operation::unknown("unknown", Plane::Data, ResourceScope::new("/x/"));
        let json = serde_json::to_value(&op).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"name":"unknown","plane":"data","scope":"/x","unknown":true})
        );
    }
}
