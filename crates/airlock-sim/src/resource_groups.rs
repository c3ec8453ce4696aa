//! Resource groups: list, get, check existence, create or update, delete (long-running).

use http::StatusCode;
use serde_json::{Map, Value, json};

use crate::SUBSCRIPTION_ID;
use crate::arm::ArmRequest;
use crate::arm_error::ArmError;
use crate::inventory::{ProvisioningState, key};
use crate::operations::{Completion, RESOURCES};
use crate::reply::Reply;
use crate::state::SimState;

/// A resource group.
#[derive(Debug)]
pub(crate) struct ResourceGroup {
    /// The name as first written.
    pub(crate) name: String,
    /// The location.
    pub(crate) location: String,
    tags: Option<Map<String, Value>>,
    provisioning: ProvisioningState,
}

impl ResourceGroup {
    /// A ready group.
    pub(crate) fn new(name: &str, location: &str, tags: Option<Map<String, Value>>) -> Self {
        Self {
            name: name.to_owned(),
            location: location.to_owned(),
            tags,
            provisioning: ProvisioningState::Succeeded,
        }
    }

    /// The group as ARM returns it.
    fn to_json(&self) -> Value {
        let mut group = json!({
            "id": format!("/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{}", self.name),
            "name": self.name,
            "type": "Microsoft.Resources/resourceGroups",
            "location": self.location,
            "properties": { "provisioningState": self.provisioning.as_str() },
        });
        if let Some(tags) = &self.tags {
            group["tags"] = Value::Object(tags.clone());
        }
        group
    }
}

/// `GET /subscriptions/{s}/resourcegroups`.
pub(crate) fn list(state: &SimState, _: &ArmRequest<'_>, _: &[&str]) -> Result<Reply, ArmError> {
    let inventory = state.inventory();
    let groups: Vec<Value> = inventory
        .groups
        .values()
        .map(ResourceGroup::to_json)
        .collect();
    Ok(Reply::json(StatusCode::OK, json!({ "value": groups })))
}

/// `GET|HEAD|PUT|DELETE /subscriptions/{s}/resourcegroups/{rg}`.
pub(crate) fn group(
    state: &SimState,
    request: &ArmRequest<'_>,
    captures: &[&str],
) -> Result<Reply, ArmError> {
    let name = captures.get(1).copied().unwrap_or_default();
    match *request.method {
        http::Method::HEAD => {
            let exists = state.inventory().groups.contains_key(&key(name));
            Ok(Reply::empty(if exists {
                StatusCode::NO_CONTENT
            } else {
                StatusCode::NOT_FOUND
            }))
        }
        http::Method::PUT => put(state, request, name),
        http::Method::DELETE => delete(state, request, name),
        _ => Ok(Reply::json(
            StatusCode::OK,
            state.inventory().group(name)?.to_json(),
        )),
    }
}

fn put(state: &SimState, request: &ArmRequest<'_>, name: &str) -> Result<Reply, ArmError> {
    let body = request.json_body()?;
    let location = crate::arm::required_location(&body)?;
    let tags = match body.get("tags") {
        None | Some(Value::Null) => None,
        Some(Value::Object(tags)) => Some(tags.clone()),
        Some(_) => {
            return Err(ArmError::invalid_content(
                "'tags' must be an object of strings",
            ));
        }
    };
    validate_name(name)?;
    let mut inventory = state.inventory();
    if let Some(existing) = inventory.groups.get_mut(&key(name)) {
        if existing.provisioning == ProvisioningState::Deleting {
            return Err(ArmError::new(
                StatusCode::CONFLICT,
                "ResourceGroupBeingDeleted",
                format!(
                    "The resource group '{}' is in deprovisioning state and cannot perform this operation.",
                    existing.name
                ),
            ));
        }
        if !existing.location.eq_ignore_ascii_case(location) {
            return Err(ArmError::new(
                StatusCode::CONFLICT,
                "InvalidResourceGroupLocation",
                format!(
                    "Invalid resource group location '{location}'. The Resource group already exists in location '{}'.",
                    existing.location
                ),
            ));
        }
        existing.tags = tags;
        return Ok(Reply::json(StatusCode::OK, existing.to_json()));
    }
    let group = ResourceGroup::new(name, location, tags);
    let body = group.to_json();
    inventory.groups.insert(key(name), group);
    Ok(Reply::json(StatusCode::CREATED, body))
}

fn delete(state: &SimState, request: &ArmRequest<'_>, name: &str) -> Result<Reply, ArmError> {
    let mut inventory = state.inventory();
    let group = inventory
        .groups
        .get_mut(&key(name))
        .ok_or_else(|| ArmError::resource_group_not_found(name))?;
    group.provisioning = ProvisioningState::Deleting;
    let location = group.location.clone();
    let completion = Completion::DeleteResourceGroup { group: key(name) };
    let operation = inventory.start_operation(
        &state.config,
        RESOURCES,
        &location,
        &request.api_version,
        completion,
    );
    Ok(operation.polling_headers(&state.config, Reply::empty(StatusCode::ACCEPTED)))
}

/// 1–90 letters, digits, `-_.()`, not ending in `.`, as ARM requires.
fn validate_name(name: &str) -> Result<(), ArmError> {
    let valid = (1..=90).contains(&name.chars().count())
        && !name.ends_with('.')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "-_.()".contains(c));
    if valid {
        Ok(())
    } else {
        Err(ArmError::new(
            StatusCode::BAD_REQUEST,
            "InvalidResourceGroup",
            format!(
                "The provided resource group name '{name}' has these invalid characters or length. \
                 The name can be 1 to 90 characters of letters, digits, '-', '_', '.', '(' and ')', and cannot end in a period."
            ),
        ))
    }
}
