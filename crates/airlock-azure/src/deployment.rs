//! Deployments: the operations a template carries.
//!
//! `PUT {scope}/providers/Microsoft.Resources/deployments/{name}` (and the
//! `validate` and `whatIf` actions, which need the same rights) writes every
//! resource in its template. Each becomes a child of the deployment's
//! operation, so policy must allow every one:
//!
//! - a resource `{type}` named `{name}` is `{type}/write` at
//!   `{deployment scope}/providers/{type}/{name}`; nested types take
//!   `a/b` names (`Microsoft.Sql/servers/databases`, `s1/db1`), child
//!   resources inherit their parent's type and name, extension resources
//!   sit under their `scope`, and `existing` resources are read, not written;
//! - a name that is a template expression (`[…]`) cannot be resolved without
//!   evaluating the template: the child's scope widens to the deployment's
//!   scope (which contains it); its type is still known;
//! - an inline nested deployment (`Microsoft.Resources/deployments`) is
//!   expanded recursively at its own target (`subscriptionId`,
//!   `resourceGroup`, `scope`; widened when those are expressions);
//! - a template Airlock cannot see (`templateLink`, or `onErrorDeployment`,
//!   which redeploys an earlier deployment on failure) is an unknown `*/write`
//!   child at the deployment's scope;
//! - `"mode": "Complete"` deletes every resource of the resource group that
//!   the template does not list: a `*/delete` child at the deployment's scope;
//! - an expression calling a `list*` function (`listKeys(…)`,
//!   `listSecrets(…)`) performs that action, on any resource it names, and
//!   can return the result in the deployment's outputs: an unknown
//!   `*/list*/action` child at the root scope `/`;
//! - a parameter that references a Key Vault secret (`"reference":
//!   {"keyVault": {"id": …}, "secretName": …}`) makes Azure read it with the
//!   deployer's rights: `Microsoft.KeyVault/vaults/deploy/action` on that
//!   vault (at `/` when its id is an expression, or when the parameters are
//!   in a `parametersLink` Airlock cannot see).
//!
//! Deployment stacks (`…/deploymentStacks/{name}`) carry a template the same
//! way, and delete: a stack whose `actionOnUnmanage` deletes removes every
//! resource it stops managing, and `DELETE` with `unmanageAction.*=delete`
//! removes every resource it manages: a `*/delete` child at the stack's
//! scope.
//!
//! Property names are read case-insensitively, as ARM reads them (see [`json`](crate::json)).

use airlock_core::{Operation, Plane, ResourceScope};
use http::Method;
use serde_json::{Map, Value};

use crate::ClassifyError;
use crate::arm_path::{self, id_segments, is, is_identifier, is_namespace, resource_id};
use crate::json::{self, get, get_str};

/// Where a deployment's resources land.
#[derive(Clone, Debug)]
struct Target {
    /// The scope's segments (`subscriptions/s/resourceGroups/rg`; empty for the tenant).
    segments: Vec<String>,
    /// `false` when the true target is unknown and `segments` is a wider scope containing it.
    exact: bool,
}

impl Target {
    /// The widest scope: the tenant root, which contains every target.
    fn anywhere() -> Self {
        Self {
            segments: Vec::new(),
            exact: false,
        }
    }
    fn id(&self) -> String {
        resource_id(&self.segments)
    }
    fn scope(&self) -> ResourceScope {
        ResourceScope::new(self.id())
    }
    fn subscription(&self) -> Option<&str> {
        match self.segments.as_slice() {
            [subscriptions, id, ..] if is(subscriptions, "subscriptions") => Some(id),
            _ => None,
        }
    }
    fn is_resource_group(&self) -> bool {
        matches!(self.segments.as_slice(),
            [subscriptions, _, groups, _] if is(subscriptions, "subscriptions") && is(groups, "resourceGroups"))
    }
    fn is_subscription(&self) -> bool {
        matches!(self.segments.as_slice(), [subscriptions, _] if is(subscriptions, "subscriptions"))
    }
}

/// The Key Vault action a template deployment's secret references take.
const DEPLOY_FROM_VAULT: &str = "Microsoft.KeyVault/vaults/deploy/action";

/// The target of a deployment (or stack) at `scope`.
fn target_at<S: AsRef<str>>(scope: &[S]) -> Target {
    Target {
        segments: scope.iter().map(|s| s.as_ref().to_owned()).collect(),
        exact: true,
    }
}

/// The children of a deployment at `scope` (the segments before its
/// `providers/Microsoft.Resources/deployments/{name}`), read from its body.
pub(crate) fn children<S: AsRef<str>>(
    scope: &[S],
    body: &[u8],
) -> Result<Vec<Operation>, ClassifyError> {
    let root = json::object(body, "deployment")?;
    template_children(&target_at(scope), get(&root, "properties")?)
}

/// The children of a deployment stack's `PUT` (or `validate`) at `scope`:
/// its template's, and a `*/delete` when `actionOnUnmanage` deletes what
/// the stack stops managing.
pub(crate) fn stack_children<S: AsRef<str>>(
    scope: &[S],
    body: &[u8],
) -> Result<Vec<Operation>, ClassifyError> {
    let root = json::object(body, "deployment stack")?;
    let target = target_at(scope);
    let properties = get(&root, "properties")?;
    let mut children = template_children(&target, properties)?;
    let on_unmanage = match properties {
        Some(Value::Object(properties)) => get(properties, "actionOnUnmanage")?,
        _ => None,
    };
    let deletes = match on_unmanage {
        None => false,
        Some(Value::Object(actions)) => actions.values().any(|action| {
            action
                .as_str()
                .is_none_or(|a| !a.eq_ignore_ascii_case("detach"))
        }),
        // Not the documented object: Airlock cannot tell what it keeps.
        Some(_) => true,
    };
    if deletes {
        children.push(Operation::new(
            "*/delete",
            Plane::Management,
            target.scope(),
        ));
    }
    Ok(children)
}

/// The children of a deployment stack's `DELETE` at `scope`: a `*/delete`
/// when any `unmanageAction.*` parameter (in `params`, decoded) is not
/// `detach`, the default.
pub(crate) fn stack_delete_children<'q, S: AsRef<str>>(
    scope: &[S],
    mut params: impl Iterator<Item = (std::borrow::Cow<'q, str>, std::borrow::Cow<'q, str>)>,
) -> Vec<Operation> {
    const PREFIX: &str = "unmanageaction.";
    let deletes = params.any(|(name, value)| {
        name.len() > PREFIX.len()
            && name.is_char_boundary(PREFIX.len())
            && name[..PREFIX.len()].eq_ignore_ascii_case(PREFIX)
            && !value.eq_ignore_ascii_case("detach")
    });
    if deletes {
        vec![Operation::new(
            "*/delete",
            Plane::Management,
            target_at(scope).scope(),
        )]
    } else {
        Vec::new()
    }
}

/// What a deployment's (or stack's) `properties` carry: template resources,
/// templates and parameters Airlock cannot see, Complete mode, `list*`
/// calls and Key Vault references.
fn template_children(
    target: &Target,
    properties: Option<&Value>,
) -> Result<Vec<Operation>, ClassifyError> {
    let mut children = deployment_properties(target, properties)?;
    let template = match properties {
        Some(Value::Object(properties)) => get(properties, "template")?,
        _ => None,
    };
    if template.is_some_and(calls_list_function) {
        // `listKeys(…)` and friends run with the deployer's rights on any
        // resource the expression names, and their results can come back in
        // the deployment's outputs.
        children.push(Operation::unknown(
            "*/list*/action",
            Plane::Management,
            ResourceScope::new("/"),
        ));
    }
    Ok(children)
}

/// Whether any template expression in `value` calls a `list*` function
/// (`listKeys`, `listSecrets`, `listAccountSas`, `list`…).
fn calls_list_function(value: &Value) -> bool {
    match value {
        Value::String(text) => {
            is_expression(text) && !text.starts_with("[[") && {
                let lower = text.to_ascii_lowercase();
                let bytes = lower.as_bytes();
                lower.match_indices("list").any(|(at, _)| {
                let starts_word = at == 0
                    || !matches!(bytes[at - 1], b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'\'');
                let rest = &bytes[at + 4..];
                let name_len = rest
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                    .count();
                starts_word && rest.get(name_len) == Some(&b'(')
            })
            }
        }
        Value::Array(items) => items.iter().any(calls_list_function),
        Value::Object(map) => map.values().any(calls_list_function),
        _ => false,
    }
}

/// Template resources, unseen templates and Complete mode of one deployment.
fn deployment_properties(
    target: &Target,
    properties: Option<&Value>,
) -> Result<Vec<Operation>, ClassifyError> {
    let mut children = Vec::new();
    let Some(properties) = properties else {
        return Ok(children);
    };
    let properties = as_object(properties, "properties")?;
    if let Some(template) = get(properties, "template")? {
        let template = as_object(template, "properties.template")?;
        for resource in resources(template)? {
            template_resource(target, resource, None, &mut children)?;
        }
    }
    for unseen in ["templateLink", "onErrorDeployment"] {
        if get(properties, unseen)?.is_some() {
            children.push(Operation::unknown(
                "*/write",
                Plane::Management,
                target.scope(),
            ));
        }
    }
    if let Some(parameters) = get(properties, "parameters")? {
        let parameters = as_object(parameters, "properties.parameters")?;
        for parameter in parameters.values() {
            if let Some(vault) = key_vault_reference(parameter)? {
                children.push(Operation::new(DEPLOY_FROM_VAULT, Plane::Management, vault));
            }
        }
    }
    if get(properties, "parametersLink")?.is_some() {
        // Parameters Airlock cannot see may reference any vault.
        children.push(Operation::new(
            DEPLOY_FROM_VAULT,
            Plane::Management,
            ResourceScope::new("/"),
        ));
    }
    if let Some(mode) = get_str(properties, "mode")? {
        // Anything but Incremental is treated as Complete: it may delete.
        if !mode.eq_ignore_ascii_case("Incremental") {
            children.push(Operation::new(
                "*/delete",
                Plane::Management,
                target.scope(),
            ));
        }
    }
    Ok(children)
}

/// A template's (or a resource's) `resources`: an array, or an object of
/// symbolic names (language version 2.0).
fn resources(owner: &Map<String, Value>) -> Result<Vec<&Value>, ClassifyError> {
    match get(owner, "resources")? {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items.iter().collect()),
        Some(Value::Object(symbolic)) => Ok(symbolic.values().collect()),
        Some(_) => Err(ClassifyError::content(
            "a template's 'resources' must be an array (or an object of symbolic names); send the template as Azure documents it",
        )),
    }
}

/// The vault a parameter's `reference.keyVault.id` names (`/` when the id
/// is an expression or not a vault's), if it references a secret.
fn key_vault_reference(parameter: &Value) -> Result<Option<ResourceScope>, ClassifyError> {
    let Some(parameter) = parameter.as_object() else {
        return Ok(None);
    };
    let Some(reference) = get(parameter, "reference")? else {
        return Ok(None);
    };
    let vault = match reference {
        Value::Object(reference) => match get(reference, "keyVault")? {
            Some(Value::Object(vault)) => get_str(vault, "id")?,
            _ => None,
        },
        _ => None,
    };
    let literal = vault.filter(|id| !is_expression(id)).and_then(|id| {
        let segments = id_segments(id)?;
        let vaults = segments.len() >= 2
            && is(&segments[segments.len() - 2], "vaults")
            && segments
                .iter()
                .any(|segment| is(segment, "Microsoft.KeyVault"));
        vaults.then(|| ResourceScope::new(resource_id(&segments)))
    });
    Ok(Some(literal.unwrap_or_else(|| ResourceScope::new("/"))))
}

fn as_object<'v>(value: &'v Value, what: &str) -> Result<&'v Map<String, Value>, ClassifyError> {
    value.as_object().ok_or_else(|| {
        ClassifyError::content(format!(
            "the deployment's '{what}' must be a JSON object; send the deployment as Azure documents it"
        ))
    })
}

/// The resource a child resource is declared in.
struct Parent {
    /// Full type, e.g. `Microsoft.Sql/servers`.
    kind: String,
    /// Full name, e.g. `s1`; `None` when it is an expression.
    name: Option<String>,
    /// Where the parent's id starts (its `scope`, or the deployment's).
    base: Target,
}

/// One entry of `resources`, and the children declared inside it.
fn template_resource(
    target: &Target,
    resource: &Value,
    parent: Option<&Parent>,
    out: &mut Vec<Operation>,
) -> Result<(), ClassifyError> {
    let resource = resource.as_object().ok_or_else(|| {
        ClassifyError::content(
            "each entry of a template's 'resources' must be a JSON object; send the template as Azure documents it",
        )
    })?;
    let (Some(kind), name) = (get_str(resource, "type")?, get(resource, "name")?) else {
        // No type (or an extension's `import`): Airlock cannot say what it writes.
        out.push(Operation::unknown(
            "*/write",
            Plane::Management,
            target.scope(),
        ));
        return Ok(());
    };
    let literal_name = name.and_then(Value::as_str).filter(|n| !is_expression(n));
    let (kind, name) = match parent {
        Some(parent) if !kind.contains('/') => (
            format!("{}/{kind}", parent.kind),
            parent
                .name
                .as_ref()
                .zip(literal_name)
                .map(|(p, n)| format!("{p}/{n}")),
        ),
        _ => (kind.to_owned(), literal_name.map(str::to_owned)),
    };
    if !is_resource_type(&kind) {
        out.push(Operation::unknown(
            "*/write",
            Plane::Management,
            target.scope(),
        ));
        return Ok(());
    }
    let existing = matches!(get(resource, "existing")?, Some(Value::Bool(true)));
    let api_version = get(resource, "apiVersion")?
        .and_then(Value::as_str)
        .filter(|v| !is_expression(v));

    if is(&kind, "Microsoft.Resources/deployments") {
        let nested = nested_target(target, resource)?;
        let scope = match &name {
            Some(name) if nested.exact && is_single_segment(name) => {
                let mut id = nested.id();
                if id == "/" {
                    id.clear();
                }
                format!("{id}/providers/{kind}/{name}")
            }
            _ => nested.id(),
        };
        let verb = if existing { "read" } else { "write" };
        let mut deployment = Operation::new(
            format!("{kind}/{verb}"),
            Plane::Management,
            ResourceScope::new(scope),
        );
        if !existing {
            for child in deployment_properties(&nested, get(resource, "properties")?)? {
                deployment = deployment.with_child(child);
            }
        }
        out.push(with_version(deployment, api_version));
        return Ok(());
    }

    let base = match parent {
        Some(parent) => parent.base.clone(),
        None => extension_base(target, get_str(resource, "scope")?),
    };
    let method = if existing { Method::GET } else { Method::PUT };
    let operation = match name
        .as_deref()
        .filter(|_| base.exact)
        .and_then(|name| resource_path(&base, &kind, name))
    {
        Some(path) => arm_path::operation(&method, &path),
        None => unresolved(&base, &kind, existing),
    };
    out.push(with_version(operation, api_version));

    let parent = Parent { kind, name, base };
    for child in resources(resource)? {
        template_resource(target, child, Some(&parent), out)?;
    }
    Ok(())
}

fn with_version(operation: Operation, api_version: Option<&str>) -> Operation {
    match api_version {
        Some(version) => operation.with_api_version(version),
        None => operation,
    }
}

/// A template expression (`[…]`), which Airlock does not evaluate.
fn is_expression(value: &str) -> bool {
    value.starts_with('[')
}

fn is_single_segment(name: &str) -> bool {
    id_segments(&format!("/{name}")).is_some_and(|s| s.len() == 1)
}

/// `Namespace/type[/type…]`, where a `providers` part introduces an
/// extension (`Microsoft.Storage/storageAccounts/providers/roleAssignments`).
fn is_resource_type(kind: &str) -> bool {
    let mut parts = kind.split('/');
    parts.next().is_some_and(is_namespace) && {
        let types: Vec<&str> = parts.collect();
        !types.is_empty() && types.iter().copied().all(is_identifier)
    }
}

/// Where an extension resource's id starts: its `scope` property, or the deployment's.
fn extension_base(target: &Target, scope: Option<&str>) -> Target {
    let Some(scope) = scope else {
        return target.clone();
    };
    if is_expression(scope) {
        return Target {
            exact: false,
            ..target.clone()
        };
    }
    let resolved = if scope.starts_with('/') {
        id_segments(scope)
    } else {
        // Relative: `Microsoft.Storage/storageAccounts/sa1`, under the deployment's scope.
        id_segments(&format!("/{scope}")).map(|relative| {
            let mut segments = target.segments.clone();
            segments.push("providers".to_owned());
            segments.extend(relative);
            segments
        })
    };
    match resolved {
        Some(segments) if target.exact => Target {
            segments,
            exact: true,
        },
        _ => Target {
            exact: false,
            ..target.clone()
        },
    }
}

/// The id of a resource of `kind` named `name` under `base`, as segments;
/// `None` when the name's segments do not fit the type's.
fn resource_path(base: &Target, kind: &str, name: &str) -> Option<Vec<String>> {
    let names = id_segments(&format!("/{name}"))?;
    let mut types = kind.split('/');
    let namespace = types.next()?;
    let types: Vec<&str> = types.collect();
    if base.is_subscription() && types.len() == 1 && is(kind, "Microsoft.Resources/resourceGroups")
    {
        // A resource group created by a subscription-level deployment.
        let [group] = names.as_slice() else {
            return None;
        };
        let mut path = base.segments.clone();
        path.extend(["resourceGroups".to_owned(), group.clone()]);
        return Some(path);
    }
    if names.len() != types.len() {
        return None;
    }
    let mut path = base.segments.clone();
    path.extend(["providers".to_owned(), namespace.to_owned()]);
    for (kind, name) in types.into_iter().zip(names) {
        // In `…/providers/roleAssignments`, the name part is the extension's namespace.
        path.extend([kind.to_owned(), name]);
    }
    Some(path)
}

/// A resource whose id cannot be built: its type's operation at the base scope.
fn unresolved(base: &Target, kind: &str, existing: bool) -> Operation {
    let verb = if existing { "read" } else { "write" };
    if kind.split('/').any(|part| is(part, "providers")) {
        // The extension's namespace is in the (unresolved) name.
        return Operation::unknown(format!("*/{verb}"), Plane::Management, base.scope());
    }
    let name = if base.is_subscription() && is(kind, "Microsoft.Resources/resourceGroups") {
        format!("Microsoft.Resources/subscriptions/resourceGroups/{verb}")
    } else {
        format!("{kind}/{verb}")
    };
    Operation::new(name, Plane::Management, base.scope())
}

/// The target of a nested deployment, from its `subscriptionId`,
/// `resourceGroup` and `scope`. Expressions widen it to a scope that
/// contains every place it could land.
fn nested_target(parent: &Target, resource: &Map<String, Value>) -> Result<Target, ClassifyError> {
    let subscription = get_str(resource, "subscriptionId")?;
    let group = get_str(resource, "resourceGroup")?;
    let scope = get_str(resource, "scope")?;

    if let Some(scope) = scope {
        if subscription.is_some() || group.is_some() || is_expression(scope) {
            return Ok(Target::anywhere());
        }
        let segments = if scope.starts_with('/') {
            id_segments(scope)
        } else {
            // `Microsoft.Management/managementGroups/mg1`, relative to the tenant.
            id_segments(&format!("/providers/{scope}"))
        };
        return Ok(segments.map_or_else(Target::anywhere, |segments| Target {
            segments,
            exact: true,
        }));
    }

    let literal = |value: Option<&str>| -> Result<Option<Result<String, ()>>, ClassifyError> {
        match value {
            None => Ok(None),
            Some(value) if is_expression(value) => Ok(Some(Err(()))),
            Some(value) if is_single_segment(value) => Ok(Some(Ok(value.to_owned()))),
            Some(_) => Err(ClassifyError::content(
                "a nested deployment's 'subscriptionId' and 'resourceGroup' must be single names; send ids without '/'",
            )),
        }
    };
    let subscription = literal(subscription)?;
    let group = literal(group)?;
    let in_subscription = |subscription: &str, group: Option<String>, exact: bool| {
        let mut segments = vec!["subscriptions".to_owned(), subscription.to_owned()];
        if let Some(group) = group {
            segments.extend(["resourceGroups".to_owned(), group]);
        }
        Target { segments, exact }
    };
    Ok(match (subscription, group) {
        (None, None) => parent.clone(),
        (Some(Err(())), _) => Target::anywhere(),
        (Some(Ok(subscription)), Some(Ok(group))) => {
            in_subscription(&subscription, Some(group), true)
        }
        // From a resource-group deployment, a subscription alone may still
        // mean a resource group there: the subscription contains either.
        (Some(Ok(subscription)), None) => {
            in_subscription(&subscription, None, !parent.is_resource_group())
        }
        (Some(Ok(subscription)), Some(Err(()))) => in_subscription(&subscription, None, false),
        (None, group) => match (parent.subscription(), group) {
            (Some(subscription), Some(Ok(group))) => {
                in_subscription(subscription, Some(group), true)
            }
            (Some(subscription), _) => in_subscription(subscription, None, false),
            (None, _) => Target::anywhere(),
        },
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn scope_of(path: &str) -> Vec<String> {
        let segments = crate::hygiene::path_segments(path).unwrap();
        segments.into_iter().map(String::from).collect()
    }

    fn names(ops: &[Operation]) -> Vec<(String, String)> {
        ops.iter()
            .map(|op| (op.name().to_owned(), op.scope().as_str().to_owned()))
            .collect()
    }

    #[test]
    fn old_style_extension_types_name_the_extension() {
        let body = json!({"properties": {"mode": "Incremental", "template": {"resources": [{
            "type": "Microsoft.Storage/storageAccounts/providers/roleAssignments",
            "apiVersion": "2022-04-01",
            "name": "sa1/Microsoft.Authorization/7c0a2b5e-0000-0000-0000-000000000000",
        }]}}});
        let ops = children(
            &scope_of("/subscriptions/s/resourceGroups/rg"),
            body.to_string().as_bytes(),
        )
        .unwrap();
        assert_eq!(
            names(&ops),
            [(
                "Microsoft.Authorization/roleAssignments/write".to_owned(),
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa1/providers/Microsoft.Authorization/roleAssignments/7c0a2b5e-0000-0000-0000-000000000000".to_owned()
            )]
        );
        assert_eq!(ops[0].api_version(), Some("2022-04-01"));
    }

    #[test]
    fn resource_groups_in_subscription_deployments() {
        let body = json!({"properties": {"template": {"resources": [
            {"type": "Microsoft.Resources/resourceGroups", "name": "rg-new"},
            {"type": "Microsoft.Resources/resourceGroups", "name": "[parameters('rg')]"},
        ]}}});
        let ops = children(&scope_of("/subscriptions/s"), body.to_string().as_bytes()).unwrap();
        assert_eq!(
            names(&ops),
            [
                (
                    "Microsoft.Resources/subscriptions/resourceGroups/write".to_owned(),
                    "/subscriptions/s/resourceGroups/rg-new".to_owned()
                ),
                (
                    "Microsoft.Resources/subscriptions/resourceGroups/write".to_owned(),
                    "/subscriptions/s".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn list_functions_are_recognised_in_expressions_only() {
        let calls = |text: &str| calls_list_function(&json!({"outputs": {"k": {"value": text}}}));
        assert!(calls(
            "[listKeys(resourceId('Microsoft.Storage/storageAccounts', 'sa'), '2023-01-01').keys[0].value]"
        ));
        assert!(calls("[concat('a', LIST(variables('id'), '2020-01-01'))]"));
        assert!(calls("[listSecrets(x, '2023-01-01')]"));
        assert!(!calls("listKeys(x)"), "not an expression");
        assert!(!calls("[[listKeys(x)]"), "an escaped literal");
        assert!(!calls("[variables('playlist')]"));
        assert!(!calls("[variables('x').listing]"));
        assert!(!calls("['listKeys(x)']"), "inside a string literal");
    }

    #[test]
    fn nested_targets_widen_for_expressions() {
        let parent = Target {
            segments: scope_of("/subscriptions/s/resourceGroups/rg"),
            exact: true,
        };
        let target = |resource: Value| {
            let Value::Object(map) = resource else {
                unreachable!()
            };
            let t = nested_target(&parent, &map).unwrap();
            (t.id(), t.exact)
        };
        assert_eq!(
            target(json!({})),
            ("/subscriptions/s/resourceGroups/rg".into(), true)
        );
        assert_eq!(
            target(json!({"resourceGroup": "other"})),
            ("/subscriptions/s/resourceGroups/other".into(), true)
        );
        assert_eq!(
            target(json!({"resourceGroup": "[parameters('rg')]"})),
            ("/subscriptions/s".into(), false)
        );
        assert_eq!(
            target(json!({"subscriptionId": "t", "resourceGroup": "x"})),
            ("/subscriptions/t/resourceGroups/x".into(), true)
        );
        assert_eq!(
            target(json!({"subscriptionId": "t"})),
            ("/subscriptions/t".into(), false)
        );
        assert_eq!(
            target(json!({"subscriptionId": "[subscription().id]"})),
            ("/".into(), false)
        );
        assert_eq!(
            target(json!({"scope": "Microsoft.Management/managementGroups/mg"})),
            (
                "/providers/Microsoft.Management/managementGroups/mg".into(),
                true
            )
        );
        assert_eq!(target(json!({"scope": "[tenant()]"})), ("/".into(), false));
    }
}
