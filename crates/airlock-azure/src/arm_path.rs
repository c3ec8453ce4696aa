//! ARM paths -> RBAC operation names and scopes.
//!
//! The rule (AZURE.md §1), compared case-insensitively as ARM compares names:
//! the provider section that counts is the **last** `providers/{Namespace}`
//! in a type position; after it, segments alternate type/name and the types
//! are joined. `GET`/`HEAD` read, `PUT`/`PATCH` write, `DELETE` delete; a
//! `POST` to a segment after a name is `{segment}/action`, and a `GET` of a
//! segment after a name lists that collection (read, scoped to its parent).
//!
//! ```text
//! DELETE /subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1
//!   -> Microsoft.Compute/virtualMachines/delete on …/virtualMachines/vm1
//! POST   …/providers/Microsoft.Storage/storageAccounts/sa1/listKeys
//!   -> Microsoft.Storage/storageAccounts/listKeys/action on …/storageAccounts/sa1
//! GET    /subscriptions/s/providers/Microsoft.Compute/virtualMachines
//!   -> Microsoft.Compute/virtualMachines/read on /subscriptions/s
//! PUT    {any scope}/providers/Microsoft.Authorization/roleAssignments/{id}
//!   -> Microsoft.Authorization/roleAssignments/write on {scope}/providers/…/{id}
//! ```
//!
//! Before the first `providers`, ARM's own hierarchy (subscriptions, resource
//! groups, tags, resources) is named in the `Microsoft.Resources` vocabulary
//! from a fixed list. Paths are walked structurally, segment pair by segment
//! pair, never by searching for the text `providers`: a resource *named*
//! `providers` makes a path ambiguous, and an ambiguous path is unknown.
//! Whatever is not understood becomes [`Operation::unknown`], never an error
//! and never a weaker operation.

use airlock_core::{Operation, Plane, ResourceScope};
use http::Method;

/// `Microsoft.Resources`, the namespace of ARM's own hierarchy.
const RESOURCES: &str = "Microsoft.Resources";

/// Providers whose `checkNameAvailability` POST is authorized as a read
/// (from each provider's operations catalogue; the rest follow the rule).
const NAME_CHECKS_AS_READ: [&str; 5] = [
    "Microsoft.Storage",
    "Microsoft.KeyVault",
    "Microsoft.Web",
    "Microsoft.ContainerRegistry",
    "Microsoft.ApiManagement",
];

/// How a path's segments are laid out.
#[derive(Debug)]
pub(crate) enum ArmPath<'s, S> {
    /// No `providers/{Namespace}`: ARM's own hierarchy (`subscriptions/…`).
    Builtin(&'s [S]),
    /// `{scope}/providers/{namespace}/{rest…}`, for the last provider section.
    Provider {
        /// The segments before the last provider section.
        scope: &'s [S],
        /// The resource provider namespace, as spelled.
        namespace: &'s str,
        /// The type/name pairs after it, and a trailing collection or action.
        rest: &'s [S],
    },
    /// Not a shape Airlock understands (ambiguous names, odd scopes, bad types).
    Unrecognised,
}

/// Walks `segments` pair by pair and finds the last provider section.
pub(crate) fn parse<S: AsRef<str>>(segments: &[S]) -> ArmPath<'_, S> {
    let mut index = 0;
    let mut last_provider = None;
    while index < segments.len() {
        let is_provider = is(&segments[index], "providers") && index + 1 < segments.len();
        if is_provider {
            let namespace = segments[index + 1].as_ref();
            if !is_namespace(namespace) {
                return ArmPath::Unrecognised;
            }
            // A provider section must name at least one resource before another opens.
            if last_provider.is_some_and(|previous| index == previous + 2) {
                return ArmPath::Unrecognised;
            }
            if last_provider.is_none() && !is_builtin_prefix(&segments[..index]) {
                return ArmPath::Unrecognised;
            }
            last_provider = Some(index);
        } else {
            if last_provider.is_some() && !is_identifier(segments[index].as_ref()) {
                return ArmPath::Unrecognised;
            }
            if segments
                .get(index + 1)
                .is_some_and(|name| is(name, "providers"))
            {
                // A resource named `providers`: the path reads two ways.
                return ArmPath::Unrecognised;
            }
        }
        index += 2;
    }
    match last_provider {
        None => ArmPath::Builtin(segments),
        Some(at) => ArmPath::Provider {
            scope: &segments[..at],
            namespace: segments[at + 1].as_ref(),
            rest: &segments[at + 2..],
        },
    }
}

/// The operation a request performs, by the ARM rule.
pub(crate) fn operation<S: AsRef<str>>(method: &Method, segments: &[S]) -> Operation {
    parsed_operation(method, segments, &parse(segments))
}

/// [`operation`], for a path already [`parse`]d (`path` is `parse(segments)`).
pub(crate) fn parsed_operation<S: AsRef<str>>(
    method: &Method,
    segments: &[S],
    path: &ArmPath<'_, S>,
) -> Operation {
    let named = match *path {
        ArmPath::Builtin(segments) => builtin(method, segments),
        ArmPath::Provider {
            scope,
            namespace,
            rest,
        } => provider(method, segments, scope, namespace, rest),
        ArmPath::Unrecognised => None,
    };
    match named {
        Some((name, scope)) => Operation::new(name, Plane::Management, scope),
        None => unknown(method, segments),
    }
}

/// A request Airlock cannot name: `{METHOD} {path}` on the path itself.
pub(crate) fn unknown<S: AsRef<str>>(method: &Method, segments: &[S]) -> Operation {
    let id = resource_id(segments);
    Operation::unknown(
        format!("{method} {id}"),
        Plane::Management,
        ResourceScope::new(id),
    )
}

/// `/seg/seg/…`, or `/` for no segments.
pub(crate) fn resource_id<S: AsRef<str>>(segments: &[S]) -> String {
    if segments.is_empty() {
        return "/".to_owned();
    }
    let mut id = String::with_capacity(segments.iter().map(|s| s.as_ref().len() + 1).sum());
    for segment in segments {
        id.push('/');
        id.push_str(segment.as_ref());
    }
    id
}

/// Splits a resource id found in a request body (`/subscriptions/…`), which
/// is not percent-encoded. `None` for anything that is not a clean id.
pub(crate) fn id_segments(id: &str) -> Option<Vec<String>> {
    let body = id.strip_prefix('/')?;
    let body = body.strip_suffix('/').unwrap_or(body);
    if body.is_empty() {
        return Some(Vec::new());
    }
    body.split('/')
        .map(|segment| {
            let clean = !segment.is_empty()
                && segment != "."
                && segment != ".."
                && !segment
                    .chars()
                    .any(|c| c.is_control() || c == '\\' || c == ';');
            clean.then(|| segment.to_owned())
        })
        .collect()
}

/// `a` equals `b` ignoring ASCII case.
pub(crate) fn is(a: &(impl AsRef<str> + ?Sized), b: &str) -> bool {
    a.as_ref().eq_ignore_ascii_case(b)
}

/// A resource provider namespace: dot-separated identifiers (`Microsoft.Compute`).
pub(crate) fn is_namespace(segment: &str) -> bool {
    // One pass: identifier bytes and dots, at least one dot, no empty part.
    let mut dotted = false;
    let mut after_dot = true;
    for byte in segment.bytes() {
        if byte == b'.' {
            if after_dot {
                return false;
            }
            dotted = true;
            after_dot = true;
        } else if is_identifier_byte(byte) {
            after_dot = false;
        } else {
            return false;
        }
    }
    dotted && !after_dot
}

/// A resource type or action name: letters, digits, `_` and `-`.
pub(crate) fn is_identifier(segment: &str) -> bool {
    !segment.is_empty() && segment.bytes().all(is_identifier_byte)
}

fn is_identifier_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'
}

/// The scopes a first provider section may follow: the tenant root, a
/// subscription or a resource group.
fn is_builtin_prefix<S: AsRef<str>>(prefix: &[S]) -> bool {
    match prefix {
        [] => true,
        [subscriptions, _] => is(subscriptions, "subscriptions"),
        [subscriptions, _, groups, _] => {
            is(subscriptions, "subscriptions") && is(groups, "resourceGroups")
        }
        _ => false,
    }
}

/// The verb for a request on one resource.
fn verb(method: &Method) -> Option<&'static str> {
    match *method {
        Method::GET | Method::HEAD => Some("read"),
        Method::PUT | Method::PATCH => Some("write"),
        Method::DELETE => Some("delete"),
        _ => None,
    }
}

fn is_read(method: &Method) -> bool {
    *method == Method::GET || *method == Method::HEAD
}

/// The first of `names` that `segment` spells (ignoring case), as spelled in `names`.
fn one_of(segment: &(impl AsRef<str> + ?Sized), names: &[&'static str]) -> Option<&'static str> {
    names.iter().copied().find(|name| is(segment, name))
}

/// ARM's own hierarchy, from a fixed vocabulary; anything else is unknown.
///
/// Segments at odd positions are names (anything); those at even positions
/// are compared, ignoring case, with the vocabulary.
fn builtin<S: AsRef<str>>(method: &Method, segments: &[S]) -> Option<(String, ResourceScope)> {
    let id = || ResourceScope::new(resource_id(segments));
    let parent = || ResourceScope::new(resource_id(&segments[..segments.len() - 1]));
    let named = |name: &str| format!("{RESOURCES}/{name}");
    let read = is_read(method);
    let post = *method == Method::POST;
    let (first, rest) = segments.split_first()?;
    if rest.is_empty() {
        // `subscriptions`, `tenants`, `providers`: lists at the root.
        if !read {
            return None;
        }
        let name = match one_of(first, &["subscriptions", "tenants", "providers"])? {
            "subscriptions" => "subscriptions/read",
            "tenants" => "tenants/read",
            _ => "providers/read",
        };
        return Some((named(name), ResourceScope::new("/")));
    }
    if !is(first, "subscriptions") {
        return None;
    }
    match rest {
        [_] if read => Some((named("subscriptions/read"), id())),
        [_, collection] if read => {
            let collection = one_of(
                collection,
                &[
                    "resourceGroups",
                    "resources",
                    "providers",
                    "locations",
                    "tagNames",
                ],
            )?;
            Some((
                format!("{RESOURCES}/subscriptions/{collection}/read"),
                parent(),
            ))
        }
        [_, kind, _] if read && is(kind, "operationresults") => {
            Some((named("subscriptions/operationresults/read"), id()))
        }
        [_, kind, _] if is(kind, "resourceGroups") => {
            let verb = verb(method)?;
            Some((
                format!("{RESOURCES}/subscriptions/resourceGroups/{verb}"),
                id(),
            ))
        }
        [_, kind, _, resources]
            if read && is(kind, "resourceGroups") && is(resources, "resources") =>
        {
            Some((
                named("subscriptions/resourceGroups/resources/read"),
                parent(),
            ))
        }
        [_, kind, _, action] if post && is(kind, "resourceGroups") => {
            let action = match one_of(
                action,
                &["moveResources", "validateMoveResources", "exportTemplate"],
            )? {
                // Validating a move needs the right to move (Azure checks the same action).
                "moveResources" | "validateMoveResources" => "moveResources",
                _ => "exportTemplate",
            };
            Some((
                format!("{RESOURCES}/subscriptions/resourceGroups/{action}/action"),
                parent(),
            ))
        }
        [_, kind, _] if is(kind, "tagNames") => {
            let verb = verb(method)?;
            Some((format!("{RESOURCES}/subscriptions/tagNames/{verb}"), id()))
        }
        [_, kind, _, values, _] if is(kind, "tagNames") && is(values, "tagValues") => {
            let verb = verb(method)?;
            Some((
                format!("{RESOURCES}/subscriptions/tagNames/tagValues/{verb}"),
                id(),
            ))
        }
        _ => None,
    }
}

/// The last provider section: `{scope}/providers/{namespace}/{rest…}`.
fn provider<S: AsRef<str>>(
    method: &Method,
    segments: &[S],
    scope: &[S],
    namespace: &str,
    rest: &[S],
) -> Option<(String, ResourceScope)> {
    // Types sit at even positions of `rest`; with an odd length the last of
    // them is the trailing collection or action.
    if rest.iter().step_by(2).any(|t| is(t, "providers")) {
        // Only a trailing `providers` can be left here: a collection of nothing.
        return None;
    }
    if rest.is_empty() {
        // The provider itself: `GET {scope}/providers/Microsoft.Compute`.
        let name = match scope {
            _ if !is_read(method) => return None,
            [] => format!("{RESOURCES}/providers/read"),
            [_, _] => format!("{RESOURCES}/subscriptions/providers/read"),
            _ => return None,
        };
        return Some((name, ResourceScope::new(resource_id(segments))));
    }
    if rest.len().is_multiple_of(2) {
        let verb = verb(method)?;
        return Some((
            operation_name(namespace, rest, verb),
            ResourceScope::new(resource_id(segments)),
        ));
    }
    // A trailing collection (GET) or action (POST) after the last name.
    let trailing = rest.last()?;
    let target = if rest.len() == 1 {
        // Directly under the provider: the scope before `providers/{namespace}`.
        scope
    } else {
        &segments[..segments.len() - 1]
    };
    if is_read(method) {
        return Some((
            operation_name(namespace, rest, "read"),
            ResourceScope::new(resource_id(target)),
        ));
    }
    if *method != Method::POST {
        return None;
    }
    let target = ResourceScope::new(resource_id(target));
    if rest.len() == 1
        && is(trailing, "checkNameAvailability")
        && NAME_CHECKS_AS_READ.iter().any(|ns| is(ns, namespace))
    {
        return Some((format!("{namespace}/checknameavailability/read"), target));
    }
    Some((operation_name(namespace, rest, "action"), target))
}

/// `{namespace}/{type}/{type}…/{verb}`, the types at the even positions of `rest`.
fn operation_name<S: AsRef<str>>(namespace: &str, rest: &[S], verb: &str) -> String {
    let types = rest.iter().step_by(2).map(AsRef::as_ref);
    let mut name = String::with_capacity(
        namespace.len() + verb.len() + types.clone().map(|t| t.len() + 1).sum::<usize>() + 1,
    );
    name.push_str(namespace);
    for part in types.chain([verb]) {
        name.push('/');
        name.push_str(part);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(path: &str) -> Vec<crate::hygiene::Segment<'_>> {
        crate::hygiene::path_segments(path).unwrap()
    }

    fn named(method: &Method, path: &str) -> (String, String) {
        let op = operation(method, &segs(path));
        assert!(!op.is_unknown(), "{method} {path} was not understood");
        (op.name().to_owned(), op.scope().as_str().to_owned())
    }

    #[test]
    fn the_last_provider_section_counts() {
        let path = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa/providers/Microsoft.Authorization/roleAssignments/ra";
        assert_eq!(
            named(&Method::PUT, path),
            (
                "Microsoft.Authorization/roleAssignments/write".into(),
                path.into()
            )
        );
    }

    #[test]
    fn resources_named_providers_are_ambiguous() {
        for path in [
            "/subscriptions/s/resourceGroups/providers",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/providers/providers/Microsoft.Authorization/roleAssignments/x",
            "/subscriptions/providers/providers/Microsoft.Compute/virtualMachines/vm",
        ] {
            assert!(operation(&Method::GET, &segs(path)).is_unknown(), "{path}");
        }
    }

    #[test]
    fn types_must_be_identifiers_and_namespaces_dotted() {
        for path in [
            "/subscriptions/s/providers/Microsoft.Compute/*/vm",
            "/subscriptions/s/providers/Compute/virtualMachines/vm",
            "/subscriptions/s/providers/Microsoft.Compute/virtual%20Machines/vm",
            "/subscriptions/s/providers/Microsoft.Compute/providers/Microsoft.Authorization/roleAssignments/x",
            "/foo/bar/providers/Microsoft.Compute/virtualMachines/vm",
        ] {
            assert!(
                operation(&Method::DELETE, &segs(path)).is_unknown(),
                "{path}"
            );
        }
    }

    #[test]
    fn unknown_names_the_method_and_path() {
        let op = operation(&Method::OPTIONS, &segs("/subscriptions/s"));
        assert!(op.is_unknown());
        assert_eq!(op.name(), "OPTIONS /subscriptions/s");
        assert_eq!(op.scope().as_str(), "/subscriptions/s");
    }

    #[test]
    fn ids_from_bodies_must_be_clean() {
        assert_eq!(
            id_segments("/subscriptions/s/").unwrap(),
            ["subscriptions", "s"]
        );
        assert!(id_segments("subscriptions/s").is_none());
        assert!(id_segments("/subscriptions//s").is_none());
        assert!(id_segments("/subscriptions/../s").is_none());
    }
}
