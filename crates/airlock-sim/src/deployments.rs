//! ARM what-if for deployments (`POST …/deployments/{name}/whatIf`): the
//! changes a template would make, for the resources the simulator knows.
//!
//! As ARM does, it answers 202 with a `Location` to poll, which answers the
//! result (`{status, properties: {changes: […]}}`). Storage accounts are
//! `Create`, `Modify` (with a delta) or `NoChange`; with `mode: Complete`,
//! the group's storage accounts the template leaves out are `Delete`; any
//! other resource type is `Unsupported`, as ARM marks what it cannot
//! evaluate. Template expressions are understood for names only, and only
//! `[parameters('…')]`. The deployment itself is not simulated.

use http::StatusCode;
use serde_json::{Map, Value, json};

use crate::SUBSCRIPTION_ID;
use crate::arm::ArmRequest;
use crate::arm_error::ArmError;
use crate::reply::Reply;
use crate::state::SimState;
use crate::storage;

/// `POST …/resourceGroups/{group}/providers/Microsoft.Resources/deployments/{name}/whatIf`.
pub(crate) fn what_if(
    state: &SimState,
    request: &ArmRequest<'_>,
    captures: &[&str],
) -> Result<Reply, ArmError> {
    let group = captures.get(1).copied().unwrap_or_default();
    let body = request.json_body()?;
    let properties = body
        .get("properties")
        .and_then(Value::as_object)
        .ok_or_else(|| ArmError::invalid_content("'properties' is required"))?;
    let invalid_template = |message: &str| {
        ArmError::new(
            StatusCode::BAD_REQUEST,
            "InvalidTemplate",
            message.to_owned(),
        )
    };
    let template = properties
        .get("template")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid_template("The template is missing: give properties.template (this simulator does not fetch templateLink)."))?;
    let resources = template
        .get("resources")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid_template("The template has no 'resources' array."))?;
    let parameters = properties.get("parameters").and_then(Value::as_object);
    let complete = properties.get("mode").and_then(Value::as_str) == Some("Complete");

    let mut inventory = state.inventory();
    let group_name = inventory.group(group)?.name.clone();
    let mut changes = Vec::new();
    let mut named = Vec::new();
    for resource in resources {
        let Some(resource) = resource.as_object() else {
            return Err(invalid_template(
                "Each template resource must be an object.",
            ));
        };
        let kind = resource
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let name = resolve(resource.get("name"), template, parameters).ok_or_else(|| {
            invalid_template("A resource name must be a string or [parameters('…')].")
        })?;
        let id = format!(
            "/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{group_name}/providers/{kind}/{name}"
        );
        named.push(id.to_ascii_lowercase());
        if kind.eq_ignore_ascii_case("Microsoft.Storage/storageAccounts") {
            changes.push(storage::what_if(&inventory, &group_name, resource, &name));
        } else {
            changes.push(json!({
                "resourceId": id,
                "changeType": "Unsupported",
                "unsupportedReason": "The simulator evaluates storage accounts only.",
            }));
        }
    }
    if complete {
        for id in storage::ids_in_group(&inventory, &group_name) {
            if !named.contains(&id.to_ascii_lowercase()) {
                changes.push(json!({ "resourceId": id, "changeType": "Delete" }));
            }
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    let result = json!({ "status": "Succeeded", "properties": { "changes": changes } });
    inventory.what_ifs.insert(id.clone(), result);
    let location = format!(
        "{}/subscriptions/{SUBSCRIPTION_ID}/providers/Microsoft.Resources/locations/westeurope/operationResults/{id}?api-version={}",
        state.config.arm_url, request.api_version
    );
    Ok(Reply::empty(StatusCode::ACCEPTED)
        .header(http::header::LOCATION, &location)
        .header(http::header::RETRY_AFTER, "0"))
}

/// `GET …/providers/Microsoft.Resources/locations/{location}/operationResults/{id}`: a what-if's result.
pub(crate) fn what_if_result(
    state: &SimState,
    _request: &ArmRequest<'_>,
    captures: &[&str],
) -> Result<Reply, ArmError> {
    let id = captures.get(2).copied().unwrap_or_default();
    let inventory = state.inventory();
    match inventory.what_ifs.get(id) {
        Some(result) => Ok(Reply::json(StatusCode::OK, result.clone())),
        None => Err(ArmError::new(
            StatusCode::NOT_FOUND,
            "OperationNotFound",
            format!("The operation '{id}' could not be found."),
        )),
    }
}

/// A literal name, or `[parameters('p')]` from the deployment's parameters
/// or the template's default.
fn resolve(
    name: Option<&Value>,
    template: &Map<String, Value>,
    parameters: Option<&Map<String, Value>>,
) -> Option<String> {
    let name = name?.as_str()?;
    let Some(parameter) = name
        .strip_prefix("[parameters('")
        .and_then(|rest| rest.strip_suffix("')]"))
    else {
        return (!name.starts_with('[')).then(|| name.to_owned());
    };
    parameters
        .and_then(|p| p.get(parameter))
        .and_then(|p| p.get("value"))
        .or_else(|| {
            template
                .get("parameters")?
                .get(parameter)?
                .get("defaultValue")
        })
        .and_then(Value::as_str)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_literals_or_parameters() {
        let template =
            json!({"parameters": {"name": {"type": "string", "defaultValue": "fromdefault"}}});
        let template = template.as_object().unwrap();
        let given = json!({"name": {"value": "given"}});
        let given = given.as_object();
        assert_eq!(
            resolve(Some(&json!("plain")), template, None).as_deref(),
            Some("plain")
        );
        assert_eq!(
            resolve(Some(&json!("[parameters('name')]")), template, given).as_deref(),
            Some("given")
        );
        assert_eq!(
            resolve(Some(&json!("[parameters('name')]")), template, None).as_deref(),
            Some("fromdefault")
        );
        // Other expressions are not evaluated: the what-if refuses the template.
        assert_eq!(
            resolve(Some(&json!("[concat('a', 'b')]")), template, None),
            None
        );
        assert_eq!(resolve(Some(&json!(7)), template, None), None);
    }
}
