//! Storage accounts (`Microsoft.Storage/storageAccounts`): get, paged lists,
//! create as a long-running operation, delete, `listKeys`.

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::StatusCode;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::SUBSCRIPTION_ID;
use crate::arm::ArmRequest;
use crate::arm_error::ArmError;
use crate::inventory::{ProvisioningState, key};
use crate::operations::{Completion, STORAGE};
use crate::paging::page;
use crate::reply::Reply;
use crate::state::SimState;
use crate::timestamp::rfc3339;

const RESOURCE_TYPE: &str = "Microsoft.Storage/storageAccounts";

/// A storage account.
#[derive(Debug)]
pub(crate) struct StorageAccount {
    name: String,
    /// The resource group's name.
    pub(crate) group: String,
    location: String,
    sku: String,
    kind: String,
    tags: Map<String, Value>,
    created: SystemTime,
    /// `Creating` until its create operation completes.
    pub(crate) provisioning: ProvisioningState,
}

impl StorageAccount {
    /// A ready account, as seeded.
    pub(crate) fn seeded(name: &str, group: &str, location: &str, created: SystemTime) -> Self {
        Self {
            name: name.to_owned(),
            group: group.to_owned(),
            location: location.to_owned(),
            sku: "Standard_LRS".to_owned(),
            kind: "StorageV2".to_owned(),
            tags: Map::new(),
            created,
            provisioning: ProvisioningState::Succeeded,
        }
    }
}

/// The account as ARM returns it.
pub(crate) fn account_json(account: &StorageAccount) -> Value {
    let name = &account.name;
    let tier = if account.sku.starts_with("Premium") {
        "Premium"
    } else {
        "Standard"
    };
    let endpoint = |service: &str| format!("https://{name}.{service}.core.windows.net/");
    json!({
        "id": format!("/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{}/providers/{RESOURCE_TYPE}/{name}", account.group),
        "name": name,
        "type": RESOURCE_TYPE,
        "location": account.location,
        "tags": account.tags,
        "sku": { "name": account.sku, "tier": tier },
        "kind": account.kind,
        "properties": {
            "provisioningState": account.provisioning.as_str(),
            "creationTime": rfc3339(account.created),
            "primaryLocation": account.location,
            "statusOfPrimary": "available",
            "primaryEndpoints": {
                "blob": endpoint("blob"),
                "queue": endpoint("queue"),
                "table": endpoint("table"),
                "file": endpoint("file"),
                "dfs": endpoint("dfs"),
                "web": format!("https://{name}.z6.web.core.windows.net/"),
            },
            "accessTier": "Hot",
            "supportsHttpsTrafficOnly": true,
            "minimumTlsVersion": "TLS1_2",
            "allowBlobPublicAccess": false,
        },
    })
}

/// `GET /subscriptions/{s}/providers/Microsoft.Storage/storageAccounts` (paged).
pub(crate) fn list_in_subscription(
    state: &SimState,
    request: &ArmRequest<'_>,
    _: &[&str],
) -> Result<Reply, ArmError> {
    let items: Vec<Value> = state
        .inventory()
        .storage_accounts
        .values()
        .map(account_json)
        .collect();
    Ok(Reply::json(
        StatusCode::OK,
        page(&state.config, request, items)?,
    ))
}

/// `GET …/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts` (paged).
pub(crate) fn list_in_group(
    state: &SimState,
    request: &ArmRequest<'_>,
    captures: &[&str],
) -> Result<Reply, ArmError> {
    let group = captures.get(1).copied().unwrap_or_default();
    let items: Vec<Value> = {
        let inventory = state.inventory();
        inventory.group(group)?;
        let in_group = |a: &&StorageAccount| a.group.eq_ignore_ascii_case(group);
        inventory
            .storage_accounts
            .values()
            .filter(in_group)
            .map(account_json)
            .collect()
    };
    Ok(Reply::json(
        StatusCode::OK,
        page(&state.config, request, items)?,
    ))
}

/// `GET|PUT|DELETE …/storageAccounts/{name}`.
pub(crate) fn account(
    state: &SimState,
    request: &ArmRequest<'_>,
    captures: &[&str],
) -> Result<Reply, ArmError> {
    let (group, name) = (
        captures.get(1).copied().unwrap_or_default(),
        captures.get(2).copied().unwrap_or_default(),
    );
    match *request.method {
        http::Method::PUT => put(state, request, group, name),
        http::Method::DELETE => {
            let mut inventory = state.inventory();
            inventory.group(group)?;
            let found = inventory
                .storage_accounts
                .get(&key(name))
                .is_some_and(|a| a.group.eq_ignore_ascii_case(group));
            if !found {
                return Ok(Reply::empty(StatusCode::NO_CONTENT));
            }
            inventory.storage_accounts.remove(&key(name));
            Ok(Reply::empty(StatusCode::OK))
        }
        _ => {
            let inventory = state.inventory();
            Ok(Reply::json(
                StatusCode::OK,
                account_json(find(&inventory, group, name)?),
            ))
        }
    }
}

/// The account `name` in `group`, or the ARM 404 for it.
fn find<'a>(
    inventory: &'a crate::inventory::Inventory,
    group: &str,
    name: &str,
) -> Result<&'a StorageAccount, ArmError> {
    inventory.group(group)?;
    inventory
        .storage_accounts
        .get(&key(name))
        .filter(|a| a.group.eq_ignore_ascii_case(group))
        .ok_or_else(|| ArmError::resource_not_found(RESOURCE_TYPE, name, group))
}

/// Create (202 + long-running operation) or update (200, synchronous).
fn put(
    state: &SimState,
    request: &ArmRequest<'_>,
    group: &str,
    name: &str,
) -> Result<Reply, ArmError> {
    let body = request.json_body()?;
    let location = crate::arm::required_location(&body)?;
    let sku = body
        .get("sku")
        .and_then(|s| s.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("Standard_LRS");
    let kind = body
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("StorageV2");
    let tags = match body.get("tags") {
        None | Some(Value::Null) => None,
        Some(Value::Object(tags)) => Some(tags.clone()),
        Some(_) => {
            return Err(ArmError::invalid_content(
                "'tags' must be an object of strings",
            ));
        }
    };
    if !(3..=24).contains(&name.len())
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Err(ArmError::new(
            StatusCode::BAD_REQUEST,
            "AccountNameInvalid",
            format!(
                "{name} is not a valid storage account name. Storage account name must be between 3 and 24 characters in length and use numbers and lower-case letters only."
            ),
        ));
    }
    let mut inventory = state.inventory();
    inventory.group(group)?;
    if let Some(existing) = inventory.storage_accounts.get_mut(&key(name)) {
        if !existing.group.eq_ignore_ascii_case(group) {
            return Err(ArmError::new(
                StatusCode::CONFLICT,
                "StorageAccountAlreadyTaken",
                format!("The storage account named {name} is already taken."),
            ));
        }
        existing.sku = sku.to_owned();
        existing.kind = kind.to_owned();
        if let Some(tags) = tags {
            existing.tags = tags;
        }
        return Ok(Reply::json(StatusCode::OK, account_json(existing)));
    }
    let group_name = inventory.group(group)?.name.clone();
    let account = StorageAccount {
        name: name.to_owned(),
        group: group_name,
        location: location.to_owned(),
        sku: sku.to_owned(),
        kind: kind.to_owned(),
        tags: tags.unwrap_or_default(),
        created: SystemTime::now(),
        provisioning: ProvisioningState::Creating,
    };
    inventory.storage_accounts.insert(key(name), account);
    let completion = Completion::CreateStorageAccount { account: key(name) };
    let operation = inventory.start_operation(
        &state.config,
        STORAGE,
        location,
        &request.api_version,
        completion,
    );
    Ok(operation.polling_headers(&state.config, Reply::empty(StatusCode::ACCEPTED)))
}

/// `POST …/storageAccounts/{name}/listKeys`.
pub(crate) fn list_keys(
    state: &SimState,
    _: &ArmRequest<'_>,
    captures: &[&str],
) -> Result<Reply, ArmError> {
    let (group, name) = (
        captures.get(1).copied().unwrap_or_default(),
        captures.get(2).copied().unwrap_or_default(),
    );
    let inventory = state.inventory();
    let account = find(&inventory, group, name)?;
    let keys: Vec<Value> = ["key1", "key2"]
        .into_iter()
        .map(|key_name| {
            json!({
                "creationTime": rfc3339(account.created),
                "keyName": key_name,
                "value": account_key(&account.name, key_name),
                "permissions": "FULL",
            })
        })
        .collect();
    Ok(Reply::json(StatusCode::OK, json!({ "keys": keys })))
}

/// A deterministic 64-byte account key, base64 (88 characters ending `==`, like Azure's).
pub(crate) fn account_key(account: &str, key_name: &str) -> String {
    let mut bytes = Vec::with_capacity(64);
    for half in ["a", "b"] {
        bytes.extend_from_slice(&Sha256::digest(format!(
            "airlock-sim/{account}/{key_name}/{half}"
        )));
    }
    STANDARD.encode(bytes)
}

/// What a template's storage account would do to the inventory, as one
/// entry of a what-if result: `Create`, `Modify` (with its delta over
/// `location`, `sku.name`, `kind` and `tags`) or `NoChange`.
pub(crate) fn what_if(
    inventory: &crate::inventory::Inventory,
    group: &str,
    resource: &Map<String, Value>,
    name: &str,
) -> Value {
    let id = format!(
        "/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{group}/providers/{RESOURCE_TYPE}/{name}"
    );
    let existing = inventory
        .storage_accounts
        .get(&key(name))
        .filter(|a| a.group.eq_ignore_ascii_case(group));
    let Some(account) = existing else {
        return json!({ "resourceId": id, "changeType": "Create", "after": resource });
    };
    let before = account_json(account);
    let mut delta = Vec::new();
    let mut compare = |path: &str, now: Value, asked: Option<&Value>| {
        if let Some(asked) = asked
            && *asked != now
        {
            delta.push(json!({ "path": path, "propertyChangeType": "Modify", "before": now, "after": asked }));
        }
    };
    compare(
        "location",
        json!(account.location),
        resource.get("location"),
    );
    compare(
        "sku.name",
        json!(account.sku),
        resource.get("sku").and_then(|s| s.get("name")),
    );
    compare("kind", json!(account.kind), resource.get("kind"));
    let tags = resource.get("tags").and_then(Value::as_object);
    for (tag, value) in tags.into_iter().flatten() {
        match account.tags.get(tag) {
            None => delta.push(json!({ "path": format!("tags.{tag}"), "propertyChangeType": "Create", "after": value })),
            Some(now) if now != value => delta.push(json!({ "path": format!("tags.{tag}"), "propertyChangeType": "Modify", "before": now, "after": value })),
            Some(_) => {}
        }
    }
    let change_type = if delta.is_empty() {
        "NoChange"
    } else {
        "Modify"
    };
    json!({ "resourceId": id, "changeType": change_type, "before": before, "delta": delta })
}

/// The ids of the group's storage accounts (what a `Complete` deployment
/// without them would delete).
pub(crate) fn ids_in_group(inventory: &crate::inventory::Inventory, group: &str) -> Vec<String> {
    inventory
        .storage_accounts
        .values()
        .filter(|a| a.group.eq_ignore_ascii_case(group))
        .map(|a| {
            format!(
                "/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{}/providers/{RESOURCE_TYPE}/{}",
                a.group, a.name
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_look_like_azure_keys() {
        let key = account_key("demostore", "key1");
        assert_eq!(key.len(), 88);
        assert!(key.ends_with("=="));
        assert_eq!(key, account_key("demostore", "key1"));
        assert_ne!(key, account_key("demostore", "key2"));
    }
}
