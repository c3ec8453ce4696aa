//! What an approved request will change: the current resource against the
//! requested body, or ARM's own what-if for a deployment.
//!
//! [`ChangePreview`] is asked by the approval page; the gateway implements it
//! by reading Azure with its own credential and masking what it reads. The
//! comparison itself, [`diff`], is here.

use std::fmt;

use airlock_core::BoxFuture;
use serde_json::{Map, Value};

use crate::ApprovalRequest;

/// Works out what an approval's request would change, for approvers.
/// Implementations must mask what they read from Azure as any answer is
/// masked, and answer [`Preview::Unavailable`] rather than fail.
pub trait ChangePreview: Send + Sync + 'static {
    /// The preview of `approval`'s request.
    fn preview<'a>(&'a self, approval: &'a ApprovalRequest) -> BoxFuture<'a, Preview>;
}

/// What a request will change.
#[derive(Clone, Debug, PartialEq)]
pub enum Preview {
    /// Nothing to compare: not a `PUT`/`PATCH` of an ARM resource or a deployment.
    NotApplicable,
    /// A `PUT`/`PATCH` of a resource that does not exist yet: it will be created.
    Creates,
    /// A `PUT`/`PATCH` of an existing resource: how its properties change.
    Diff(Vec<Change>),
    /// A deployment: ARM's what-if, one entry per resource.
    WhatIf(Vec<ResourceChange>),
    /// It could not be worked out, and why (shown to approvers).
    Unavailable(String),
}

/// How one property changes.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// Where: `properties.minimumTlsVersion`, `tags.env`.
    pub path: String,
    /// Added, removed or modified.
    pub kind: ChangeKind,
    /// The value now (absent when added).
    pub before: Option<Value>,
    /// The value requested (absent when removed).
    pub after: Option<Value>,
}

/// Added, removed or modified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// Not there now.
    Added,
    /// There now, not in the request (a `PUT` replaces the resource).
    Removed,
    /// A different value.
    Modified,
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Modified => "modified",
        })
    }
}

/// One resource in a what-if result.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceChange {
    /// The resource id.
    pub resource_id: String,
    /// ARM's `changeType`: `Create`, `Delete`, `Modify`, `NoChange`, `Ignore`, `Deploy`, `Unsupported`.
    pub change_type: String,
    /// Its property changes (`Modify`).
    pub delta: Vec<Change>,
}

impl ResourceChange {
    /// Reads one entry of a what-if result's `properties.changes`.
    pub fn from_what_if(change: &Value) -> Self {
        let delta = change["delta"]
            .as_array()
            .map(|delta| {
                delta
                    .iter()
                    .map(|d| Change {
                        path: d["path"].as_str().unwrap_or_default().to_owned(),
                        kind: match d["propertyChangeType"].as_str() {
                            Some("Create") => ChangeKind::Added,
                            Some("Delete") => ChangeKind::Removed,
                            _ => ChangeKind::Modified,
                        },
                        before: d.get("before").filter(|v| !v.is_null()).cloned(),
                        after: d.get("after").filter(|v| !v.is_null()).cloned(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            resource_id: change["resourceId"].as_str().unwrap_or_default().to_owned(),
            change_type: change["changeType"]
                .as_str()
                .unwrap_or("Unsupported")
                .to_owned(),
            delta,
        }
    }
}

/// Properties ARM sets itself: never "removed" by a request that omits them.
const READ_ONLY: &[&str] = &[
    "id",
    "name",
    "type",
    "etag",
    "systemData",
    "sku.tier",
    "properties.provisioningState",
    "properties.creationTime",
    "properties.primaryEndpoints",
    "properties.primaryLocation",
    "properties.statusOfPrimary",
];

/// How `requested` changes `current`. A `PATCH` (`merge`) changes only what
/// it names; a `PUT` replaces the resource, so what it omits is listed as
/// removed (except what ARM sets itself). Objects are compared key by key;
/// arrays and scalars as whole values.
///
/// ```
/// use airlock_approval::{ChangeKind, diff};
/// use serde_json::json;
///
/// let current = json!({"id": "/x", "location": "westeurope", "tags": {"env": "dev"}, "sku": {"name": "Standard_LRS"}});
/// let requested = json!({"location": "westeurope", "tags": {"env": "prod", "owner": "ops"}});
/// let changes = diff(&current, &requested, false);
/// let summary: Vec<_> = changes.iter().map(|c| (c.path.as_str(), c.kind)).collect();
/// assert_eq!(summary, [
///     ("sku.name", ChangeKind::Removed),
///     ("tags.env", ChangeKind::Modified),
///     ("tags.owner", ChangeKind::Added),
/// ]);
/// // As a PATCH, what the request omits stays.
/// assert_eq!(diff(&current, &requested, true).len(), 2);
/// // What ARM sets itself is never "removed"; an omitted object is listed
/// // property by property.
/// let current = json!({"properties": {"provisioningState": "Succeeded", "minimumTlsVersion": "TLS1_2"}});
/// let removed: Vec<_> = diff(&current, &json!({}), false).into_iter().map(|c| c.path).collect();
/// assert_eq!(removed, ["properties.minimumTlsVersion"]);
/// ```
pub fn diff(current: &Value, requested: &Value, merge: bool) -> Vec<Change> {
    let mut changes = Vec::new();
    walk("", current, requested, merge, &mut changes);
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    changes
}

fn walk(path: &str, current: &Value, requested: &Value, merge: bool, out: &mut Vec<Change>) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match (current, requested) {
        (Value::Object(now), Value::Object(asked)) => {
            for (key, after) in asked {
                match find(now, key) {
                    Some(before) => walk(&join(key), before, after, merge, out),
                    None => leaves(&join(key), after, &mut |path, value| {
                        out.push(Change {
                            path,
                            kind: ChangeKind::Added,
                            before: None,
                            after: Some(value.clone()),
                        });
                    }),
                }
            }
            if !merge {
                for (key, before) in now {
                    if find(asked, key).is_some() {
                        continue;
                    }
                    leaves(&join(key), before, &mut |path, value| {
                        if !READ_ONLY
                            .iter()
                            .any(|r| path == *r || path.starts_with(&format!("{r}.")))
                        {
                            out.push(Change {
                                path,
                                kind: ChangeKind::Removed,
                                before: Some(value.clone()),
                                after: None,
                            });
                        }
                    });
                }
            }
        }
        (before, after) if before != after => out.push(Change {
            path: path.to_owned(),
            kind: ChangeKind::Modified,
            before: Some(before.clone()),
            after: Some(after.clone()),
        }),
        _ => {}
    }
}

/// Each non-object value under `value` (an empty object counts as one),
/// with its path: what is added or removed, property by property.
fn leaves(path: &str, value: &Value, each: &mut dyn FnMut(String, &Value)) {
    match value {
        Value::Object(object) if !object.is_empty() => {
            for (key, inner) in object {
                leaves(&format!("{path}.{key}"), inner, each);
            }
        }
        other => each(path.to_owned(), other),
    }
}

/// ARM property names are case-insensitive.
fn find<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}
