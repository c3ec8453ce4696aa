//! Resource-group requests that act on everything inside: delete and move.
//!
//! - `DELETE /subscriptions/{s}/resourceGroups/{rg}` deletes every resource
//!   in the group: a `*/delete` child at the group's scope.
//! - `POST …/resourceGroups/{rg}/moveResources` (and `validateMoveResources`,
//!   which Azure authorizes the same way) takes
//!   `{"resources": [ids…], "targetResourceGroup": "/subscriptions/{t}/resourceGroups/{x}"}`:
//!   each listed resource is deleted where it is and written in the target
//!   group (`{type}/delete` at its id, `{type}/write` at the same id under
//!   the target), and the target group itself is written
//!   (`Microsoft.Resources/subscriptions/resourceGroups/write`).

use airlock_core::{Operation, Plane, ResourceScope};
use http::Method;
use serde_json::Value;

use crate::ClassifyError;
use crate::arm_path::{self, id_segments, is, resource_id};
use crate::json::{self, get};

/// The child of a resource-group delete: everything inside it.
pub(crate) fn delete_children<S: AsRef<str>>(group: &[S]) -> Vec<Operation> {
    vec![Operation::new(
        "*/delete",
        Plane::Management,
        ResourceScope::new(resource_id(group)),
    )]
}

/// The children of a move, read from its body.
pub(crate) fn move_children(body: &[u8]) -> Result<Vec<Operation>, ClassifyError> {
    let root = json::object(body, "moveResources")?;
    let Some(Value::String(target)) = get(&root, "targetResourceGroup")? else {
        return Err(ClassifyError::content(
            "the moveResources body needs 'targetResourceGroup', the id of the resource group to move to (/subscriptions/{id}/resourceGroups/{name})",
        ));
    };
    let target = id_segments(target)
        .filter(|segments| is_group(segments))
        .ok_or_else(|| {
            ClassifyError::content(
                "'targetResourceGroup' must be a resource group id (/subscriptions/{id}/resourceGroups/{name})",
            )
        })?;
    let Some(Value::Array(resources)) = get(&root, "resources")? else {
        return Err(ClassifyError::content(
            "the moveResources body needs 'resources', an array of the ids of the resources to move",
        ));
    };
    let mut children = Vec::with_capacity(resources.len() * 2 + 1);
    for resource in resources {
        let source = resource
            .as_str()
            .and_then(id_segments)
            .filter(|segments| segments.len() > 4 && is_group(&segments[..4]))
            .ok_or_else(|| {
                ClassifyError::content(
                    "each entry of 'resources' must be the id of a resource in a resource group (/subscriptions/{id}/resourceGroups/{name}/providers/…)",
                )
            })?;
        let mut destination = target.clone();
        destination.extend_from_slice(&source[4..]);
        children.push(arm_path::operation(&Method::DELETE, &source));
        children.push(arm_path::operation(&Method::PUT, &destination));
    }
    children.push(Operation::new(
        "Microsoft.Resources/subscriptions/resourceGroups/write",
        Plane::Management,
        ResourceScope::new(resource_id(&target)),
    ));
    Ok(children)
}

/// `subscriptions/{s}/resourceGroups/{rg}`.
pub(crate) fn is_group<S: AsRef<str>>(segments: &[S]) -> bool {
    matches!(segments, [subscriptions, _, groups, _]
        if is(subscriptions, "subscriptions") && is(groups, "resourceGroups"))
}
