//! Custom role definitions:
//! `PUT`/`GET {scope}/providers/Microsoft.Authorization/roleDefinitions/{id}`
//! at a subscription or resource-group scope (api-version 2022-04-01 shape).
//!
//! A `PUT` is validated as ARM validates a custom role before it exists:
//! the id is a GUID; `properties.roleName` is set; `type`, if given, is
//! `CustomRole`; `permissions` hold at least one action or data action,
//! each a well-formed operation (`{Company}.{Provider}/{type}/…/{verb}`,
//! `*` wildcards allowed); a known data action in `actions`, or a
//! management action in `dataActions`, is refused; `assignableScopes` name
//! at least one subscription, resource group or management group, never
//! `/` (only built-in roles are assignable at the root). The codes are
//! ARM's (`InvalidRoleDefinitionId`, `InvalidActionOrNotAction`,
//! `InvalidDataActionOrNotDataAction`, `InvalidAssignableScopes`,
//! `RoleDefinitionDoesNotExist`); for the shape errors, where ARM's
//! wording varies by case, the messages are the simulator's.
//! Answers 201 with the stored definition; a `GET` returns it.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::arm::ArmRequest;
use crate::arm_error::ArmError;
use crate::reply::Reply;
use crate::state::SimState;

/// Data actions of the providers the simulator knows, by prefix.
const DATA_PREFIXES: &[&str] = &[
    "microsoft.keyvault/vaults/secrets/",
    "microsoft.keyvault/vaults/keys/",
    "microsoft.keyvault/vaults/certificates/",
    "microsoft.storage/storageaccounts/blobservices/containers/blobs/",
    "microsoft.storage/storageaccounts/queueservices/queues/messages/",
    "microsoft.storage/storageaccounts/fileservices/fileshares/files/",
];

/// Key Vault data actions that share a prefix with management actions
/// (`…/secrets/read` is ARM's; `…/secrets/getSecret/action` is data).
const KEY_VAULT_DATA_VERBS: &[&str] = &[
    "getsecret/action",
    "setsecret/action",
    "readmetadata/action",
    "backup/action",
    "restore/action",
    "recover/action",
    "purge/action",
    "delete",
    "update/action",
    "create/action",
    "sign/action",
    "verify/action",
    "encrypt/action",
    "decrypt/action",
    "wrapkey/action",
    "unwrapkey/action",
];

/// `…/roleDefinitions/{id}` under a subscription (captures: subscription,
/// id) or a resource group (subscription, group, id).
pub(crate) fn definition(
    state: &SimState,
    request: &ArmRequest<'_>,
    captures: &[&str],
) -> Result<Reply, ArmError> {
    let id = captures.last().copied().unwrap_or_default();
    let scope = match captures {
        [subscription, group, _] => format!("/subscriptions/{subscription}/resourceGroups/{group}"),
        [subscription, _] => format!("/subscriptions/{subscription}"),
        _ => String::new(),
    };
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(ArmError::new(
            StatusCode::BAD_REQUEST,
            "InvalidRoleDefinitionId",
            format!(
                "The role definition ID '{id}' is not valid. The role definition ID must be a GUID."
            ),
        ));
    }
    let resource_id = format!("{scope}/providers/Microsoft.Authorization/roleDefinitions/{id}");
    if request.method == Method::GET {
        return state
            .role_definition(id)
            .map(|stored| Reply::json(StatusCode::OK, stored))
            .ok_or_else(|| {
                ArmError::new(
                    StatusCode::NOT_FOUND,
                    "RoleDefinitionDoesNotExist",
                    format!("The specified role definition with ID '{id}' does not exist."),
                )
            });
    }
    let body = request.json_body()?;
    let properties = validate(body.get("properties"))?;
    let stored = json!({
        "id": resource_id,
        "name": id,
        "type": "Microsoft.Authorization/roleDefinitions",
        "properties": properties,
    });
    state.store_role_definition(id, stored.clone());
    Ok(Reply::json(StatusCode::CREATED, stored))
}

fn invalid(message: impl Into<String>) -> ArmError {
    ArmError::new(StatusCode::BAD_REQUEST, "InvalidRoleDefinition", message)
}

/// The properties as stored, or the first problem.
fn validate(properties: Option<&Value>) -> Result<Value, ArmError> {
    let properties = properties
        .and_then(Value::as_object)
        .ok_or_else(|| invalid("The request body has no 'properties' object."))?;
    let name = properties
        .get("roleName")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| invalid("The role definition must have a non-empty 'roleName'."))?;
    if let Some(kind) = properties.get("type")
        && kind.as_str() != Some("CustomRole")
    {
        return Err(invalid(format!(
            "The role definition type {kind} is not valid: only 'CustomRole' can be created."
        )));
    }
    let permissions = properties
        .get("permissions")
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            invalid("The role definition must have at least one entry in 'permissions'.")
        })?;
    let mut granted = 0;
    for permission in permissions {
        for (key, data) in [
            ("actions", false),
            ("notActions", false),
            ("dataActions", true),
            ("notDataActions", true),
        ] {
            let entries = strings(permission.get(key), key)?;
            if key == "actions" || key == "dataActions" {
                granted += entries.len();
            }
            for entry in entries {
                check_operation(entry, data)?;
            }
        }
    }
    if granted == 0 {
        return Err(invalid(
            "The role definition grants nothing: list at least one action or data action.",
        ));
    }
    let scopes = strings(properties.get("assignableScopes"), "assignableScopes")?;
    if scopes.is_empty() {
        return Err(assignable(
            "The role definition must have at least one assignable scope.",
        ));
    }
    for scope in &scopes {
        check_scope(scope)?;
    }
    let mut stored = properties.clone();
    stored.insert("type".into(), Value::from("CustomRole"));
    stored.insert("roleName".into(), Value::from(name));
    Ok(Value::Object(stored))
}

fn assignable(message: impl Into<String>) -> ArmError {
    ArmError::new(StatusCode::BAD_REQUEST, "InvalidAssignableScopes", message)
}

fn strings<'a>(value: Option<&'a Value>, key: &str) -> Result<Vec<&'a str>, ArmError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    value
        .as_array()
        .ok_or_else(|| invalid(format!("'{key}' must be an array of strings.")))?
        .iter()
        .map(|v| {
            v.as_str()
                .ok_or_else(|| invalid(format!("'{key}' must be an array of strings.")))
        })
        .collect()
}

/// A well-formed operation on the plane its list says.
fn check_operation(entry: &str, data: bool) -> Result<(), ArmError> {
    let (code, what) = if data {
        ("InvalidDataActionOrNotDataAction", "data actions")
    } else {
        ("InvalidActionOrNotAction", "actions")
    };
    let refuse = || {
        ArmError::new(
            StatusCode::BAD_REQUEST,
            code,
            format!("'{entry}' does not match any of the {what} supported by the providers."),
        )
    };
    let lower = entry.to_ascii_lowercase();
    let well_formed = entry == "*"
        || (!entry.is_empty()
            && !entry.contains("**")
            && entry
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '*' | '-' | '_'))
            && entry.split('/').all(|segment| !segment.is_empty())
            && entry.split('/').count() >= 2
            && {
                let provider = entry.split('/').next().unwrap_or_default();
                provider == "*" || provider.contains('.')
            });
    if !well_formed {
        return Err(refuse());
    }
    let data_prefix = DATA_PREFIXES.iter().any(|p| lower.starts_with(p));
    let is_data = data_prefix
        && (!lower.starts_with("microsoft.keyvault/")
            || KEY_VAULT_DATA_VERBS
                .iter()
                .any(|verb| lower.ends_with(&format!("/{verb}"))));
    match (data, is_data) {
        (false, true) => Err(refuse()),
        (true, false) if !lower.contains('*') || (!data_prefix && lower != "*") => Err(refuse()),
        _ => Ok(()),
    }
}

/// A subscription, resource group or management group; never `/`.
fn check_scope(scope: &str) -> Result<(), ArmError> {
    let segments: Vec<&str> = scope.split('/').filter(|s| !s.is_empty()).collect();
    let is = |i: usize, word: &str| {
        segments
            .get(i)
            .is_some_and(|s| s.eq_ignore_ascii_case(word))
    };
    let ok = match segments.len() {
        2 => is(0, "subscriptions"),
        4 => {
            (is(0, "subscriptions") && is(2, "resourceGroups"))
                || (is(0, "providers")
                    && is(1, "Microsoft.Management")
                    && is(2, "managementGroups"))
        }
        _ => false,
    };
    if ok && scope.starts_with('/') {
        return Ok(());
    }
    if segments.is_empty() {
        return Err(assignable(
            "Custom roles cannot be assignable at the root scope '/': name subscriptions, resource groups or management groups.",
        ));
    }
    Err(assignable(format!(
        "The assignable scope '{scope}' is not valid: use /subscriptions/{{id}}, /subscriptions/{{id}}/resourceGroups/{{name}} or /providers/Microsoft.Management/managementGroups/{{id}}."
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(actions: &[&str], data: &[&str], scopes: &[&str]) -> Value {
        json!({
            "roleName": "r",
            "type": "CustomRole",
            "permissions": [{"actions": actions, "notActions": [], "dataActions": data, "notDataActions": []}],
            "assignableScopes": scopes,
        })
    }

    fn code(result: Result<Value, ArmError>) -> String {
        result
            .err()
            .map(|e| e.code().to_owned())
            .unwrap_or_default()
    }

    #[test]
    fn a_well_formed_custom_role_passes() {
        let ok = validate(Some(&role(
            &[
                "Microsoft.Storage/*/read",
                "Microsoft.Storage/storageAccounts/listKeys/action",
            ],
            &["Microsoft.KeyVault/vaults/secrets/getSecret/action"],
            &["/subscriptions/s/resourceGroups/rg"],
        )));
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn planes_shapes_and_scopes_are_checked_as_arm_does() {
        let rg = ["/subscriptions/s/resourceGroups/rg"];
        assert_eq!(
            code(validate(Some(&role(
                &["Microsoft.KeyVault/vaults/secrets/getSecret/action"],
                &[],
                &rg
            )))),
            "InvalidActionOrNotAction"
        );
        assert_eq!(
            code(validate(Some(&role(
                &[],
                &["Microsoft.Storage/storageAccounts/read"],
                &rg
            )))),
            "InvalidDataActionOrNotDataAction"
        );
        assert_eq!(
            code(validate(Some(&role(&["not an action"], &[], &rg)))),
            "InvalidActionOrNotAction"
        );
        assert_eq!(
            code(validate(Some(&role(&["*/read"], &[], &["/"])))),
            "InvalidAssignableScopes"
        );
        assert_eq!(
            code(validate(Some(&role(&["*/read"], &[], &[])))),
            "InvalidAssignableScopes"
        );
        assert_eq!(
            code(validate(Some(&role(&[], &[], &rg)))),
            "InvalidRoleDefinition"
        );
        assert_eq!(code(validate(None)), "InvalidRoleDefinition");
        // ARM's own Key Vault secret management actions are management actions.
        assert!(
            validate(Some(&role(
                &["Microsoft.KeyVault/vaults/secrets/read"],
                &[],
                &rg
            )))
            .is_ok()
        );
    }
}
